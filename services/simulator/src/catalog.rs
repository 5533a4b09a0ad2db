//! A deterministic (seeded) product catalogue: ~40 families, 2-4 brand lines per family in
//! value / standard / premium tiers, 2-3 sizes per line, and the troubled SKUs of each store.
//!
//! Pure: no I/O, no clock (the caller passes `now_ms`). Only the `event_id`s are random.
use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use shelfguard_events::catalog::{HardAttribute, Product, Size, Tier};

use crate::mix_seed;

/// Reorder point published for every product (the inventory default).
pub const REORDER_POINT: i32 = 4;
/// Order-up-to level published for every product (the inventory default).
pub const ORDER_UP_TO: i32 = 24;

/// One product family: products that answer the same need.
struct Family {
    /// Family id, lower-case with dashes ("coconut-oil"); upper-cased it starts every SKU.
    slug: &'static str,
    /// What the product is, as printed after the brand ("Coconut Oil").
    noun: &'static str,
    /// The maker; brands are "<maker> <line>" ("Coco Gold").
    maker: &'static str,
    unit: &'static str,
    /// The sizes sold in this family, smallest first; a brand line takes 2-3 consecutive ones.
    ladder: &'static [f64],
    /// Shelf price of the smallest size of a standard-tier line, in cents.
    base_cents: i64,
    /// Hard attributes a brand line of this family may carry.
    attrs: &'static [HardAttribute],
}

use HardAttribute::{GlutenFree as GF, Kosher as KO, Organic as OR, Vegan as VE};

const fn fam(
    slug: &'static str,
    noun: &'static str,
    maker: &'static str,
    unit: &'static str,
    ladder: &'static [f64],
    base_cents: i64,
    attrs: &'static [HardAttribute],
) -> Family {
    Family {
        slug,
        noun,
        maker,
        unit,
        ladder,
        base_cents,
        attrs,
    }
}

