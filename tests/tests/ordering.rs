//! Cross-topic order does not decide the books: a sale published on `store.sales.v1` with a
//! later event time than a COUNT on `store.stock-movements.v1` is applied first, and the count
//! (stock as of its own time) puts it on top: 12 counted, 2 sold after it, 10 on hand.
use std::time::Duration;

use anyhow::Result;
use shelfguard_e2e::{Env, fixtures::*};
use shelfguard_events::inventory::{Cause, StockLevel};
use shelfguard_events::topics::*;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn a_later_sale_applied_before_an_earlier_count_leaves_the_books_right() -> Result<()> {
    let env = Env::start("ordering").await?;
    let sku = "OIL-14";
    env.publish(
        CATALOG_PRODUCTS,
        sku,
        &product(sku, "oil", "Gold", 14.0, 799),
    )
    .await?;
    let _inv = env.spawn("inventory", &[])?;
    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    let counted_at = now_ms();
    let mut s = sale("S1", sku, 2);
    s.occurred_at_ms = counted_at + 1_000;
    env.publish(STORE_SALES, "S1", &s).await?;
    let (after_sale, _) = levels
        .until::<StockLevel>(WAIT, |l| l.cause == Cause::Sale as i32)
        .await?;
    assert_eq!((after_sale.on_hand, after_sale.unaccounted), (0, 2));
    let mut c = count("S1", sku, 12);
    c.occurred_at_ms = counted_at;
    env.publish(STORE_STOCK_MOVEMENTS, "S1", &c).await?;
    let (after_count, _) = levels
        .until::<StockLevel>(WAIT, |l| l.cause == Cause::Count as i32)
        .await?;
    assert_eq!((after_count.on_hand, after_count.unaccounted), (10, 0));
    Ok(())
}
