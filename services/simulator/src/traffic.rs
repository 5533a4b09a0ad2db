//! Shoppers: Poisson basket arrivals and what goes into each basket.
//!
//! Pure: every function takes the random number generator; nothing here sleeps or publishes.
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;

/// Lines beyond the first in a basket: Poisson with this mean (2.5 lines per basket on average).
pub const EXTRA_LINES_MEAN: f64 = 1.5;
/// Exponent of the Zipf-like everyday popularity (1.0 is classic Zipf; lower is flatter).
pub const ZIPF_EXPONENT: f64 = 0.8;
/// Share of all line draws taken by each troubled SKU. At 2 baskets/s (5 lines/s, 1.5 units
/// per line) that is ~0.15 units/s: 3-5 units are gone in ~20-35 s.
pub const TROUBLED_SHARE: f64 = 0.02;
/// Draws per wanted line before a basket gives up (duplicates and empty shelves are redrawn).
const DRAWS_PER_LINE: usize = 8;

/// How likely each SKU (by index) is to be picked for a basket line.
#[derive(Debug, Clone)]
pub struct Popularity {
    /// Running sum of the weights; the last element is the total.
    cumulative: Vec<f64>,
}

impl Popularity {
    /// Zipf-like weights over `n` SKUs in a random popularity order (drawn from `rng`), except
    /// that each index in `boosted` takes `boosted_share` of all draws (capped so the boosted
    /// SKUs together take at most 90%).
    pub fn new(rng: &mut impl Rng, n: usize, boosted: &[usize], boosted_share: f64) -> Self {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        let mut weights = vec![0.0; n];
        for (rank, &i) in order.iter().enumerate() {
            weights[i] = 1.0 / ((rank + 1) as f64).powf(ZIPF_EXPONENT);
        }
        let mut boosted: Vec<usize> = boosted.iter().copied().filter(|&i| i < n).collect();
        boosted.sort_unstable();
        boosted.dedup();
        if !boosted.is_empty() {
            let k = boosted.len() as f64;
            let share = boosted_share.clamp(0.0, 0.9 / k);
            let others: f64 = weights
                .iter()
                .enumerate()
                .filter(|(i, _)| boosted.binary_search(i).is_err())
                .map(|(_, w)| w)
                .sum();
            // w / (others + k * w) = share  <=>  w = share * others / (1 - k * share)
            let w = if others > 0.0 {
                share * others / (1.0 - k * share)
            } else {
                1.0
            };
            for &i in &boosted {
                weights[i] = w;
            }
        }
        let mut total = 0.0;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Self { cumulative }
    }

    /// Draws by the given weights (negative or non-finite weights count as 0).
    pub fn from_weights(weights: &[f64]) -> Self {
        let mut total = 0.0;
        let cumulative = weights
            .iter()
            .map(|&w| {
                if w.is_finite() && w > 0.0 {
                    total += w;
                }
                total
            })
            .collect();
        Self { cumulative }
    }

    /// Number of SKUs.
    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    fn total(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(0.0)
    }

    /// The probability that one draw picks SKU `i`.
    pub fn share(&self, i: usize) -> f64 {
        let below = if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        (self.cumulative[i] - below) / self.total()
    }

    /// One SKU index, drawn by weight. `None` when there are no SKUs.
    pub fn sample(&self, rng: &mut impl Rng) -> Option<usize> {
        if self.is_empty() || self.total() <= 0.0 {
            return None;
        }
        let x = rng.random::<f64>() * self.total();
        let i = self.cumulative.partition_point(|&c| c <= x);
        Some(i.min(self.len() - 1))
    }
}

/// Time to the next basket of a store selling `rate` baskets per second (exponential, so
/// arrivals are a Poisson process). `None` when the rate is not positive.
pub fn inter_arrival(rng: &mut impl Rng, rate: f64) -> Option<Duration> {
    if !(rate.is_finite() && rate > 0.0) {
        return None;
    }
    let u: f64 = rng.random(); // [0, 1)
    Some(Duration::from_secs_f64(-(1.0 - u).ln() / rate))
}

/// A Poisson draw (Knuth's method; fine for the small means used here).
pub fn poisson(rng: &mut impl Rng, mean: f64) -> u32 {
    if !(mean.is_finite() && mean > 0.0) {
        return 0;
    }
    let limit = (-mean).exp();
    let mut k = 0;
    let mut p: f64 = rng.random();
    while p > limit && k < 1000 {
        k += 1;
        p *= rng.random::<f64>();
    }
    k
}

/// One line of a basket: a SKU index and the units taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub index: usize,
    pub quantity: i32,
}