/// The families, grouped by department (two families per aisle).
const FAMILIES: &[Family] = &[
    // Oils, sauces, condiments.
    fam(
        "coconut-oil",
        "Coconut Oil",
        "Coco",
        "oz",
        &[14.0, 28.0, 54.0],
        699,
        &[OR, VE],
    ),
    fam(
        "olive-oil",
        "Extra Virgin Olive Oil",
        "Olivia",
        "ml",
        &[500.0, 750.0, 1000.0],
        899,
        &[OR, VE],
    ),
    fam(
        "balsamic-vinegar",
        "Balsamic Vinegar",
        "Modena Hills",
        "ml",
        &[250.0, 500.0],
        549,
        &[OR, VE, GF],
    ),
    fam(
        "soy-sauce",
        "Soy Sauce",
        "Umami House",
        "ml",
        &[250.0, 500.0, 1000.0],
        279,
        &[VE, GF],
    ),
    // Pasta, rice, sauces.
    fam(
        "pasta",
        "Spaghetti",
        "Bella",
        "g",
        &[500.0, 1000.0, 2000.0],
        199,
        &[OR, VE, GF],
    ),
    fam(
        "tomato-sauce",
        "Tomato Basil Sauce",
        "Nonna",
        "oz",
        &[24.0, 32.0, 45.0],
        349,
        &[OR, VE, GF],
    ),
    fam(
        "rice",
        "Jasmine Rice",
        "Paddy Fields",
        "g",
        &[1000.0, 2000.0, 5000.0],
        299,
        &[OR, VE, GF],
    ),
    fam(
        "flour",
        "All-Purpose Flour",
        "Millstone",
        "g",
        &[1000.0, 2000.0, 5000.0],
        249,
        &[OR, KO],
    ),
    // Breakfast.
    fam(
        "coffee-beans",
        "Whole Bean Coffee",
        "Roastery",
        "oz",
        &[12.0, 24.0, 40.0],
        999,
        &[OR, KO],
    ),
    fam(
        "coffee-filters",
        "Coffee Filters",
        "BrewRight",
        "each",
        &[100.0, 200.0, 400.0],
        299,
        &[],
    ),
    fam(
        "tea",
        "Green Tea",
        "Leafwell",
        "each",
        &[20.0, 40.0, 100.0],
        399,
        &[OR, VE],
    ),
    fam(
        "honey",
        "Clover Honey",
        "Beehive",
        "oz",
        &[12.0, 24.0, 40.0],
        599,
        &[OR, KO],
    ),
    fam(
        "cereal",
        "Corn Flakes",
        "Morning Sun",
        "oz",
        &[12.0, 18.0, 24.0],
        379,
        &[OR, VE],
    ),
    fam(
        "peanut-butter",
        "Creamy Peanut Butter",
        "Nutty",
        "oz",
        &[16.0, 28.0, 40.0],
        349,
        &[OR, VE, GF],
    ),
    fam(
        "jam",
        "Strawberry Jam",
        "Orchard",
        "oz",
        &[12.0, 18.0, 32.0],
        329,
        &[OR, VE, GF],
    ),
    fam(
        "bread",
        "Sandwich Bread",
        "Hearth",
        "oz",
        &[20.0, 24.0],
        299,
        &[OR, VE, GF],
    ),
    // Baking and snacks.
    fam(
        "sugar",
        "Cane Sugar",
        "Sweetfield",
        "g",
        &[1000.0, 2000.0, 4000.0],
        229,
        &[OR, VE],
    ),
    fam(
        "tortilla-chips",
        "Tortilla Chips",
        "Crunchito",
        "oz",
        &[10.0, 16.0, 24.0],
        299,
        &[OR, VE, GF],
    ),
    fam(
        "salsa",
        "Chunky Salsa",
        "Casa Verde",
        "oz",
        &[16.0, 24.0],
        329,
        &[OR, VE, GF],
    ),
    fam(
        "canned-tuna",
        "Chunk Light Tuna",
        "Seabright",
        "oz",
        &[5.0, 12.0],
        149,
        &[KO],
    ),
    // Dairy and drinks.
    fam(
        "milk",
        "Whole Milk",
        "Dairyland",
        "l",
        &[1.0, 2.0, 4.0],
        189,
        &[OR, KO],
    ),
    fam(
        "oat-milk",
        "Oat Milk",
        "Groats",
        "l",
        &[1.0, 2.0],
        349,
        &[OR, VE, GF],
    ),
    fam(
        "yogurt",
        "Greek Yogurt",
        "Alpine",
        "oz",
        &[5.0, 16.0, 32.0],
        149,
        &[OR, GF, KO],
    ),
    fam(
        "orange-juice",
        "Orange Juice",
        "Sunpress",
        "l",
        &[1.0, 2.0, 3.0],
        349,
        &[OR, VE],
    ),
    fam(
        "sparkling-water",
        "Sparkling Water",
        "Fizz",
        "ml",
        &[500.0, 1000.0, 2000.0],
        129,
        &[VE],
    ),
    // Personal care.
    fam(
        "shampoo",
        "Daily Shampoo",
        "Silken",
        "ml",
        &[250.0, 400.0, 750.0],
        449,
        &[VE],
    ),
    fam(
        "conditioner",
        "Daily Conditioner",
        "Silken",
        "ml",
        &[250.0, 400.0, 750.0],
        449,
        &[VE],
    ),
    fam(
        "toothpaste",
        "Fluoride Toothpaste",
        "Brightsmile",
        "oz",
        &[4.0, 6.0],
        299,
        &[VE],
    ),
    fam(
        "toothbrushes",
        "Soft Toothbrush",
        "Brightsmile",
        "each",
        &[1.0, 2.0, 4.0],
        249,
        &[],
    ),
    fam(
        "razors",
        "Razor Cartridges",
        "Edge",
        "each",
        &[4.0, 8.0, 12.0],
        1199,
        &[],
    ),
    fam(
        "shaving-cream",
        "Shaving Cream",
        "Edge",
        "oz",
        &[7.0, 11.0],
        349,
        &[VE],
    ),
    fam(
        "deodorant",
        "Deodorant",
        "Fresh Day",
        "oz",
        &[2.0, 3.0],
        499,
        &[VE],
    ),
    // Baby.
    fam(
        "diapers",
        "Baby Diapers",
        "Snug",
        "each",
        &[28.0, 56.0, 112.0],
        1099,
        &[],
    ),
    fam(
        "baby-wipes",
        "Baby Wipes",
        "Snug",
        "each",
        &[72.0, 216.0, 576.0],
        349,
        &[],
    ),
    // Household.
    fam(
        "dish-soap",
        "Dish Soap",
        "Sparkle",
        "oz",
        &[19.0, 28.0, 38.0],
        249,
        &[VE],
    ),
    fam(
        "laundry-detergent",
        "Laundry Detergent",
        "Freshwave",
        "oz",
        &[50.0, 100.0, 150.0],
        899,
        &[VE],
    ),
    fam(
        "paper-towels",
        "Paper Towels",
        "Softleaf",
        "each",
        &[2.0, 6.0, 12.0],
        399,
        &[],
    ),
    fam(
        "trash-bags",
        "Trash Bags",
        "Sturdy",
        "each",
        &[20.0, 40.0, 80.0],
        699,
        &[],
    ),
    // Apparel.
    fam(
        "socks",
        "Crew Socks",
        "Stride",
        "each",
        &[3.0, 6.0, 10.0],
        799,
        &[OR],
    ),
    fam(
        "belts",
        "Leather Belt",
        "Buckle & Co",
        "each",
        &[1.0, 2.0],
        1999,
        &[],
    ),
];

