//! Command 1: the whole system on one machine.
//!
//! Starts an embedded broker (tansu, memory storage by default) unless a cluster is given,
//! creates the topics, runs the three services (each with its own consumer group and
//! clients, talking only over Kafka, exactly as their own binaries do), the store and
//! warehouse simulator, and prints every offer as it reaches the floor staff channel.
pub mod broker;
pub mod cli;
pub mod console;
pub mod lan;
