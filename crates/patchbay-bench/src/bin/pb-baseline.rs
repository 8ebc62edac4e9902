//! The baseline: a minimal axum server on the same runtime as Patchbay that
//! returns the exact recorded response bytes for each path, touching no storage.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use clap::Parser;
use serde::Deserialize;

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18500")]
    listen: String,
    /// JSON file: {"<method> <path?query>": {"status", "content_type", "body_base64"}}; a `*`
    /// path segment in a key matches any one segment.
    #[arg(long)]
    responses: std::path::PathBuf,
}

#[derive(Deserialize)]
struct Recorded {
    status: u16,
    content_type: String,
    body_base64: String,
}

struct Canned {
    status: StatusCode,
    content_type: HeaderValue,
    body: axum::body::Bytes,
}

/// `"METHOD /a/*/c"` matches `"METHOD /a/b/c"`: `*` stands for one path segment.
fn matches(pattern: &str, key: &str) -> bool {
    let (p, k): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), key.split('/').collect());
    p.len() == k.len() && p.iter().zip(&k).all(|(p, k)| *p == "*" || p == k)
}

async fn answer(State(map): State<Arc<HashMap<String, Canned>>>, req: Request) -> Response {
    let key = format!("{} {}", req.method(), req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let found = map.get(&key).or_else(|| {
        // Scenarios whose every request has its own path are recorded once, with a `*`.
        map.iter().find(|(pattern, _)| pattern.contains('*') && matches(pattern, &key)).map(|(_, c)| c)
    });
    match found {
        Some(c) => {
            let mut r = Response::new(Body::from(c.body.clone()));
            *r.status_mut() = c.status;
            r.headers_mut().insert(header::CONTENT_TYPE, c.content_type.clone());
            r
        }
        None => {
            let mut r = Response::new(Body::from("not recorded"));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let raw: HashMap<String, Recorded> = serde_json::from_slice(&std::fs::read(&args.responses)?)?;
    let mut map = HashMap::new();
    for (k, v) in raw {
        map.insert(
            k,
            Canned {
                status: StatusCode::from_u16(v.status)?,
                content_type: HeaderValue::from_str(&v.content_type)?,
                body: base64::engine::general_purpose::STANDARD.decode(v.body_base64)?.into(),
            },
        );
    }
    let app = axum::Router::new().fallback(answer).with_state(Arc::new(map));
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("baseline listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