/// Curated cross-family complements: (family, family worth suggesting alongside it).
const COMPLEMENTS: &[(&str, &str)] = &[
    ("pasta", "tomato-sauce"),
    ("tomato-sauce", "pasta"),
    ("olive-oil", "balsamic-vinegar"),
    ("balsamic-vinegar", "olive-oil"),
    ("rice", "soy-sauce"),
    ("soy-sauce", "rice"),
    ("coffee-beans", "coffee-filters"),
    ("coffee-filters", "coffee-beans"),
    ("tea", "honey"),
    ("honey", "tea"),
    ("cereal", "milk"),
    ("milk", "cereal"),
    ("peanut-butter", "jam"),
    ("jam", "bread"),
    ("bread", "peanut-butter"),
    ("flour", "sugar"),
    ("sugar", "flour"),
    ("tortilla-chips", "salsa"),
    ("salsa", "tortilla-chips"),
    ("shampoo", "conditioner"),
    ("conditioner", "shampoo"),
    ("toothpaste", "toothbrushes"),
    ("toothbrushes", "toothpaste"),
    ("razors", "shaving-cream"),
    ("shaving-cream", "razors"),
    ("diapers", "baby-wipes"),
    ("baby-wipes", "diapers"),
    ("belts", "socks"),
    ("socks", "belts"),
    ("dish-soap", "paper-towels"),
    ("laundry-detergent", "dish-soap"),
];

const VALUE_LINES: &[&str] = &["Basics", "Saver", "Everyday"];
const STANDARD_LINES: &[&str] = &["Classic", "Original", "Family"];
const PREMIUM_LINES: &[&str] = &["Gold", "Reserve", "Select"];

/// How many families the catalogue has.
pub fn family_count() -> usize {
    FAMILIES.len()
}

fn tier_price_factor(tier: Tier) -> f64 {
    match tier {
        Tier::Value => 0.75,
        Tier::Premium => 1.45,
        _ => 1.0,
    }
}

/// Chance that a brand line carries each attribute its family allows.
fn attribute_chance(tier: Tier) -> f64 {
    match tier {
        Tier::Value => 0.15,
        Tier::Premium => 0.6,
        _ => 0.3,
    }
}

/// A price in cents, rounded to end in 9 ("$3.49").
fn shelf_price(raw_cents: f64) -> i64 {
    ((raw_cents / 10.0).round() as i64 * 10 - 1).max(49)
}

/// The size as it appears in a SKU: "14OZ", "500ML", "1L", "1.5L", "20EACH" -> "20CT".
fn size_code(value: f64, unit: &str) -> String {
    let unit = if unit == "each" {
        "CT".to_owned()
    } else {
        unit.to_uppercase()
    };
    format!("{value}{unit}")
}

