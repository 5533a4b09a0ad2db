//! Events that arrive before what they need (their product's catalogue record) are held per
//! key, not refused: the setting that bounds how long.
//!
//! The mechanism is in [`crate::step`] (hold, release, give up) and [`crate::Processor::waiting`].
use clap::Args;

/// Default of `UNKNOWN_SKU_GRACE_HOURS`.
pub const DEFAULT_GRACE_HOURS: u32 = 24;

/// How long an event for a product not in the catalogue yet is held.
#[derive(Debug, Clone, Copy, Args)]
pub struct HoldArgs {
    /// Hours (of the store's event time) an event for a SKU not in the catalogue yet is held,
    /// waiting for the product's catalogue record, before it is dead-lettered; 1 to 720.
    #[arg(
        long,
        env = "UNKNOWN_SKU_GRACE_HOURS",
        default_value_t = DEFAULT_GRACE_HOURS,
        value_parser = clap::value_parser!(u32).range(1..=720)
    )]
    pub unknown_sku_grace_hours: u32,
}

impl Default for HoldArgs {
    fn default() -> Self {
        Self {
            unknown_sku_grace_hours: DEFAULT_GRACE_HOURS,
        }
    }
}

impl HoldArgs {
    pub fn grace_ms(&self) -> i64 {
        i64::from(self.unknown_sku_grace_hours) * 3_600_000
    }
}
