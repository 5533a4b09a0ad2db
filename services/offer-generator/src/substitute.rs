//! Which product to give instead of the one that is out.
use shelfguard_events::catalog::{HardAttribute, Product};

/// Why a candidate ranks where it does; lower is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// Same brand and family, larger size in the same unit ("the 28 oz jar").
    BiggerSameBrand,
    /// Same family, pricier: a higher tier or another brand.
    Upgrade,
}

/// Every hard attribute and allergen-free claim of the original is kept by the candidate.
pub fn keeps_hard_attributes(original: &Product, candidate: &Product) -> bool {
    let attrs_ok = original
        .hard_attributes
        .iter()
        .filter(|a| **a != HardAttribute::Unspecified as i32)
        .all(|a| candidate.hard_attributes.contains(a));
    let allergens_ok = original
        .allergen_free
        .iter()
        .all(|a| candidate.allergen_free.contains(a));
    attrs_ok && allergens_ok
}

fn size(p: &Product) -> (f64, &str) {
    p.size
        .as_ref()
        .map_or((0.0, ""), |s| (s.value, s.unit.as_str()))
}

/// How `candidate` ranks as a substitute for `original`, or `None` when it does not qualify
/// (other family, the item itself, smaller and not pricier, or breaks a hard attribute).
pub fn rank(original: &Product, candidate: &Product) -> Option<Rank> {
    if candidate.sku == original.sku
        || candidate.family != original.family
        || !keeps_hard_attributes(original, candidate)
    {
        return None;
    }
    let (os, ou) = size(original);
    let (cs, cu) = size(candidate);
    if candidate.brand == original.brand && cu == ou && cs > os {
        Some(Rank::BiggerSameBrand)
    } else if candidate.price_cents > original.price_cents && (cu != ou || cs >= os) {
        Some(Rank::Upgrade)
    } else {
        None
    }
}

/// Every qualifying substitute among `catalog` products for which `in_stock` says yes, best
/// first: bigger same brand (smallest such size, the cheapest gesture), then the cheapest
/// upgrade; ties by SKU.
pub fn ranked<'a>(
    original: &Product,
    catalog: impl IntoIterator<Item = &'a Product>,
    in_stock: impl Fn(&str) -> bool,
) -> Vec<&'a Product> {
    let mut v: Vec<(Rank, &Product)> = catalog
        .into_iter()
        .filter_map(|c| rank(original, c).map(|r| (r, c)))
        .filter(|(_, c)| in_stock(&c.sku))
        .collect();
    v.sort_by(|(ra, a), (rb, b)| {
        ra.cmp(rb).then(
            size(a)
                .0
                .total_cmp(&size(b).0)
                .then(a.price_cents.cmp(&b.price_cents))
                .then_with(|| a.sku.cmp(&b.sku)),
        )
    });
    v.into_iter().map(|(_, c)| c).collect()
}

/// The best substitute (the first of [`ranked`]).
pub fn best<'a>(
    original: &Product,
    catalog: impl IntoIterator<Item = &'a Product>,
    in_stock: impl Fn(&str) -> bool,
) -> Option<&'a Product> {
    ranked(original, catalog, in_stock).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shelfguard_events::catalog::Size;

    fn p(sku: &str, brand: &str, oz: f64, price: i64, attrs: &[HardAttribute]) -> Product {
        Product {
            sku: sku.into(),
            name: format!("{brand} coconut oil"),
            brand: brand.into(),
            family: "coconut-oil".into(),
            size: Some(Size {
                value: oz,
                unit: "oz".into(),
            }),
            price_cents: price,
            hard_attributes: attrs.iter().map(|a| *a as i32).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn ranking_table() {
        let orig = p("GOLD-14", "Gold", 14.0, 799, &[]);
        let organic = p("GOLD-14-ORG", "Gold", 14.0, 999, &[HardAttribute::Organic]);
        let cases = [
            (
                p("GOLD-28", "Gold", 28.0, 1399, &[]),
                Some(Rank::BiggerSameBrand),
            ),
            (p("PRIME-14", "Prime", 14.0, 1099, &[]), Some(Rank::Upgrade)),
            (p("VALUE-14", "Value", 14.0, 499, &[]), None),
            (p("GOLD-7", "Gold", 7.0, 499, &[]), None),
            (p("GOLD-14", "Gold", 14.0, 799, &[]), None),
            (
                Product {
                    family: "olive-oil".into(),
                    ..p("OLIVE", "Gold", 28.0, 1500, &[])
                },
                None,
            ),
        ];
        for (cand, want) in cases {
            assert_eq!(rank(&orig, &cand), want, "{}", cand.sku);
        }
        assert_eq!(
            rank(&organic, &p("GOLD-28", "Gold", 28.0, 1399, &[])),
            None,
            "organic must stay organic"
        );
        assert_eq!(
            rank(
                &organic,
                &p("GOLD-28-ORG", "Gold", 28.0, 1699, &[HardAttribute::Organic])
            ),
            Some(Rank::BiggerSameBrand)
        );
    }

    #[test]
    fn allergen_free_claims_are_kept() {
        let mut orig = p("A", "Gold", 14.0, 799, &[]);
        orig.allergen_free = vec!["peanut".into()];
        let mut cand = p("B", "Gold", 28.0, 1399, &[]);
        assert_eq!(rank(&orig, &cand), None);
        cand.allergen_free = vec!["peanut".into(), "milk".into()];
        assert_eq!(rank(&orig, &cand), Some(Rank::BiggerSameBrand));
    }

    #[test]
    fn best_prefers_bigger_same_brand_and_needs_stock() {
        let orig = p("GOLD-14", "Gold", 14.0, 799, &[]);
        let catalog = [
            p("PRIME-14", "Prime", 14.0, 1099, &[]),
            p("GOLD-56", "Gold", 56.0, 2399, &[]),
            p("GOLD-28", "Gold", 28.0, 1399, &[]),
        ];
        assert_eq!(best(&orig, &catalog, |_| true).unwrap().sku, "GOLD-28");
        assert_eq!(
            best(&orig, &catalog, |s| s != "GOLD-28").unwrap().sku,
            "GOLD-56"
        );
        assert_eq!(
            best(&orig, &catalog, |s| s == "PRIME-14").unwrap().sku,
            "PRIME-14"
        );
        assert!(best(&orig, &catalog, |_| false).is_none());
    }
}