/// The SKU of one product: family, brand line and size, e.g. `COCONUT-OIL-GOLD-14OZ`.
pub fn sku(family: &str, line: &str, value: f64, unit: &str) -> String {
    let line = line.to_uppercase().replace(' ', "-");
    format!(
        "{}-{line}-{}",
        family.to_uppercase(),
        size_code(value, unit)
    )
}

/// Generates the catalogue. Everything but the `event_id`s (UUID v4) depends only on `seed`.
pub fn generate(seed: u64, now_ms: i64) -> Vec<Product> {
    let mut rng = StdRng::seed_from_u64(mix_seed(seed, 0xCA7A_1061));
    let mut products = Vec::new();
    for (fi, f) in FAMILIES.iter().enumerate() {
        let brands = rng.random_range(2..=4usize);
        let tiers: Vec<Tier> = match brands {
            2 if rng.random_bool(0.5) => vec![Tier::Value, Tier::Standard],
            2 => vec![Tier::Standard, Tier::Premium],
            3 => vec![Tier::Value, Tier::Standard, Tier::Premium],
            _ => vec![Tier::Value, Tier::Standard, Tier::Premium, Tier::Premium],
        };
        let mut pools: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
        for (tier, lines) in [
            (Tier::Value, VALUE_LINES),
            (Tier::Standard, STANDARD_LINES),
            (Tier::Premium, PREMIUM_LINES),
        ] {
            let mut lines = lines.to_vec();
            lines.shuffle(&mut rng);
            pools.insert(tier as i32, lines);
        }
        for (bi, tier) in tiers.into_iter().enumerate() {
            let line = pools
                .get_mut(&(tier as i32))
                .and_then(Vec::pop)
                .unwrap_or("Classic");
            let brand = format!("{} {line}", f.maker);
            let name = format!("{brand} {}", f.noun);
            let jitter = rng.random_range(0.92..1.08);
            let attrs: Vec<i32> = f
                .attrs
                .iter()
                .filter(|_| rng.random_bool(attribute_chance(tier)))
                .map(|a| *a as i32)
                .collect();
            let n_sizes = if f.ladder.len() <= 2 {
                f.ladder.len()
            } else {
                rng.random_range(2..=3usize)
            };
            let start = rng.random_range(0..=f.ladder.len() - n_sizes);
            let location = format!("Aisle {}, shelf {}", fi / 2 + 1, bi + 1);
            for &value in &f.ladder[start..start + n_sizes] {
                let raw = f.base_cents as f64
                    * (value / f.ladder[0]).powf(0.8)
                    * tier_price_factor(tier)
                    * jitter;
                products.push(Product {
                    event_id: uuid::Uuid::new_v4().to_string(),
                    occurred_at_ms: now_ms,
                    sku: sku(f.slug, line, value, f.unit),
                    name: name.clone(),
                    brand: brand.clone(),
                    family: f.slug.to_owned(),
                    size: Some(Size {
                        value,
                        unit: f.unit.to_owned(),
                    }),
                    price_cents: shelf_price(raw),
                    tier: tier as i32,
                    hard_attributes: attrs.clone(),
                    allergen_free: Vec::new(),
                    complements: Vec::new(),
                    reorder_point: REORDER_POINT,
                    order_up_to: ORDER_UP_TO,
                    location: location.clone(),
                });
            }
        }
    }
    add_complements(&mut products);
    products
}

/// Each product gets up to two SKUs of its complement family, of two brands: the closest
/// tiers, smallest size of each.
fn add_complements(products: &mut [Product]) {
    let mut picks: Vec<Vec<String>> = Vec::with_capacity(products.len());
    for p in products.iter() {
        let Some((_, target)) = COMPLEMENTS.iter().find(|(from, _)| *from == p.family) else {
            picks.push(Vec::new());
            continue;
        };
        let mut candidates: Vec<&Product> =
            products.iter().filter(|c| c.family == *target).collect();
        candidates.sort_by(|a, b| {
            (a.tier - p.tier)
                .abs()
                .cmp(&(b.tier - p.tier).abs())
                .then(size_value(a).total_cmp(&size_value(b)))
                .then_with(|| a.sku.cmp(&b.sku))
        });
        let mut brands = BTreeSet::new();
        picks.push(
            candidates
                .iter()
                .filter(|c| brands.insert(c.brand.as_str()))
                .take(2)
                .map(|c| c.sku.clone())
                .collect(),
        );
    }
    for (p, c) in products.iter_mut().zip(picks) {
        p.complements = c;
    }
}