/// One basket: `1 + Poisson(extra_lines_mean)` lines wanted, distinct SKUs drawn by
/// popularity, 1-2 units each, never more than `on_shelf(index)` (shoppers cannot take what
/// is not there, so an empty shelf is skipped). May come back empty when shelves are bare.
pub fn basket(
    rng: &mut impl Rng,
    popularity: &Popularity,
    extra_lines_mean: f64,
    on_shelf: impl Fn(usize) -> i32,
) -> Vec<Line> {
    let wanted = 1 + poisson(rng, extra_lines_mean) as usize;
    let mut lines: Vec<Line> = Vec::with_capacity(wanted);
    for _ in 0..wanted * DRAWS_PER_LINE {
        if lines.len() == wanted {
            break;
        }
        let Some(index) = popularity.sample(rng) else {
            break;
        };
        let available = on_shelf(index);
        if available <= 0 || lines.iter().any(|l| l.index == index) {
            continue;
        }
        let quantity = rng.random_range(1..=2).min(available);
        lines.push(Line { index, quantity });
    }
    lines
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn mean_inter_arrival_is_one_over_the_rate() {
        let mut rng = StdRng::seed_from_u64(1);
        for rate in [0.5, 2.0, 10.0] {
            let n = 50_000;
            let total: f64 = (0..n)
                .map(|_| inter_arrival(&mut rng, rate).unwrap().as_secs_f64())
                .sum();
            let mean = total / n as f64;
            assert!(
                (mean - 1.0 / rate).abs() < 0.05 / rate,
                "rate {rate}: mean {mean}"
            );
        }
        assert_eq!(inter_arrival(&mut rng, 0.0), None);
        assert_eq!(inter_arrival(&mut rng, f64::NAN), None);
    }

    #[test]
    fn poisson_mean_is_close() {
        let mut rng = StdRng::seed_from_u64(2);
        let n = 50_000;
        let mean = (0..n)
            .map(|_| f64::from(poisson(&mut rng, 1.5)))
            .sum::<f64>()
            / n as f64;
        assert!((mean - 1.5).abs() < 0.05, "{mean}");
        assert_eq!(poisson(&mut rng, 0.0), 0);
    }

    #[test]
    fn baskets_have_distinct_skus_and_one_or_two_units() {
        let mut rng = StdRng::seed_from_u64(3);
        let pop = Popularity::new(&mut rng, 300, &[], 0.0);
        let mut lines = 0;
        for _ in 0..10_000 {
            let b = basket(&mut rng, &pop, EXTRA_LINES_MEAN, |_| 100);
            assert!(!b.is_empty());
            lines += b.len();
            for (i, l) in b.iter().enumerate() {
                assert!((1..=2).contains(&l.quantity));
                assert!(b[..i].iter().all(|o| o.index != l.index));
            }
        }
        let mean = lines as f64 / 10_000.0;
        assert!((mean - 2.5).abs() < 0.1, "{mean}");
    }

    #[test]
    fn empty_shelves_are_never_sold_and_quantity_is_capped() {
        let mut rng = StdRng::seed_from_u64(4);
        let pop = Popularity::new(&mut rng, 10, &[], 0.0);
        for _ in 0..1000 {
            for l in basket(&mut rng, &pop, EXTRA_LINES_MEAN, |i| {
                if i % 2 == 0 { 0 } else { 1 }
            }) {
                assert_eq!(l.index % 2, 1);
                assert_eq!(l.quantity, 1);
            }
        }
        assert!(basket(&mut rng, &pop, EXTRA_LINES_MEAN, |_| 0).is_empty());
    }

    #[test]
    fn popularity_is_skewed_and_boosted_skus_get_their_share() {
        let mut rng = StdRng::seed_from_u64(5);
        let pop = Popularity::new(&mut rng, 300, &[7, 42, 99], TROUBLED_SHARE);
        for i in [7, 42, 99] {
            assert!((pop.share(i) - TROUBLED_SHARE).abs() < 1e-9);
        }
        let mut shares: Vec<f64> = (0..300)
            .filter(|i| ![7, 42, 99].contains(i))
            .map(|i| pop.share(i))
            .collect();
        shares.sort_by(|a, b| b.total_cmp(a));
        assert!(
            shares[0] > 20.0 * shares[shares.len() - 1],
            "Zipf-like skew"
        );
        let total: f64 = (0..300).map(|i| pop.share(i)).sum();
        assert!((total - 1.0).abs() < 1e-9);
        let n = 100_000;
        let hits = (0..n).filter(|_| pop.sample(&mut rng) == Some(42)).count();
        assert!((hits as f64 / n as f64 - TROUBLED_SHARE).abs() < 0.003);
    }

    /// The promise of the scenario: at the default rate a troubled SKU opened with 3-5 units
    /// is sold out within ~20-40 s.
    #[test]
    fn troubled_skus_sell_out_in_about_half_a_minute() {
        let mut rng = StdRng::seed_from_u64(6);
        let mut total = 0.0;
        let trials = 200;
        for _ in 0..trials {
            let pop = Popularity::new(&mut rng, 300, &[0], TROUBLED_SHARE);
            let mut left: i32 = rng.random_range(3..=5);
            let mut t = 0.0;
            while left > 0 {
                t += inter_arrival(&mut rng, 2.0).unwrap().as_secs_f64();
                for l in basket(&mut rng, &pop, EXTRA_LINES_MEAN, |i| {
                    if i == 0 { left } else { 50 }
                }) {
                    if l.index == 0 {
                        left -= l.quantity;
                    }
                }
            }
            total += t;
        }
        let mean = total / f64::from(trials);
        assert!((20.0..=40.0).contains(&mean), "mean sell-out {mean:.1} s");
    }
}
