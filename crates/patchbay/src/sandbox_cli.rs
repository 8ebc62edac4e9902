//! `patchbay sandbox …`: the sandbox controls (docs/sandbox.md) from a shell,
//! as calls to a running server's admin API. Prints the answer's JSON; a
//! non-2xx answer (a failed verify among them) exits with status 1.

use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum SandboxCommand {
    /// Clock, mode, rules, journal and snapshots at a glance.
    Status,
    /// Show or move the clock every face reads.
    Clock {
        #[command(subcommand)]
        command: Option<ClockCommand>,
    },
    /// Deterministic mode: ids, nonces and tokens drawn from a seed.
    Deterministic {
        #[command(subcommand)]
        command: DeterministicCommand,
    },
    /// Fault rules.
    Faults {
        #[command(subcommand)]
        command: FaultsCommand,
    },
    /// The request journal.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Back to the start-up seed (or, with --empty, to nothing); also clears the
    /// journal and the rules and puts the clock back.
    Reset {
        #[arg(long)]
        empty: bool,
    },
    /// Save, restore, list or delete snapshots of the whole state.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClockCommand {
    Show,
    /// Moves it by a duration: 30s, 5m, 2h, 1d, 1h30m (negative moves back).
    Advance {
        #[arg(allow_hyphen_values = true)]
        by: String,
    },
    /// Puts it at an instant (RFC 3339).
    Set {
        to: String,
    },
    /// Stops it (at now, or --at an instant).
    Freeze {
        #[arg(long)]
        at: Option<String>,
    },
    /// Lets it run on from where it stands.
    Resume,
}

#[derive(Subcommand, Debug)]
pub enum DeterministicCommand {
    On { seed: u64 },
    Off,
}

#[derive(Subcommand, Debug)]
pub enum FaultsCommand {
    /// Adds a rule given as JSON (docs/sandbox.md).
    Add {
        rule: String,
    },
    List,
    Get {
        id: String,
    },
    Delete {
        id: String,
    },
    Clear,
}

#[derive(Subcommand, Debug)]
pub enum JournalCommand {
    List {
        #[arg(long)]
        direction: Option<String>,
        #[arg(long)]
        face: Option<String>,
        #[arg(long)]
        method: Option<String>,
        #[arg(long)]
        route: Option<String>,
        #[arg(long)]
        path: Option<String>,
        #[arg(long)]
        status: Option<u16>,
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        call: Option<String>,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Checks an expectation given as JSON: {"match": {...}, "count": 3}.
    Verify {
        expectation: String,
    },
    Clear,
}

#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    Save { name: String },
    Restore { name: String },
    List,
    Delete { name: String },
}

/// The method, path (under /admin/v1/sandbox) and body of a command.
fn request(command: SandboxCommand) -> anyhow::Result<(reqwest::Method, String, Option<Value>)> {
    use reqwest::Method;
    let json_arg = |what: &str, text: &str| -> anyhow::Result<Value> {
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{what} is not JSON: {e}"))
    };
    Ok(match command {
        SandboxCommand::Status => (Method::GET, String::new(), None),
        SandboxCommand::Clock { command } => match command.unwrap_or(ClockCommand::Show) {
            ClockCommand::Show => (Method::GET, "/clock".into(), None),
            ClockCommand::Advance { by } => (Method::POST, "/clock/advance".into(), Some(json!({"by": by}))),
            ClockCommand::Set { to } => (Method::POST, "/clock/set".into(), Some(json!({"to": to}))),
            ClockCommand::Freeze { at } => (Method::POST, "/clock/freeze".into(), Some(json!({"at": at}))),
            ClockCommand::Resume => (Method::POST, "/clock/resume".into(), None),
        },
        SandboxCommand::Deterministic { command } => match command {
            DeterministicCommand::On { seed } => (Method::PUT, "/deterministic".into(), Some(json!({"seed": seed}))),
            DeterministicCommand::Off => (Method::DELETE, "/deterministic".into(), None),
        },
        SandboxCommand::Faults { command } => match command {
            FaultsCommand::Add { rule } => (Method::POST, "/faults".into(), Some(json_arg("the rule", &rule)?)),
            FaultsCommand::List => (Method::GET, "/faults".into(), None),
            FaultsCommand::Get { id } => (Method::GET, format!("/faults/{}", segment(&id)), None),
            FaultsCommand::Delete { id } => (Method::DELETE, format!("/faults/{}", segment(&id)), None),
            FaultsCommand::Clear => (Method::DELETE, "/faults".into(), None),
        },
        SandboxCommand::Journal { command } => match command {
            JournalCommand::List { direction, face, method, route, path, status, principal, call, since, limit } => {
                let mut q = form_urlencoded::Serializer::new(String::new());
                let status = status.map(|s| s.to_string());
                let limit = limit.map(|l| l.to_string());
                for (k, v) in [
                    ("direction", direction.as_deref()),
                    ("face", face.as_deref()),
                    ("method", method.as_deref()),
                    ("route", route.as_deref()),
                    ("path", path.as_deref()),
                    ("status", status.as_deref()),
                    ("principal", principal.as_deref()),
                    ("call", call.as_deref()),
                    ("since", since.as_deref()),
                    ("limit", limit.as_deref()),
                ] {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
                let q = q.finish();
                (Method::GET, if q.is_empty() { "/journal".into() } else { format!("/journal?{q}") }, None)
            }
            JournalCommand::Verify { expectation } => {
                (Method::POST, "/journal/verify".into(), Some(json_arg("the expectation", &expectation)?))
            }
            JournalCommand::Clear => (Method::DELETE, "/journal".into(), None),
        },
        SandboxCommand::Reset { empty } => {
            (Method::POST, "/reset".into(), Some(json!({"to": if empty { "empty" } else { "seed" }})))
        }
        SandboxCommand::Snapshot { command } => match command {
            SnapshotCommand::Save { name } => (Method::POST, "/snapshots".into(), Some(json!({"name": name}))),
            SnapshotCommand::Restore { name } => (Method::POST, format!("/snapshots/{}/restore", segment(&name)), None),
            SnapshotCommand::List => (Method::GET, "/snapshots".into(), None),
            SnapshotCommand::Delete { name } => (Method::DELETE, format!("/snapshots/{}", segment(&name)), None),
        },
    })
}

fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Runs a command against the server at `base` (e.g. `http://127.0.0.1:8080`);
/// the answer's status and body.
pub async fn run(base: &str, token: &str, command: SandboxCommand) -> anyhow::Result<(u16, String)> {
    let (method, path, body) = request(command)?;
    let url = format!("{}/admin/v1/sandbox{path}", base.trim_end_matches('/'));
    let mut req = reqwest::Client::new().request(method, &url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| anyhow::anyhow!("calling {url}: {}", e.without_url()))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let pretty =
        serde_json::from_str::<Value>(&text).ok().and_then(|v| serde_json::to_string_pretty(&v).ok()).unwrap_or(text);
    Ok((status, pretty))
}
