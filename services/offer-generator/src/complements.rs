//! "Show what's possible": complements learned online from POS baskets.
//!
//! Per (store, SKU): the (decayed) number of baskets with it and, for at most
//! [`MAX_PARTNERS`] other SKUs, the number of baskets with both. Per store (key `<store>/`):
//! every basket. All counts decay with one half-life, a rolling window without a window's
//! memory. The lift of a partner b of a is `n(a,b)·N / (n(a)·n(b))`; complements are the
//! partners with lift > 1 and at least the minimum support, best lift first.
use shelfguard_events::state::{OfferItem, Partner};

/// Partners remembered per (store, SKU): bounded memory whatever the assortment.
pub const MAX_PARTNERS: usize = 16;

/// Decays the counts of `item` from its last update to `now` (half-life `tau_ms`·ln 2).
pub fn decay(item: &mut OfferItem, now: i64, tau_ms: f64) {
    if item.learned_at_ms != 0 && now > item.learned_at_ms {
        let d = (-((now - item.learned_at_ms) as f64) / tau_ms).exp();
        item.baskets *= d;
        for p in &mut item.partners {
            p.baskets *= d;
        }
    }
    item.learned_at_ms = item.learned_at_ms.max(now);
}

/// Counts one basket containing the key's SKU and `others` (the basket's other SKUs).
pub fn learn<'a>(
    item: &mut OfferItem,
    others: impl IntoIterator<Item = &'a str>,
    now: i64,
    tau_ms: f64,
) {
    decay(item, now, tau_ms);
    item.baskets += 1.0;
    for sku in others {
        if let Some(p) = item.partners.iter_mut().find(|p| p.sku == sku) {
            p.baskets += 1.0;
        } else if item.partners.len() < MAX_PARTNERS {
            item.partners.push(Partner {
                sku: sku.to_owned(),
                baskets: 1.0,
            });
        } else if let Some(weakest) = item
            .partners
            .iter_mut()
            .min_by(|a, b| {
                a.baskets
                    .total_cmp(&b.baskets)
                    .then_with(|| b.sku.cmp(&a.sku))
            })
            .filter(|w| w.baskets < 1.0)
        {
            // Full: a newcomer replaces the weakest only once that one has faded below a basket.
            *weakest = Partner {
                sku: sku.to_owned(),
                baskets: 1.0,
            };
        }
    }
}

/// The decayed value of `baskets` counted at `at` when seen at `now`.
fn at_now(baskets: f64, at: i64, now: i64, tau_ms: f64) -> f64 {
    if now > at {
        baskets * (-((now - at) as f64) / tau_ms).exp()
    } else {
        baskets
    }
}

/// Candidates of one SKU with their lift, given the store's basket count and each partner's
/// own count (both looked up by the caller), at `now`.
pub fn lifts(
    item: &OfferItem,
    store: &OfferItem,
    partner: impl Fn(&str) -> Option<(f64, i64)>,
    min_support: f64,
    now: i64,
    tau_ms: f64,
) -> Vec<(String, f64)> {
    let n = at_now(store.baskets, store.learned_at_ms, now, tau_ms);
    let na = at_now(item.baskets, item.learned_at_ms, now, tau_ms);
    if n <= 0.0 || na <= 0.0 {
        return Vec::new();
    }
    item.partners
        .iter()
        .filter_map(|p| {
            let nab = at_now(p.baskets, item.learned_at_ms, now, tau_ms);
            let (nb, at) = partner(&p.sku)?;
            let nb = at_now(nb, at, now, tau_ms);
            (nab >= min_support && nb > 0.0).then(|| (p.sku.clone(), nab * n / (na * nb)))
        })
        .filter(|(_, lift)| *lift > 1.0)
        .collect()
}

/// Up to `k` complements from the candidates of several SKUs: best lift first, each SKU once,
/// never one of `exclude`, only what `available` accepts (in stock).
pub fn pick(
    mut candidates: Vec<(String, f64)>,
    exclude: &[&str],
    available: impl Fn(&str) -> bool,
    k: usize,
) -> Vec<String> {
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out: Vec<String> = Vec::new();
    for (sku, _) in candidates {
        if out.len() == k {
            break;
        }
        if exclude.contains(&sku.as_str()) || out.contains(&sku) || !available(&sku) {
            continue;
        }
        out.push(sku);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;
    const TAU: f64 = 14.0 * 24.0 * 3_600_000.0 / std::f64::consts::LN_2;

    #[test]
    fn lift_finds_what_sells_together_and_ignores_what_is_just_popular() {
        // 100 baskets: belts in 10, socks in 12 (8 of them with a belt), milk in 50 (5 with a belt).
        let (mut store, mut belt, mut socks, mut milk) = Default::default();
        let (store, belt): (&mut OfferItem, &mut OfferItem) = (&mut store, &mut belt);
        let (socks, milk): (&mut OfferItem, &mut OfferItem) = (&mut socks, &mut milk);
        for i in 0..100 {
            let has_belt = i < 10;
            let has_socks = i < 8 || (10..14).contains(&i);
            let has_milk = (5..10).contains(&i) || (20..65).contains(&i);
            let mut basket = Vec::new();
            if has_belt {
                basket.push("BELT")
            }
            if has_socks {
                basket.push("SOCKS")
            }
            if has_milk {
                basket.push("MILK")
            }
            learn(store, [], T0, TAU);
            for (sku, item) in [
                ("BELT", &mut *belt),
                ("SOCKS", &mut *socks),
                ("MILK", &mut *milk),
            ] {
                if basket.contains(&sku) {
                    learn(item, basket.iter().copied().filter(|s| *s != sku), T0, TAU);
                }
            }
        }
        let counts = |sku: &str| match sku {
            "SOCKS" => Some((socks.baskets, socks.learned_at_ms)),
            "MILK" => Some((milk.baskets, milk.learned_at_ms)),
            _ => None,
        };
        let l = lifts(belt, store, counts, 3.0, T0, TAU);
        let socks_lift = l.iter().find(|(s, _)| s == "SOCKS").map(|x| x.1);
        assert!(
            socks_lift.is_some_and(|x| (x - 8.0 * 100.0 / (10.0 * 12.0)).abs() < 1e-9),
            "{l:?}"
        );
        assert!(
            l.iter().all(|(s, _)| s != "MILK"),
            "milk: lift 1.0 is no complement"
        );
        assert_eq!(pick(l.clone(), &[], |_| true, 3), ["SOCKS"]);
        assert!(
            pick(l.clone(), &["SOCKS"], |_| true, 3).is_empty(),
            "never the item itself"
        );
        assert!(pick(l, &[], |_| false, 3).is_empty(), "never out of stock");
        // Support: with a minimum of 9 joint baskets, socks (8) do not qualify.
        assert!(lifts(belt, store, counts, 9.0, T0, TAU).is_empty());
    }

    #[test]
    fn memory_is_bounded_and_old_baskets_fade() {
        let mut item = OfferItem::default();
        for i in 0..100 {
            learn(&mut item, [format!("P{i}").as_str()], T0 + i, TAU);
        }
        assert_eq!(item.partners.len(), MAX_PARTNERS);
        let before = item.baskets;
        decay(&mut item, T0 + 14 * 24 * 3_600_000, TAU);
        assert!(
            (item.baskets - before / 2.0).abs() < 1e-3,
            "half-life of 14 days"
        );
        // Faded partners make room for a new one.
        learn(&mut item, ["NEW"], T0 + 60 * 24 * 3_600_000, TAU);
        assert!(item.partners.iter().any(|p| p.sku == "NEW"));
    }
}
