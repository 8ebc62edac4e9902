//! Domain types and platform primitives shared by every Patchbay face.
//!
//! Nothing here knows about HTTP or SQL: the secrets vault, token hashing,
//! the seed document model and its validation, the rate limiter and the clock.

pub mod bitgo_hmac;
pub mod clock;
pub mod connect;
pub mod entropy;
pub mod export;
pub mod hashing;
pub mod integrations;
pub mod ledger;
pub mod ledger_objects;
pub mod network;
pub mod ratelimit;
pub mod sandbox;
pub mod seed;
pub mod vault;

pub use clock::{Clock, ManualClock, SandboxClock, SystemClock};
pub use entropy::Entropy;
pub use vault::{Sealed, Vault, VaultError};
