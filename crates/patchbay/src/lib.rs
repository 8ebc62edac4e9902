//! The `patchbay` binary's library half: configuration, key loading, wiring
//! and the demo, so black-box tests can start the real server in-process.

pub mod app;
pub mod config;
pub mod demo;
pub mod keys;
pub mod sandbox_cli;
pub mod telemetry;

pub use app::{Running, StartError, start};
pub use config::Config;
