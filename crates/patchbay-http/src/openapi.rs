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

/// Adds, to every operation that does not list them, the answers the platform
/// itself can give before or around a handler, each with the face's error schema:
/// 400 (an invalid `Host`, a request the HTTP parser refused, an undecodable path
/// or query), 413 (a body over the limit, refused before it is read), 429 (the
/// face's rate limit or the failed-authentication limit, with `Retry-After`) and
/// 503 (the request time-out).
pub struct PlatformResponses(pub &'static str);

impl Modify for PlatformResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};
        let error = || ContentBuilder::new().schema(Some(Ref::from_schema_name(self.0))).build();
        let answers: [(&str, &str); 4] = [
            (
                "400",
                "Bad request: an invalid Host header, a request line or header the parser refused, or a path or query that cannot be decoded",
            ),
            ("413", "The body is over the limit (a declared Content-Length is refused before the body is read)"),
            ("429", "Rate limited (the face's limit or the failed-authentication limit)"),
            ("503", "The request took too long and was abandoned"),
        ];
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for op in ops.into_iter().flatten() {
                for (status, description) in answers {
                    if op.responses.responses.contains_key(status) {
                        continue;
                    }
                    let mut r = ResponseBuilder::new().description(description).content("application/json", error());
                    if status == "429" {
                        r = r.header(
                            "Retry-After",
                            HeaderBuilder::new()
                                .description(Some("Seconds to wait"))
                                .schema(Some(
                                    utoipa::openapi::ObjectBuilder::new()
                                        .schema_type(utoipa::openapi::schema::Type::Integer)
                                        .build(),
                                ))
                                .build(),
                        );
                    }
                    op.responses.responses.insert(status.to_string(), r.build().into());
                }
            }
        }
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
