//! What a service may watch of its own work, for metrics: the records it publishes and the
//! state of its keys. Kept apart from [`crate::Processor`] (the decisions) so metrics never
//! touch the business rules; see [`crate::engine::run_observed`].
use crate::processor::Output;

/// Notified by the engine; every method defaults to doing nothing.
pub trait Observer<S>: Send + 'static {
    /// A record about to be published for an applied event (outputs only: neither dead letters
    /// nor the changelog). A replay after a crash shows the same record again.
    fn output(&mut self, _output: &Output) {}
    /// The state of `key` after a batch changed it (as written to the changelog), or as
    /// restored from the changelog when its partition was assigned.
    fn state(&mut self, _key: &str, _state: &S) {}
    /// `key` is no longer owned by this instance (its partition was revoked).
    fn forgotten(&mut self, _key: &str) {}
}

/// Watches nothing.
pub struct NoObserver;

impl<S> Observer<S> for NoObserver {}
