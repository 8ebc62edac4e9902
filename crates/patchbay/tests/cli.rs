//! The `patchbay` binary as a user runs it: subcommands, exit codes,
//! signals, the key file and the demo.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use patchbay_store::testing::TestDb;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_patchbay");
const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn cmd(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir).env("RUST_LOG", "info");
    for (k, _) in std::env::vars() {
        if k.starts_with("PATCHBAY_") {
            c.env_remove(k);
        }
    }
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("run patchbay")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const VALID: &str = r#"{"integrations":{"organizations":[{"id":"org_a","name":"A","apiKey":"key_a"}],
  "connectorConfigs":[{"id":"ccfg_github_1","orgId":"org_a","connectorName":"github",
    "config":{"oauth":{"client_id":"c","client_secret":"s"}}}]}}"#;

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(cmd(dir.path()).arg("--version"));
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), format!("patchbay {}", env!("CARGO_PKG_VERSION")));
    let out = run(cmd(dir.path()).arg("--help"));
    assert!(out.status.success());
    let help = text(&out.stdout);
    for sub in ["serve", "demo", "migrate", "seed", "rotate-keys"] {
        assert!(help.contains(sub), "--help lists {sub}: {help}");
    }
}

#[test]
fn migrate_and_seed_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let out = run(cmd(dir.path()).args(["migrate", "--database-url", &url]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("p.db").exists());

    std::fs::write(dir.path().join("good.json"), VALID).unwrap();
    let out = run(cmd(dir.path()).args(["seed", "good.json", "--database-url", &url]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    std::fs::write(dir.path().join("bad.json"), r#"{"export":{"itwins":[{"id":"not-a-uuid","displayName":"x"}]}}"#)
        .unwrap();
    let out = run(cmd(dir.path()).args(["seed", "bad.json", "--database-url", &url]));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("$.export.itwins[0].id") && err.contains("is not a UUID"), "{err}");

    std::fs::write(
        dir.path().join("dangling.json"),
        r#"{"integrations":{"customers":[{"orgId":"org_nowhere","id":"c"}]}}"#,
    )
    .unwrap();
    let out = run(cmd(dir.path()).args(["seed", "dangling.json", "--database-url", &url]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("$.integrations.customers[0].orgId"));

    let out = run(cmd(dir.path()).args(["seed", "missing.json", "--database-url", &url]));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("missing.json"));
}

#[test]
fn postgres_without_a_master_key_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(cmd(dir.path()).args(["migrate", "--database-url", "postgres://postgres@127.0.0.1:5432/test"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("PATCHBAY_MASTER_KEYS is required with PostgreSQL"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn seed_and_rotate_keys_on_postgres() {
    let Some(db) = TestDb::postgres("seed_and_rotate_keys_on_postgres").await else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.json"), VALID).unwrap();
    let out =
        run(cmd(dir.path()).env("PATCHBAY_MASTER_KEYS", K1).args(["seed", "good.json", "--database-url", &db.url]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    rotate_and_check(dir.path(), &db.url).await;
}

#[tokio::test]
async fn rotate_keys_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    std::fs::write(dir.path().join("good.json"), VALID).unwrap();
    let out = run(cmd(dir.path()).env("PATCHBAY_MASTER_KEYS", K1).args(["seed", "good.json", "--database-url", &url]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    rotate_and_check(dir.path(), &url).await;
}

async fn rotate_and_check(dir: &Path, url: &str) {
    let k2 = patchbay_core::Vault::generate_spec("k2");
    let out =
        run(cmd(dir).env("PATCHBAY_MASTER_KEYS", format!("{k2},{K1}")).args(["rotate-keys", "--database-url", url]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The connector config's secret, and the database's seed-digest key (kept sealed too).
    assert_eq!(text(&out.stdout).trim(), r#"re-encrypted 2 secret(s) under key "k2""#);
    let store = patchbay_store::connect(url).await.unwrap();
    let rec = store.get_record("org_a", "integrations.connector_config", "ccfg_github_1").await.unwrap().unwrap();
    let only_k2 = patchbay_core::Vault::from_spec(&k2).unwrap();
    assert_eq!(rec.open_secret(&only_k2).unwrap().unwrap(), json!({"oauth": {"client_id": "c", "client_secret": "s"}}));
    store.close().await;
}

/// Starts a long-running subcommand and waits for the line that carries its URL.
fn spawn_until(c: &mut Command, marker: &str) -> (Child, String, Vec<String>) {
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    let mut url = None;
    let mut reader = BufReader::new(stdout).lines();
    for line in reader.by_ref() {
        let line = line.unwrap();
        if url.is_none()
            && let Some(pos) = line.find(marker)
        {
            url = Some(line[pos + marker.len()..].split_whitespace().next().unwrap().to_string());
        }
        lines.push(line);
        if url.is_some() && (marker.contains("listening") || lines.iter().any(|l| l.starts_with("Press Ctrl-C"))) {
            break;
        }
    }
    // Keep draining stdout so the child never writes into a closed pipe.
    std::thread::spawn(move || for _ in reader {});
    (child, url.expect("the server printed its URL"), lines)
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap().success();
    assert!(ok);
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn serve_creates_a_private_key_file_and_stops_cleanly_on_sigterm() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url, _) =
        spawn_until(cmd(dir.path()).args(["serve", "--listen", "127.0.0.1:0"]), "patchbay listening on ");
    let health = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // Default database beside the working directory, key file beside it, mode 0600.
    assert!(dir.path().join("patchbay.db").exists());
    let key = dir.path().join("patchbay.db.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    // Admin API is off without a token.
    let r = reqwest::Client::new().post(format!("{url}/admin/v1/seed")).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 404);
    signal(&child, "-TERM");
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("generated one into the key file"), "{err}");
    assert_eq!(err.matches("generated one into the key file").count(), 1, "warned once");
    assert!(!err.contains(&std::fs::read_to_string(&key).unwrap().trim()[3..]), "key material is never logged");
}

#[test]
fn serve_with_an_invalid_seed_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.json"), r#"{"network":{"enterprises":[{"id":""}]}}"#).unwrap();
    let out = run(cmd(dir.path()).args(["serve", "--listen", "127.0.0.1:0", "--seed", "bad.json"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("$.network.enterprises[0]"), "{}", text(&out.stderr));
}

#[test]
fn config_file_and_environment_are_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("custom.toml"), "database_url = \"sqlite://./from-file.db\"\n").unwrap();
    let out = run(cmd(dir.path()).args(["--config", "custom.toml", "migrate"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("from-file.db").exists());
    let out = run(cmd(dir.path()).env("PATCHBAY_DATABASE_URL", "sqlite://./from-env.db").args([
        "--config",
        "custom.toml",
        "migrate",
    ]));
    assert!(out.status.success());
    assert!(dir.path().join("from-env.db").exists());
    let out = run(cmd(dir.path()).args(["--config", "nope.toml", "migrate"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nope.toml"));
}

#[tokio::test]
async fn demo_serves_seeded_data_and_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url, lines) =
        spawn_until(cmd(dir.path()).args(["demo", "--listen", "127.0.0.1:0"]), "Patchbay demo is running at ");
    let banner = lines.join("\n");
    let token = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("admin token:"))
        .map(|t| t.trim().to_string())
        .expect("the banner shows the admin token");
    assert!(banner.contains("curl -s"), "{banner}");
    assert!(banner.contains("alice-token-1") && banner.contains("bob-token-1") && banner.contains("key_demo_org_1"));
    assert!(banner.contains(patchbay::demo::DEMO_V2_TOKEN), "the demo prints its v2 token");
    let magic = banner
        .lines()
        .map(str::trim)
        .find(|l| l.contains("/connect?token="))
        .expect("the banner prints a magic link")
        .to_string();
    // The banner's signed ledger curls work as printed: allocate, then settle.
    let joined = banner.replace("\\\n", " ");
    let ledger_calls: Vec<(String, String, String)> = joined
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("curl -s -X POST") && (l.contains("/allocations ") || l.contains("/partners/settlements "))
        })
        .map(|l| {
            let url = l.split_whitespace().nth(4).unwrap().to_string();
            let token = l.split("Bearer ").nth(1).unwrap().split('\'').next().unwrap().to_string();
            let body = l.split("-d '").nth(1).unwrap().trim_end_matches('\'').to_string();
            (url, token, body)
        })
        .collect();
    assert_eq!(ledger_calls.len(), 2, "{banner}");
    assert_eq!(reqwest::get(format!("{url}/healthz")).await.unwrap().status(), 200);
    let resp = reqwest::Client::new()
        .post(format!("{url}/admin/v1/seed"))
        .bearer_auth(&token)
        .body(r#"{"integrations":{"organizations":[{"id":"org_two","name":"Second Org","apiKey":"key_two"}]}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"applied": {"integrations": 1}}));
    // Network seed 001 and 000 against the demo data.
    let net = format!("{url}/api/network/v1/enterprises");
    let http = reqwest::Client::new();
    let conn = http
        .get(format!("{net}/ent-acme/clients/connections/c0a80101-0000-4000-8000-000000000001"))
        .bearer_auth("alice-token-1")
        .send()
        .await
        .unwrap();
    assert_eq!(conn.status(), 200);
    assert_eq!(conn.json::<Value>().await.unwrap()["connection"]["name"], "Desk 1");
    let list =
        http.get(format!("{net}/ent-exchange/partners/connections")).bearer_auth("erin-token-1").send().await.unwrap();
    // Desk 1 (the asynchronous partner) and the instant partner's desk.
    assert_eq!(list.json::<Value>().await.unwrap()["connections"].as_array().unwrap().len(), 2);
    for (url, token, body) in &ledger_calls {
        let r = http.post(url).bearer_auth(token).header("content-type", "application/json").body(body.clone());
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}: {}", r.text().await.unwrap());
    }
    let b: Value = http
        .get(format!("{net}/ent-acme/clients/balances"))
        .bearer_auth("alice-token-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["balances"]["ofcusd"]["available"], "975000", "{b}");
    // Connect with the demo client's key; the built-in partner initialises the connection.
    let req = json!({"partnerId": "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02", "name": "Desk 2", "nonce": "demo-2",
                     "connectionKey": {"schema": "token", "connectionToken": "tok-2"}});
    let payload: Value = http
        .post(format!("{net}/ent-acme/clients/connections/signing"))
        .bearer_auth("alice-token-1")
        .json(&req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payload = payload["payload"].as_str().unwrap().to_string();
    let mut body = req.clone();
    body["signature"] = json!(
        patchbay_core::network::sign_message(payload.as_bytes(), patchbay::demo::DEMO_CLIENT_PRIVATE_KEY).unwrap()
    );
    body["payload"] = json!(payload);
    let created: Value = http
        .post(format!("{net}/ent-acme/clients/connections"))
        .bearer_auth("alice-token-1")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["connection"]["id"].as_str().expect("created").to_string();
    let mut initialized = false;
    for _ in 0..200 {
        let c: Value = http
            .get(format!("{net}/ent-acme/clients/connections/{id}"))
            .bearer_auth("alice-token-1")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if c["connection"]["initialized"] == true {
            assert!(c["connection"]["partnersConnectionId"].as_str().unwrap().starts_with("demo-conn-"));
            initialized = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(initialized, "the demo partner initialised the connection");
    // Export: a simulated run completes.
    let run = http
        .post(format!("{url}/export/connections/exc-nightly-ifc/runs"))
        .bearer_auth("bob-token-1")
        .json(&json!({"exportType": "IFC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), 202);
    let location = run.headers()["location"].to_str().unwrap().to_string();
    let mut completed = Value::Null;
    for _ in 0..200 {
        let r: Value = http.get(&location).bearer_auth("bob-token-1").send().await.unwrap().json().await.unwrap();
        if r["run"]["state"] == "Completed" {
            completed = r["run"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(completed["result"], "Success", "the demo run completed: {completed}");
    // Integrations: the expired demo token is refreshed by the built-in provider.
    let c: Value = http
        .get(format!("{url}/v1/connection/conn_github_01JDEMO000000000000000000?include_secrets=true"))
        .bearer_auth("key_demo_org_1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["status"], "healthy", "{c}");
    assert!(c["settings"]["oauth"]["credentials"]["access_token"].as_str().unwrap().starts_with("demo-at-"));
    let check: Value = http
        .post(format!("{url}/v1/connection/conn_acme-apikey_01JDEMO000000000000000000/check"))
        .bearer_auth("key_cus_demo_1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["status"], "healthy", "{check}");
    // The banner's connector-gateway read: the demo customer's GitHub token, mirrored on top.
    let gw: Value = http
        .get(format!("{url}/api/v2/connection?include_secrets=true&connector_names=github"))
        .header("X-Replit-Token", "repl demo-repl-identity")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let settings = &gw["items"][0]["settings"];
    assert_eq!(settings["access_token"], settings["oauth"]["credentials"]["access_token"], "{gw}");
    assert!(settings["access_token"].as_str().is_some_and(|t| !t.is_empty()), "{gw}");
    // The banner's magic link connects GitHub through the demo provider's consent page.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = browser.get(&magic).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("aria-label=\"Connect GitHub\""), "{html}");
    let token = magic.split("token=").nth(1).unwrap().split('&').next().unwrap();
    let form = [("token", token), ("connector_config_id", "ccfg_github_01JDEMO000000000000000000")];
    let start = browser.post(format!("{url}/connect/oauth")).form(&form).send().await.unwrap();
    assert_eq!(start.status(), 303);
    let consent_url = start.headers()["location"].to_str().unwrap().to_string();
    let consent = browser.get(&consent_url).send().await.unwrap().text().await.unwrap();
    assert!(consent.contains("Allow") && consent.contains("Deny"), "{consent}");
    let q: Vec<(String, String)> = url::Url::parse(&consent_url).unwrap().query_pairs().into_owned().collect();
    let mut fields: Vec<(String, String)> = q
        .into_iter()
        .filter(|(k, _)| {
            ["redirect_uri", "state", "code_challenge", "code_challenge_method", "client_id", "scope"]
                .contains(&k.as_str())
        })
        .collect();
    fields.push(("decision".into(), "allow".into()));
    let provider = consent_url.split("/authorize").next().unwrap().to_string();
    let allowed = browser.post(format!("{provider}/authorize")).form(&fields).send().await.unwrap();
    let callback = allowed.headers()["location"].to_str().unwrap().to_string();
    assert!(callback.starts_with(&format!("{url}/connect/callback?")), "{callback}");
    let done = browser.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let html = done.text().await.unwrap();
    assert!(html.contains("Your account is connected"), "{html}");
    // And in a real browser (Debian's chromium, when installed; CI has it).
    let tools = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/connect");
    let ready = std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new(tools).join("node_modules/playwright-core").exists();
    assert!(ready || std::env::var("CI").is_err(), "CI must provide chromium and tools/connect/node_modules");
    if ready {
        let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/connect-screenshots/demo");
        let out = Command::new("node")
            .arg(format!("{tools}/demo.mjs"))
            .env("MAGIC_LINK", &magic)
            .env("SHOTS_DIR", shots)
            .output()
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("demo connect: ok conn_github_"), "{stdout}");
    } else {
        eprintln!("skipping the demo's browser run: chromium or tools/connect/node_modules is missing");
    }
    signal(&child, "-INT");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(20)).code(), Some(0));
}
