//! Connect and Export's consent page in a real browser: tools/connect/e2e.mjs drives
//! Debian's chromium headless with Playwright against this server and an independent
//! OAuth2 server from npm (oauth2-mock-server). Screenshots of every page go to
//! `target/connect-screenshots/<backend>/`. CI installs chromium and the npm packages
//! (`.ci/run`); elsewhere the test skips with a notice when one is missing (and fails
//! when `CI` is set).

use std::path::PathBuf;
use std::process::Command;

use patchbay_store::worker::Registry;

mod common;
use common::ADMIN;

fn tools() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/connect"))
}

fn ready() -> Result<(), String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !PathBuf::from(&chromium).exists() {
        return Err(format!("{chromium} is missing (apt-get install chromium)"));
    }
    if !tools().join("node_modules/playwright-core").exists() {
        return Err("tools/connect/node_modules is missing (npm ci --prefix tools/connect)".into());
    }
    Ok(())
}

both_backends!(connect_and_consent_in_chromium, |db| {
    if let Err(why) = ready() {
        assert!(std::env::var("CI").is_err(), "CI must provide the browser test's tools: {why}");
        eprintln!("skipping the browser test: {why}");
        return;
    }
    // Export's run writes a file: into a folder of the test's, not the working directory.
    let data = tempfile::tempdir().unwrap();
    let mut c = common::config(&db, Some(ADMIN));
    c.data_dir = Some(data.path().to_path_buf());
    let srv = patchbay::start(&c, Registry::new()).await.unwrap();
    let backend = if db.url.starts_with("postgres") { "postgres" } else { "sqlite" };
    let shots = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/connect-screenshots")).join(backend);
    let _ = std::fs::remove_dir_all(&shots);
    let url = format!("http://{}", srv.addr);
    let script = tools().join("e2e.mjs");
    let shots_env = shots.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("PATCHBAY_URL", url)
            .env("ADMIN_TOKEN", ADMIN)
            .env("SHOTS_DIR", shots_env)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("screenshots: {}", shots.display());
    assert!(out.status.success(), "the browser test failed (screenshots in {}):\n{stdout}\n{stderr}", shots.display());
    assert!(stdout.contains("connect e2e: 8 passed"), "{stdout}");
    let taken = std::fs::read_dir(&shots).unwrap().count();
    assert!(taken >= 10, "{taken} screenshots");
    srv.shutdown().await.unwrap();
});
