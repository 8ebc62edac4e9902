//! Patchbay's HTTP layer: the shared platform (request ids, logs, metrics,
//! health, body limits, timeouts, panics, rate limits), the admin API, and
//! one module per API face. Each face renders errors in its own wire shape
//! through [`face::Face`].

pub mod admin;
pub mod export;
pub mod face;
pub mod files;
pub mod integrations;
pub mod limits;
pub mod metrics;
pub mod network;
pub mod openapi;
pub mod outbound;
pub mod platform;
pub mod sandbox;
pub mod server;
pub mod state;
pub mod tls;

pub use rustls;

pub use face::Face;
pub use state::{AppState, HttpConfig};

use axum::Router;

/// The whole application router: the platform endpoints and every face.
pub fn router(state: AppState) -> Router {
    app(
        state,
        vec![
            (Face::Network, network::routes()),
            (Face::Export, export::routes()),
            (Face::Integrations, integrations::routes()),
            (Face::Admin, admin::routes()),
        ],
    )
}

/// Assembles the platform endpoints with the given face routers, each under
/// its face's guard, and the outer layers (body limit, request id, metrics, logs).
pub fn app(state: AppState, faces: Vec<(Face, Router<AppState>)>) -> Router {
    let mut router = Router::new().merge(platform::routes());
    // Each face's routes live under its prefix, which names the face whose
    // error shape the guard in `platform::Observe` answers in.
    for (_, routes) in faces {
        router = router.merge(routes);
    }
    router.fallback(platform::not_found).layer(platform::ObserveLayer::new(state.clone())).with_state(state)
}
