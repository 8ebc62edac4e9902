//! How stale a kept read on one PostgreSQL replica can be after another
//! replica's write (issue 23, docs/operations.md): two stores on one database,
//! as two replicas hold them. Replica A renames a connection; replica B, which
//! keeps its read of that connection (for an hour, so only the notification can
//! end it), reads until it sees the new name. The time from A's write returning
//! to B's first fresh read, over many rounds, against a baseline measured in the
//! same run: one `SELECT 1` round trip on a connection of the same database.
//!
//!   pb-staleness --database-url postgres://postgres@127.0.0.1:5432/bench_staleness [--rounds 1000]

use std::time::{Duration, Instant};

use clap::Parser;
use patchbay_core::{Vault, seed};
use patchbay_store::{NetSide, PgStore, Store};

#[derive(Parser)]
struct Args {
    /// A database made for the purpose (its tables are created if missing).
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value_t = 1000)]
    rounds: usize,
}

const KEYS: &str = "bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const CONN: &str = "6f1c2a3e-0000-4000-8000-0000000000c1";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let a = PgStore::connect(&args.database_url).await?;
    a.migrate().await?;
    let b = PgStore::connect(&args.database_url).await?;
    b.set_kept_ttl(Duration::from_secs(3600));
    let start = Instant::now();
    while !(a.keeps_reads() && b.keeps_reads()) {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(10), "the replicas never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pubkey = patchbay_core::network::public_key_of(&"11".repeat(32)).ok_or_else(|| anyhow::anyhow!("key"))?;
    let doc = serde_json::json!({"network": {
        "enterprises": [{"id": "ent-a", "name": "A", "oesLicense": true, "trustOrg": "BitGo Trust"},
                        {"id": "ent-p", "name": "P", "oesLicense": true, "trustOrg": "BitGo Trust", "partnerEligible": true}],
        "clients": [{"id": "6f1c2a3e-0000-4000-8000-0000000000a1", "enterpriseId": "ent-a", "walletId": "w", "publicKey": pubkey}],
        "partners": [{"id": "6f1c2a3e-0000-4000-8000-0000000000b1", "enterpriseId": "ent-p", "name": "P",
                      "institutionIdentifier": "p", "connectionKeySchema": "token", "trustOrg": "BitGo Trust"}],
        "connections": [{"id": CONN, "clientId": "6f1c2a3e-0000-4000-8000-0000000000a1",
                         "partnerId": "6f1c2a3e-0000-4000-8000-0000000000b1", "name": "round 0", "nonce": "n",
                         "connectionKey": {"schema": "token", "connectionToken": "t"}}]
    }});
    let plan = seed::plan(doc.to_string().as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    a.apply_seed(&plan, &Vault::from_spec(KEYS)?, 0, seed::SeedMode::Upsert).await?;
    let baseline_pool = sqlx::PgPool::connect(&args.database_url).await?;
    let mut stale = Vec::with_capacity(args.rounds);
    let mut base = Vec::with_capacity(args.rounds);
    let mut polls = 0usize;
    for i in 1..=args.rounds {
        // B keeps the current name.
        let name = format!("round {}", i - 1);
        let got = b.net_get_connection(NetSide::Client, "ent-a", CONN).await?.map(|c| c.name.clone());
        anyhow::ensure!(got.as_deref() == Some(name.as_str()), "B read {got:?}, expected {name}");
        let next = format!("round {i}");
        a.net_update_connection("ent-a", CONN, Some(&next), None, i as i64).await?;
        let written = Instant::now();
        loop {
            polls += 1;
            let got = b.net_get_connection(NetSide::Client, "ent-a", CONN).await?.map(|c| c.name.clone());
            if got.as_deref() == Some(next.as_str()) {
                break;
            }
            anyhow::ensure!(written.elapsed() < Duration::from_secs(10), "B never saw round {i}");
            tokio::task::yield_now().await;
        }
        stale.push(written.elapsed());
        let t = Instant::now();
        sqlx::query("SELECT 1").execute(&baseline_pool).await?;
        base.push(t.elapsed());
    }
    stale.sort();
    base.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("kept-read staleness across replicas, PostgreSQL, {} rounds ({} reads on B):", args.rounds, polls);
    println!("| | p50 ms | p99 ms | max ms |\n|---|---|---|---|");
    for (what, v) in [("write on A → fresh read on B", &stale), ("baseline: SELECT 1 round trip", &base)] {
        println!(
            "| {what} | {:.2} | {:.2} | {:.2} |",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99)),
            ms(v[v.len() - 1])
        );
    }
    println!(
        "ratio p99 / baseline p99: {:.1}",
        percentile(&stale, 0.99).as_secs_f64() / percentile(&base, 0.99).as_secs_f64()
    );
    Ok(())
}