fn size_value(p: &Product) -> f64 {
    p.size.as_ref().map_or(0.0, |s| s.value)
}

fn size_unit(p: &Product) -> &str {
    p.size.as_ref().map_or("", |s| s.unit.as_str())
}

/// The same-brand, same-family products in the same unit that are bigger than `p`.
pub fn bigger_same_brand<'a>(p: &Product, catalog: &'a [Product]) -> Vec<&'a Product> {
    catalog
        .iter()
        .filter(|c| {
            c.family == p.family
                && c.brand == p.brand
                && size_unit(c) == size_unit(p)
                && size_value(c) > size_value(p)
        })
        .collect()
}

/// Products that may be troubled: the smallest size of every brand line that also sells a
/// bigger size, so a "bigger same brand" substitute always exists. Sorted by SKU.
pub fn troubled_candidates(catalog: &[Product]) -> Vec<&Product> {
    let mut smallest: BTreeMap<(&str, &str, &str), &Product> = BTreeMap::new();
    for p in catalog {
        let e = smallest
            .entry((p.family.as_str(), p.brand.as_str(), size_unit(p)))
            .or_insert(p);
        if size_value(p) < size_value(e) {
            *e = p;
        }
    }
    let mut out: Vec<&Product> = smallest
        .into_values()
        .filter(|p| !bigger_same_brand(p, catalog).is_empty())
        .collect();
    out.sort_by(|a, b| a.sku.cmp(&b.sku));
    out
}

