//! Shared OpenAPI plumbing: the bearer security scheme and serving a document.

use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Adds the `bearer` HTTP security scheme every face uses.
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document of `A`, as JSON.
pub fn document<A: OpenApi>() -> serde_json::Value {
    let mut doc = serde_json::to_value(A::openapi()).expect("OpenAPI documents serialise");
    doc["info"]["version"] = serde_json::json!(env!("CARGO_PKG_VERSION"));
    doc
}

pub async fn serve<A: OpenApi>() -> Response {
    axum::Json(document::<A>()).into_response()
}
