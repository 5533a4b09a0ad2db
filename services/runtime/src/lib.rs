//! Kafka plumbing shared by every service, written once.
//!
//! A service supplies a [`Processor`] (pure decisions: decoded events in, records out);
//! [`engine::run`] does the rest: consumer group, per-partition state restored from a
//! compacted changelog, batching, producing, dead letters, offsets stored only after the
//! broker acknowledged every output, and shutdown.

pub mod admin;
pub mod config;
pub mod connection;
pub mod dlq;
pub mod due;
pub mod engine;
pub mod health;
pub mod hold;
pub mod metrics;
pub mod observe;
pub mod preflight;
pub mod processor;
pub mod produce;
pub mod shutdown;
pub mod state;
pub mod step;
pub mod table;
pub mod telemetry;
pub mod trace;

pub use config::KafkaArgs;
pub use observe::Observer;
pub use processor::{Output, Processor, Rejected};
