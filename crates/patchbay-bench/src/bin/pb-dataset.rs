//! Fills a database (SQLite or PostgreSQL) with N connections for each face,
//! spread over many tenants, with bulk multi-row inserts. The fixed part
//! (enterprises, users, tokens, partners, iTwins, iModels, organisations,
//! connector configs) goes through the normal seed path; the connections are
//! inserted directly, with their secrets sealed by the vault like the server does.
//!
//! Tokens: network `bench-net-token`, export `bench-export-token`,
//! integrations `key_bench_<tenant>`.

use std::time::Instant;

use clap::Parser;
use patchbay_core::network::{derived_uuid, proof, sign_message, signing_payload};
use patchbay_core::seed::kind;
use patchbay_core::{Vault, seed};
use patchbay_store::Record;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    database_url: String,
    /// Connections per face.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Tenants per face.
    #[arg(long, default_value_t = 100)]
    tenants: usize,
    /// `id:base64` master keys (the server must be started with the same).
    #[arg(long)]
    master_keys: String,
    /// Also write the request files of the scenarios whose every request
    /// differs here (`connect.tsv`, `create-run.tsv`: each usable once;
    /// `get-spread.tsv`: gets over many connections), one
    /// `METHOD<TAB>PATH<TAB>BODY` line per request, for `bench/wrk-requests.lua`.
    #[arg(long)]
    requests_dir: Option<std::path::PathBuf>,
    /// Connect to Partner requests to write (each a fresh nonce, signed).
    #[arg(long, default_value_t = 100_000)]
    connect_requests: usize,
    /// Allocation requests to write (`allocate.tsv`: each a fresh nonce and clientExternalId, signed).
    #[arg(long, default_value_t = 200_000)]
    allocate_requests: usize,
    /// Settlements of the bench partner to store (for the list-settlements scenario).
    #[arg(long, default_value_t = 1_000)]
    settlements: usize,
}

const ROWS: usize = 500;
const PARTNER: &str = "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02";
/// The clients' registered key: the public key of private key 1 (the generator point).
const PUBKEY: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
const PRIVKEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";
const BASE_MS: i64 = 1_767_225_600_000; // 2026-01-01

fn client_id(t: usize) -> String {
    derived_uuid("bench-client", &t.to_string())
}
fn itwin(t: usize) -> String {
    derived_uuid("bench-itwin", &t.to_string())
}
fn imodel(t: usize) -> String {
    derived_uuid("bench-imodel", &t.to_string())
}

fn fixed_seed(tenants: usize) -> serde_json::Value {
    let ents: Vec<_> = (0..tenants).map(|t| json!({"id": format!("ent-{t}"), "name": format!("Enterprise {t}"), "oesLicense": true, "trustOrg": "BitGo Trust"})).collect();
    let mut all_ents: Vec<String> = (0..tenants).map(|t| format!("ent-{t}")).collect();
    all_ents.push("ent-partner".into());
    let mut enterprises = ents;
    enterprises.push(json!({"id": "ent-partner", "name": "Partner", "oesLicense": true, "trustOrg": "BitGo Trust", "partnerEligible": true}));
    let perms: serde_json::Map<String, serde_json::Value> =
        (0..tenants).map(|t| (itwin(t), json!(["read", "modify"]))).collect();
    json!({
        "network": {
            "enterprises": enterprises,
            "users": [{"id": "bench", "enterprises": all_ents,
                       "tokens": [{"token": "bench-net-token", "scopes": ["settlement_network_read", "settlement_network_write"]}]}],
            "clients": (0..tenants).map(|t| json!({"id": client_id(t), "enterpriseId": format!("ent-{t}"), "walletId": format!("w{t}"), "publicKey": PUBKEY,
                                                   "funds": {"ofcusd": "1000000000000000"}})).collect::<Vec<_>>(),
            "partners": [{"id": PARTNER, "enterpriseId": "ent-partner", "name": "Bench Exchange", "institutionIdentifier": "bench",
                          "connectionKeySchema": "token", "trustOrg": "BitGo Trust"}]
        },
        "export": {
            "itwins": (0..tenants).map(|t| json!({"id": itwin(t), "displayName": format!("iTwin {t}")})).collect::<Vec<_>>(),
            "imodels": (0..tenants).map(|t| json!({"id": imodel(t), "iTwinId": itwin(t), "displayName": format!("iModel {t}")})).collect::<Vec<_>>(),
            "users": [{"id": "bench", "tokens": [{"token": "bench-export-token", "scopes": ["itwin-platform"]}], "itwins": perms}]
        },
        "integrations": {
            "organizations": (0..tenants).map(|t| json!({"id": format!("org_{t}"), "name": format!("Org {t}"), "apiKey": format!("key_bench_{t}")})).collect::<Vec<_>>(),
            "connectorConfigs": (0..tenants).map(|t| json!({"id": format!("ccfg_github_bench{t}"), "orgId": format!("org_{t}"), "connectorName": "github",
                "config": {"oauth": {"client_id": "cid", "client_secret": "secret"}}})).collect::<Vec<_>>()
        }
    })
}