/// The `n` troubled SKUs of one store, chosen from [`troubled_candidates`] by `seed` and the
/// store's index, from distinct families as long as there are enough.
pub fn pick_troubled(catalog: &[Product], seed: u64, store_index: usize, n: usize) -> Vec<String> {
    let mut candidates = troubled_candidates(catalog);
    let mut rng = StdRng::seed_from_u64(mix_seed(seed, 0x7120_0B1E ^ store_index as u64));
    candidates.shuffle(&mut rng);
    let mut families = BTreeSet::new();
    let mut picked: Vec<String> = Vec::new();
    for p in &candidates {
        if picked.len() < n && families.insert(p.family.as_str()) {
            picked.push(p.sku.clone());
        }
    }
    for p in &candidates {
        if picked.len() < n && !picked.contains(&p.sku) {
            picked.push(p.sku.clone());
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::{HashMap, HashSet};

    use shelfguard_events::{Message, validate};

    use super::*;

    fn catalog() -> Vec<Product> {
        generate(42, 1_700_000_000_000)
    }

    #[test]
    fn a_few_hundred_products_over_about_forty_families() {
        let c = catalog();
        assert!((200..=600).contains(&c.len()), "{} products", c.len());
        let families: HashSet<&str> = c.iter().map(|p| p.family.as_str()).collect();
        assert_eq!(families.len(), family_count());
        assert!((35..=45).contains(&families.len()));
        for f in &families {
            let brands: HashSet<&str> = c
                .iter()
                .filter(|p| p.family == *f)
                .map(|p| p.brand.as_str())
                .collect();
            assert!(
                (2..=4).contains(&brands.len()),
                "{f}: {} brands",
                brands.len()
            );
        }
    }

    #[test]
    fn skus_are_unique_valid_and_every_product_passes_the_contract() {
        let c = catalog();
        let skus: HashSet<&str> = c.iter().map(|p| p.sku.as_str()).collect();
        assert_eq!(skus.len(), c.len());
        for p in &c {
            validate::id("sku", &p.sku).unwrap();
            let back = validate::product(&p.encode_to_vec()).unwrap();
            assert_eq!(&back, p);
            assert!(!p.event_id.is_empty() && p.occurred_at_ms > 0);
            assert!(p.location.starts_with("Aisle "), "{}", p.location);
            assert!(
                !p.name.contains(|c: char| c.is_ascii_digit()),
                "size is not part of the name: {}",
                p.name
            );
        }
        assert!(
            skus.contains("COCONUT-OIL-GOLD-14OZ")
                || c.iter().any(|p| p.sku.starts_with("COCONUT-OIL-"))
        );
    }

    #[test]
    fn every_family_has_a_bigger_same_brand_size() {
        let c = catalog();
        let families: HashSet<&str> = c.iter().map(|p| p.family.as_str()).collect();
        for f in families {
            assert!(
                c.iter()
                    .filter(|p| p.family == f)
                    .any(|p| !bigger_same_brand(p, &c).is_empty()),
                "{f}"
            );
        }
    }

    #[test]
    fn prices_rise_with_size_and_tier_and_lines_are_consistent() {
        let c = catalog();
        let mut lines: HashMap<(&str, &str), Vec<&Product>> = HashMap::new();
        for p in &c {
            lines
                .entry((p.family.as_str(), p.brand.as_str()))
                .or_default()
                .push(p);
        }
        for ((f, b), ps) in &lines {
            assert!(
                (2..=3).contains(&ps.len())
                    || FAMILIES.iter().any(|x| x.slug == *f && x.ladder.len() < 2),
                "{f}/{b}"
            );
            for p in ps {
                assert_eq!(
                    p.hard_attributes, ps[0].hard_attributes,
                    "{f}/{b}: attributes per brand line"
                );
                assert_eq!(p.tier, ps[0].tier);
                for q in bigger_same_brand(p, &c) {
                    assert!(q.price_cents > p.price_cents, "{} vs {}", q.sku, p.sku);
                }
            }
        }
        // Same family and size: a higher tier is pricier.
        for p in &c {
            for q in c.iter().filter(|q| {
                q.family == p.family && size_value(q) == size_value(p) && q.tier > p.tier
            }) {
                assert!(q.price_cents > p.price_cents, "{} vs {}", q.sku, p.sku);
            }
        }
        assert!(c.iter().any(|p| !p.hard_attributes.is_empty()));
    }

    #[test]
    fn complements_exist_and_cross_families() {
        let c = catalog();
        let by_sku: HashMap<&str, &Product> = c.iter().map(|p| (p.sku.as_str(), p)).collect();
        let pasta = c.iter().find(|p| p.family == "pasta").unwrap();
        assert!(
            pasta
                .complements
                .iter()
                .all(|s| by_sku[s.as_str()].family == "tomato-sauce")
        );
        assert!(!pasta.complements.is_empty());
        for p in &c {
            for s in &p.complements {
                assert_ne!(by_sku[s.as_str()].family, p.family);
            }
        }
    }

    #[test]
    fn same_seed_same_catalogue_other_seed_other_catalogue() {
        let strip = |v: Vec<Product>| {
            v.into_iter()
                .map(|p| Product {
                    event_id: String::new(),
                    ..p
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(generate(7, 1)), strip(generate(7, 1)));
        assert_ne!(strip(generate(7, 1)), strip(generate(8, 1)));
    }

    #[test]
    fn troubled_skus_are_small_sizes_with_a_bigger_sibling_in_distinct_families() {
        let c = catalog();
        for store in 0..5 {
            let t = pick_troubled(&c, 42, store, 3);
            assert_eq!(t, pick_troubled(&c, 42, store, 3), "deterministic");
            assert_eq!(t.len(), 3);
            let fams: HashSet<&str> = t
                .iter()
                .map(|s| c.iter().find(|p| &p.sku == s).unwrap().family.as_str())
                .collect();
            assert_eq!(fams.len(), 3);
            for s in &t {
                let p = c.iter().find(|p| &p.sku == s).unwrap();
                let bigger = bigger_same_brand(p, &c);
                assert!(!bigger.is_empty(), "{s}");
                assert!(
                    bigger
                        .iter()
                        .all(|b| b.hard_attributes == p.hard_attributes)
                );
            }
        }
        assert_ne!(pick_troubled(&c, 42, 0, 3), pick_troubled(&c, 42, 1, 3));
        assert_eq!(
            pick_troubled(&c, 42, 0, 1000).len(),
            troubled_candidates(&c).len()
        );
    }
}
