//! The outbound client against real local servers: the SSRF guard (IP
//! literals and names resolved by DNS), the allow list, redirects, timeouts
//! and the response size cap.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use patchbay_http::outbound::{Call, Outbound, OutboundConfig, OutboundError};

async fn upstream() -> SocketAddr {
    let app = Router::new()
        .route("/ok", get(|| async { "hello" }))
        .route("/redirect", get(|| async { Redirect::temporary("/ok") }))
        .route("/big", get(|| async { "x".repeat(64 * 1024) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/teapot", get(|| async { (StatusCode::IM_A_TEAPOT, "short and stout").into_response() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn client(f: impl FnOnce(&mut OutboundConfig)) -> Outbound {
    let mut c = OutboundConfig::default();
    f(&mut c);
    Outbound::new(c)
}

#[tokio::test]
async fn loopback_is_refused_by_default_for_literals_and_names() {
    let addr = upstream().await;
    let out = client(|_| {});
    for url in [
        format!("http://127.0.0.1:{}/ok", addr.port()),
        format!("http://localhost:{}/ok", addr.port()),
        format!("http://[::ffff:127.0.0.1]:{}/ok", addr.port()),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/".to_string(),
        "http://[fe80::1]/".to_string(),
    ] {
        match out.get(Call::Webhook, &url).await {
            Err(OutboundError::Refused(_)) => {}
            other => panic!("{url}: expected a refusal, got {other:?}"),
        }
    }
    assert!(matches!(out.get(Call::Webhook, "ftp://example.com/").await, Err(OutboundError::BadUrl)));
    assert!(matches!(out.get(Call::Webhook, "not a url").await, Err(OutboundError::BadUrl)));
}

#[tokio::test]
async fn allow_list_names_host_and_port() {
    let addr = upstream().await;
    let out = client(|c| c.allow = vec![format!("127.0.0.1:{}", addr.port())]);
    let r = out.get(Call::Webhook, &format!("http://127.0.0.1:{}/ok", addr.port())).await.unwrap();
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"hello"[..]));
    // Another port on the same host is still refused.
    assert!(matches!(
        out.get(Call::Webhook, &format!("http://127.0.0.1:{}/ok", addr.port() + 1)).await,
        Err(OutboundError::Refused(_))
    ));
    let loop_ok = client(|c| c.allow_loopback = true);
    let r = loop_ok.get(Call::Webhook, &format!("http://localhost:{}/ok", addr.port())).await.unwrap();
    assert_eq!(r.status.as_u16(), 200);
    // Loopback permission does not open private ranges.
    assert!(matches!(loop_ok.get(Call::Webhook, "http://10.0.0.1/").await, Err(OutboundError::Refused(_))));
}

#[tokio::test]
async fn redirects_are_not_followed_and_statuses_pass_through() {
    let addr = upstream().await;
    let out = client(|c| c.allow_loopback = true);
    let r = out.get(Call::Webhook, &format!("http://127.0.0.1:{}/redirect", addr.port())).await.unwrap();
    assert_eq!(r.status.as_u16(), 307);
    assert_eq!(r.headers["location"], "/ok");
    let r = out.get(Call::Webhook, &format!("http://127.0.0.1:{}/teapot", addr.port())).await.unwrap();
    assert_eq!((r.status.as_u16(), &r.body[..]), (418, &b"short and stout"[..]));
}

#[tokio::test]
async fn size_cap_and_timeout() {
    let addr = upstream().await;
    let out = client(|c| {
        c.allow_loopback = true;
        c.max_response_bytes = 1024;
        c.timeout = Duration::from_millis(300);
    });
    match out.get(Call::Webhook, &format!("http://127.0.0.1:{}/big", addr.port())).await {
        Err(OutboundError::TooLarge(1024)) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    match out.get(Call::Webhook, &format!("http://127.0.0.1:{}/slow", addr.port())).await {
        Err(OutboundError::Timeout) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    // Connection refused is a transport error without the URL in it.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    match out.get(Call::Webhook, &format!("http://127.0.0.1:{closed}/x?secret=s3cr3t")).await {
        Err(OutboundError::Transport(msg)) => assert!(!msg.contains("s3cr3t"), "{msg}"),
        other => panic!("expected Transport, got {other:?}"),
    }
}
