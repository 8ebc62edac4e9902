//! BitGo's own SDK against Patchbay, on both backends: the real `TradingNetwork`
//! class of npm `@bitgo/sdk-core` (with `@bitgo/sdk-api`'s `BitGoAPI` signing every
//! request with the demo's v2 token and `@bitgo/sdk-hmac` verifying every answer)
//! calls each of its methods through a whole story — connect, allocate, the partner
//! clears, deallocate, settle, the client disputes and closes
//! (`tools/bitgo/network-story.js`). Runs when `tools/bitgo/node_modules` holds the
//! packages (`.ci/run` installs them with `npm ci --prefix tools/bitgo`).

use patchbay::demo::DEMO_SEED;
use serde_json::Value;

mod common;
use common::{ADMIN, boot};

both_backends!(the_trading_network_sdk_runs_its_whole_story, |db| {
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/bitgo");
    if !tools.join("node_modules/@bitgo/sdk-core").exists() {
        eprintln!("skipped: tools/bitgo/node_modules lacks @bitgo/sdk-core (npm ci --prefix tools/bitgo installs it)");
        return;
    }
    let srv = boot(&db, Some(ADMIN)).await;
    let http = reqwest::Client::new();
    let a = http
        .post(format!("http://{}/admin/v1/seed", srv.addr))
        .bearer_auth(ADMIN)
        .body(DEMO_SEED)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 200, "{}", a.text().await.unwrap());
    let out = tokio::process::Command::new("node")
        .arg(tools.join("network-story.js"))
        .env("PATCHBAY_URL", format!("http://{}", srv.addr))
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("all 15 TradingNetwork methods called"), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("network story: 17 steps, ") && last.ends_with(" signed answers verified"), "{stdout}");
    // The ledger agrees with what the story did: ent-acme's trading account lost what it
    // allocated and did not get back (the story reports the network account's balance).
    let b: Value = http
        .get(format!("http://{}/api/network/v1/enterprises/ent-acme/clients/balances", srv.addr))
        .bearer_auth("alice-token-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let usd = &b["balances"]["ofcusd"];
    assert_eq!((usd["available"].as_str(), usd["held"].as_str()), (Some("980000"), Some("0")), "{b}");
    srv.shutdown().await.unwrap();
});