macro_rules! bulk {
    ($pool:expr, $db:ty, $vault:expr, $n:expr, $t:expr) => {{
        let (pool, vault, n, tenants) = ($pool, $vault, $n, $t);
        let key_sample = vault.seal(b"{}", b"");
        let _ = key_sample;
        for chunk_start in (0..n).step_by(ROWS * 20) {
            let mut tx = pool.begin().await?;
            for start in (chunk_start..(chunk_start + ROWS * 20).min(n)).step_by(ROWS) {
                let end = (start + ROWS).min(n);
                // Network
                let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO net_connections (tenant, id, partner_tenant, client_id, partner_id, name, active, nonce, network_account_id, proof, partners_connection_id, partners_client_id, initialized, key_schema, key_key_id, key_blob, created_at, updated_at) ");
                q.push_values(start..end, |mut b, i| {
                    let t = i % tenants;
                    let id = derived_uuid("bench-net", &i.to_string());
                    let tenant = format!("ent-{t}");
                    let sealed = vault.seal(format!(r#"{{"schema":"token","connectionToken":"t-{i}"}}"#).as_bytes(), &Record::aad(&tenant, kind::NET_CONNECTION, &id));
                    let init = i % 2 == 0;
                    b.push_bind(tenant).push_bind(id).push_bind("ent-partner").push_bind(client_id(t)).push_bind(PARTNER)
                        .push_bind(format!("Desk {}", i % 50)).push_bind(i % 10 != 0).push_bind(format!("n-{i}"))
                        .push_bind(derived_uuid("bench-account", &i.to_string())).push_bind(proof(&format!("p{i}"), "s"))
                        .push_bind(init.then(|| derived_uuid("bench-pconn", &i.to_string())))
                        .push_bind(init.then(|| format!("pclient-{t}"))).push_bind(init).push_bind("token")
                        .push_bind(sealed.key_id).push_bind(sealed.blob).push_bind(BASE_MS + i as i64).push_bind(BASE_MS + i as i64);
                });
                q.build().execute(&mut *tx).await?;
                // Export
                let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO ex_connections (tenant, id, imodel_id, display_name, authentication_type, owner_user_id, simulate, last_run_id, created_at, updated_at) ");
                q.push_values(start..end, |mut b, i| {
                    let t = i % tenants;
                    b.push_bind(itwin(t)).push_bind(format!("exc-bench-{i}")).push_bind(imodel(t)).push_bind(format!("export {i}"))
                        .push_bind("User").push_bind("bench").push_bind(None::<String>).push_bind(None::<String>)
                        .push_bind(BASE_MS + i as i64).push_bind(BASE_MS + i as i64);
                });
                q.build().execute(&mut *tx).await?;
                // Integrations
                let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO in_connections (tenant, id, connector_name, connector_config_id, customer_id, integration_id, display_name, disabled, status, status_message, metadata, settings_key_id, settings_blob, expires_at, refreshable, version, created_at, updated_at) ");
                q.push_values(start..end, |mut b, i| {
                    let t = i % tenants;
                    let tenant = format!("org_{t}");
                    let id = format!("conn_github_BENCH{i:020}");
                    // As the server seals them: serde_json's compact form, keys in order.
                    let settings = format!(r#"{{"access_token":"at-{i}","oauth":{{"credentials":{{"access_token":"at-{i}","expires_at":"2099-01-01T00:00:00.000Z"}}}}}}"#);
                    let sealed = vault.seal(settings.as_bytes(), &Record::aad(&tenant, kind::IN_CONNECTION, &id));
                    b.push_bind(tenant).push_bind(id).push_bind("github").push_bind(format!("ccfg_github_bench{t}"))
                        .push_bind(format!("cus_{}", i % 1000)).push_bind(None::<String>).push_bind(format!("connection {i}"))
                        .push_bind(false).push_bind("healthy").push_bind(None::<String>).push_bind("{}")
                        .push_bind(sealed.key_id).push_bind(sealed.blob).push_bind(4_070_908_800_000i64).push_bind(false).push_bind(1i64)
                        .push_bind(BASE_MS + i as i64).push_bind(BASE_MS + i as i64);
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            eprint!("\r{} / {n} per face", (chunk_start + ROWS * 20).min(n));
        }
        eprintln!();
    }};
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let started = Instant::now();
    let vault = Vault::from_spec(&a.master_keys).map_err(|e| anyhow::anyhow!("master keys: {e}"))?;
    let store = patchbay_store::connect(&a.database_url).await?;
    store.migrate().await?;
    let plan = seed::plan(fixed_seed(a.tenants).to_string().as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    store.apply_seed(&plan, &vault, BASE_MS, seed::SeedMode::Upsert).await?;
    store.close().await;
    if a.database_url.starts_with("sqlite:") {
        let opts: sqlx::sqlite::SqliteConnectOptions = a.database_url.parse()?;
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                opts.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Off),
            )
            .await?;
        bulk!(&pool, sqlx::Sqlite, &vault, a.connections, a.tenants);
        // No ANALYZE on SQLite: Patchbay never runs it, and with the bundled SQLite's
        // STAT4 its statistics make SQLite re-prepare statements whose plan could
        // depend on a bound value on every execution (docs/benchmarks.md).
        pool.close().await;
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&a.database_url).await?;
        bulk!(&pool, sqlx::Postgres, &vault, a.connections, a.tenants);
        // VACUUM as well as ANALYZE: after a bulk load autovacuum would otherwise
        // visit every table within the minute, during the measurements.
        sqlx::query("VACUUM (ANALYZE)").execute(&pool).await?;
        // And write the load and the vacuum's changes out now, not in a checkpoint that
        // would stall commits in the middle of the write scenarios (needs a superuser or
        // pg_checkpoint; without it the next timed checkpoint does it).
        if let Err(e) = sqlx::query("CHECKPOINT").execute(&pool).await {
            eprintln!("CHECKPOINT skipped: {e}");
        }
        pool.close().await;
    }
    eprintln!(
        "{} connections per face over {} tenants in {:.1}s",
        a.connections,
        a.tenants,
        started.elapsed().as_secs_f64()
    );
    settlements(&a).await?;
    if let Some(dir) = &a.requests_dir {
        write_requests(dir, &a, &vault).await?;
    }
    // Identifiers the benchmark scenarios use (tenant 1), for `eval` in bench/run.sh.
    println!("NET_CONN={}", derived_uuid("bench-net", "1"));
    println!("PARTNER={PARTNER}");
    println!("IMODEL={}", imodel(1));
    println!("IN_CONN=conn_github_BENCH{:020}", 1);
    Ok(())
}

/// The bench partner's settlements, each paying connection 1 (tenant 1) one unit, as the
/// server stores them (a settlement row and its transfer); balances are not touched.
async fn settlements(a: &Args) -> anyhow::Result<()> {
    use patchbay_store::{Committed, LedgerCommit, LedgerRow};
    let store = patchbay_store::connect(&a.database_url).await?;
    let conn = derived_uuid("bench-net", "1");
    let account = derived_uuid("bench-account", "1");
    let row = |kind: &str, id: String, parent: Option<String>, data: serde_json::Value, at: i64| LedgerRow {
        kind: kind.into(),
        id,
        client_tenant: None,
        partner_tenant: "ent-partner".into(),
        partner_id: Some(PARTNER.into()),
        client_id: None,
        connection_id: parent.as_ref().map(|_| conn.clone()),
        parent_id: parent.clone(),
        subtype: Some(if parent.is_some() { "completed" } else { "offchain" }.into()),
        status: "completed".into(),
        currency: parent.as_ref().map(|_| "ofcusd".to_string()),
        external_id: Some(if parent.is_some() { "bench".to_string() } else { format!("bench-settlement-{at}") }),
        external_key: parent.is_none().then(|| format!("ent-partner|bench-settlement-{at}")),
        parties: if parent.is_some() {
            vec!["e:ent-1".into(), "dst:ent-1".into(), conn.clone()]
        } else {
            vec![conn.clone(), "e:ent-1".into()]
        },
        flag: false,
        version: 1,
        data,
        created_at: at,
        updated_at: at,
    };
    for k in 0..a.settlements {
        let at = BASE_MS + k as i64;
        let ts = patchbay_core::network::timestamp(at);
        let sid = derived_uuid("bench-settlement", &k.to_string());
        let settlement = json!({"id": sid, "partnerId": PARTNER, "externalId": format!("bench-settlement-{at}"),
            "status": "completed", "settlementType": "offchain", "reconciled": true, "initiatedBy": "bench",
            "createdAt": ts, "updatedAt": ts, "finalizedAt": ts, "lossSLAAlertSent": false, "gainSLAAlertSent": false,
            "disputed": false});
        let transfer = json!({"id": derived_uuid("bench-transfer", &k.to_string()), "createdAt": ts, "updatedAt": ts,
            "currency": "ofcusd", "settlementId": sid, "quantity": "1", "txIds": [], "status": "completed", "usdValue": null,
            "settlementStatus": "completed", "sourceTradingAccountId": PARTNER, "sourceNetworkAccountId": PARTNER,
            "destinationTradingAccountId": "w1", "destinationNetworkAccountId": account, "destinationConnectionName": "Desk 1"});
        let commit = LedgerCommit {
            rows: vec![
                (
                    row(
                        "settlement",
                        sid.clone(),
                        None,
                        json!({"settlement": settlement, "amounts": {conn.clone(): {"ofcusd": "1"}}, "directions": {"ent-1": "receive"}}),
                        at,
                    ),
                    None,
                ),
                (
                    row("settlement_transfer", derived_uuid("bench-transfer", &k.to_string()), Some(sid), transfer, at),
                    None,
                ),
            ],
            now_ms: at,
            ..Default::default()
        };
        match store.net_ledger_commit(&commit).await? {
            Committed::Done | Committed::Duplicate => {}
            other => anyhow::bail!("storing bench settlement {k}: {other:?}"),
        }
    }
    store.close().await;
    Ok(())
}

/// Requests for the write-path scenarios, each of which can succeed only once:
/// Connect to Partner with a fresh nonce signed by the client's key (the server
/// verifies the Bitcoin message signature), and one export run per connection
/// (a connection takes one active run at a time). The export user is given the
/// background-export grant the consent page would record.
async fn write_requests(dir: &std::path::Path, a: &Args, vault: &Vault) -> anyhow::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let store = patchbay_store::connect(&a.database_url).await?;
    let grant = patchbay_store::RecordWrite {
        tenant: "export".into(),
        kind: "export.grant".into(),
        id: "bench".into(),
        data: json!({"grantedAt": "2026-01-01T00:00:00.000Z"}),
        secret: None,
    };
    store.put_record(&grant, &[], vault, BASE_MS).await?;
    store.close().await;

    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("connect.tsv"))?);
    for k in 0..a.connect_requests {
        let (name, nonce) = (format!("Bench desk {k}"), format!("bench-connect-{k}"));
        let key = json!({"schema": "token", "connectionToken": format!("tok-{k}")});
        let key = key.as_object().expect("an object");
        let payload = signing_payload(PARTNER, &name, &nonce, key).expect("a complete key");
        let signature = sign_message(payload.as_bytes(), PRIVKEY).map_err(|e| anyhow::anyhow!("signing: {e:?}"))?;
        let body = json!({"partnerId": PARTNER, "name": name, "nonce": nonce, "connectionKey": key,
                          "payload": payload, "signature": signature});
        writeln!(out, "POST\t/api/network/v1/enterprises/ent-1/clients/connections\t{body}")?;
    }
    out.flush()?;
    // Allocations of one unit each, spread over the first 1,000 active connections (so over
    // every tenant's trading account, as many clients would), each signed with a fresh nonce.
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("allocate.tsv"))?);
    let active: Vec<usize> = (1..a.connections.min(1_000)).filter(|i| i % 10 != 0).collect();
    for k in 0..a.allocate_requests {
        let i = active[k % active.len()];
        let conn = derived_uuid("bench-net", &i.to_string());
        let (external, nonce) = (format!("bench-alloc-{k}"), format!("bench-alloc-nonce-{k}"));
        let payload = format!(
            r#"{{"connectionId":"{conn}","amount":{{"currency":"ofcusd","quantity":"1"}},"clientExternalId":"{external}","nonce":"{nonce}"}}"#
        );
        let signature = sign_message(payload.as_bytes(), PRIVKEY).map_err(|e| anyhow::anyhow!("signing: {e:?}"))?;
        let body = json!({"amount": {"currency": "ofcusd", "quantity": "1"}, "clientExternalId": external, "nonce": nonce,
                          "payload": payload, "signature": signature});
        writeln!(
            out,
            "POST\t/api/network/v1/enterprises/ent-{}/clients/connections/{conn}/allocations\t{body}",
            i % a.tenants
        )?;
    }
    out.flush()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("create-run.tsv"))?);
    let body = json!({"exportType": "IFC", "ifcVersion": "IFC4.3"});
    for i in 0..a.connections {
        writeln!(out, "POST\t/export/connections/exc-bench-{i}/runs\t{body}")?;
    }
    out.flush()?;
    // Gets spread over up to 100,000 different Network connections (every
    // k-th of the N, visited in a scrambled fixed order), so that reads kept
    // in process rarely serve them: the store's own cost per get.
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("get-spread.tsv"))?);
    let m = a.connections.min(100_000);
    let step = a.connections / m.max(1);
    for j in 0..m {
        // 7,919 is prime and divides no m: j -> (7919 j + 13) mod m is a permutation.
        let i = ((7919 * j + 13) % m) * step;
        let id = derived_uuid("bench-net", &i.to_string());
        writeln!(out, "GET\t/api/network/v1/enterprises/ent-{}/clients/connections/{id}\t", i % a.tenants)?;
    }
    out.flush()?;
    Ok(())
}
