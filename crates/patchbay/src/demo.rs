//! `patchbay demo`: a throw-away SQLite database with the built-in demo seed
//! and the admin API enabled under a generated token.

use rand::RngCore;

use crate::config::Config;

/// The built-in demo seed document.
pub const DEMO_SEED: &str = include_str!("../demo/seed.json");

/// A configuration for the demo rooted in `dir`; returns it with the admin token.
pub fn demo_config(base: &Config, dir: &std::path::Path) -> anyhow::Result<(Config, String)> {
    let seed_path = dir.join("demo-seed.json");
    std::fs::write(&seed_path, DEMO_SEED)?;
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = base.admin_token.clone().unwrap_or_else(|| format!("pb_admin_{}", hex_encode(&raw)));
    let mut config = base.clone();
    config.database_url = format!("sqlite://{}", dir.join("demo.db").display());
    config.seed = Some(seed_path);
    config.admin_token = Some(token.clone());
    config.master_keys = None;
    config.key_file = None;
    config.outbound.allow_loopback = true;
    Ok((config, token))
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The banner printed once the demo listens.
pub fn banner(url: &str, admin_token: &str, dir: &std::path::Path) -> String {
    format!(
        r#"
Patchbay demo is running at {url}
  database (temporary): {db}
  admin token:          {admin_token}

Demo principals (from the built-in seed):
  Network      (BitGo OES)   Authorization: Bearer alice-token-1   enterprise ent-acme (client)
                             Authorization: Bearer erin-token-1    enterprise ent-exchange (partner)
  Export       (iTwin)       Authorization: Bearer bob-token-1     iTwin 5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a04
  Integrations (OpenInt)     Authorization: Bearer key_demo_org_1  organisation org_demo
                             Authorization: Bearer key_cus_demo_1  customer cus_1

Try:
  curl -s {url}/healthz
  curl -s {url}/readyz
  curl -s {url}/metrics | head -20
  curl -s -X POST {url}/admin/v1/seed -H 'Authorization: Bearer {admin_token}' \
       -H 'Content-Type: application/json' --data-binary @{seed}
  curl -s -X POST {url}/admin/v1/seed -H 'Authorization: Bearer {admin_token}' \
       -d '{{"integrations":{{"organizations":[{{"id":"org_two","name":"Second Org","apiKey":"key_two"}}]}}}}'

Press Ctrl-C to stop; the temporary database is removed.
"#,
        db = dir.join("demo.db").display(),
        seed = dir.join("demo-seed.json").display(),
    )
}
