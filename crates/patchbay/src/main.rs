use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: glibc's allocator showed up as lock contention under load (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use patchbay::app::{self, StartError};
use patchbay::config::{Config, LogFormat};
use patchbay::{demo, telemetry};
use patchbay_core::{Clock, SystemClock};
use patchbay_store::worker::Registry;

/// Patchbay: one self-hosted server for connections, speaking the BitGo OES,
/// iTwin Export and OpenInt APIs wire-for-wire.
#[derive(Parser, Debug)]
#[command(name = "patchbay", version, about, long_about = None)]
struct Cli {
    /// Configuration file (default: ./patchbay.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the API (applies migrations first).
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// sqlite://PATH, sqlite::memory: or postgres://... (default sqlite://./patchbay.db).
        #[arg(long)]
        database_url: Option<String>,
        /// Seed document to apply at start-up.
        #[arg(long)]
        seed: Option<PathBuf>,
        /// Serve HTTPS with a throw-away CA and certificate made for the listen address
        /// (written to <data_dir>/tls/; clients trust ca.pem).
        #[arg(long)]
        tls_self_signed: bool,
        /// Turn on the sandbox controls under /admin/v1/sandbox (docs/sandbox.md; needs an admin token).
        #[arg(long)]
        sandbox: bool,
    },
    /// Serve demo data from a temporary database, with the admin API enabled.
    Demo {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// A database to seed and serve instead of a temporary SQLite file (for trying
        /// the demo on PostgreSQL; its secrets are sealed with a throw-away key, so use a
        /// database made for the purpose).
        #[arg(long)]
        database_url: Option<String>,
        /// Serve HTTPS (HTTP/2 and HTTP/1.1) with a self-signed certificate; the banner
        /// names the CA file to trust.
        #[arg(long)]
        tls: bool,
        /// Turn on the sandbox controls under /admin/v1/sandbox (docs/sandbox.md).
        #[arg(long)]
        sandbox: bool,
    },
    /// Apply the embedded database migrations and exit.
    Migrate {
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Apply a seed document and exit (exit code 2 when it is invalid).
    Seed {
        /// The seed document (JSON).
        file: PathBuf,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Re-encrypt every stored secret under the first master key.
    RotateKeys {
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Sandbox controls of a running server (docs/sandbox.md): clock, faults,
    /// journal, reset, snapshots, deterministic mode.
    Sandbox {
        /// The server (default: PATCHBAY_SANDBOX_URL, else http://<listen>).
        #[arg(long, global = true)]
        url: Option<String>,
        /// The admin token (default: the configuration's admin_token / PATCHBAY_ADMIN_TOKEN).
        #[arg(long, global = true)]
        admin_token: Option<String>,
        #[command(subcommand)]
        command: patchbay::sandbox_cli::SandboxCommand,
    },
    /// Network face (BitGo OES) tools.
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
}

#[derive(Subcommand, Debug)]
enum NetworkCommand {
    /// Print the public key (PEM) that verifies Patchbay's X-BitGo-Signature JWTs
    /// (generated and stored on first use).
    SigningKey {
        #[arg(long)]
        database_url: Option<String>,
    },
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let (path, explicit) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("patchbay.toml"), false),
    };
    let mut config = Config::load(&path, explicit)?;
    if let Some(f) = cli.log_format {
        config.log_format = f;
    }
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("patchbay: {e:#}");
            return ExitCode::from(1);
        }
    };
    telemetry::init(config.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("patchbay: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run(cli.command, &mut config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(StartError::Seed { file, error }) => {
            eprintln!("patchbay: invalid seed document {file}: {} at {}", error.message, error.path);
            ExitCode::from(2)
        }
        Err(StartError::Other(e)) => {
            eprintln!("patchbay: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(command: Command, config: &mut Config) -> Result<(), StartError> {
    match command {
        Command::Serve { listen, database_url, seed, tls_self_signed, sandbox } => {
            if sandbox {
                config.sandbox.enabled = true;
            }
            if let Some(l) = listen {
                config.listen = l;
            }
            if let Some(d) = database_url {
                config.database_url = d;
            }
            if seed.is_some() {
                config.seed = seed;
            }
            if tls_self_signed {
                config.tls.self_signed = true;
            }
            let signals = Signals::install()?;
            let running = app::start(config, Registry::new()).await?;
            say(&format!("patchbay listening on {}://{}", running.scheme, running.addr));
            if config.sandbox.enabled {
                say("sandbox controls on under /admin/v1/sandbox (docs/sandbox.md): for testing, not for production");
            }
            if let Some(ca) = &running.tls_ca {
                say(&format!("clients trust the self-signed CA at {} (e.g. NODE_EXTRA_CA_CERTS)", ca.display()));
            }
            serve_until_signal(running, signals).await
        }
        Command::Demo { listen, database_url, tls, sandbox } => {
            if sandbox {
                config.sandbox.enabled = true;
            }
            if let Some(l) = listen {
                config.listen = l;
            }
            if tls {
                config.tls.self_signed = true;
            }
            let dir = tempfile::Builder::new().prefix("patchbay-demo-").tempdir().map_err(anyhow::Error::from)?;
            let (partner, partner_url) = demo::spawn_partner().await?;
            let provider_url = demo::spawn_provider().await?;
            let (demo_config, token) =
                demo::demo_config(config, dir.path(), database_url.as_deref(), &partner_url, &provider_url)?;
            let signals = Signals::install()?;
            let running = app::start(&demo_config, Registry::new()).await?;
            let url = format!("{}://{}", running.scheme, running.addr);
            let _ = partner.patchbay_url.set(url.clone());
            let _ = partner.admin_token.set(token.clone());
            let ca = running.tls_ca.as_ref().and_then(|p| std::fs::read(p).ok());
            if let Some(ca) = &ca {
                let _ = partner.patchbay_ca.set(ca.clone());
            }
            let link = demo::magic_link(&url, ca.as_deref()).await;
            let banner = demo::banner(
                &url,
                &token,
                dir.path(),
                database_url.as_deref(),
                &partner_url,
                &provider_url,
                link.as_deref(),
            );
            say(&banner);
            if demo_config.sandbox.enabled {
                say(&format!(
                    "sandbox controls on: {url}/admin/v1/sandbox with the admin token (docs/sandbox.md), \
                     or `patchbay sandbox --url {url} --admin-token {token} status`"
                ));
            }
            if let Some(ca) = &running.tls_ca {
                say(&format!(
                    "HTTPS: trust the demo's CA with curl --cacert {0}, or NODE_EXTRA_CA_CERTS={0} for Node",
                    ca.display()
                ));
            }
            let r = serve_until_signal(running, signals).await;
            drop(dir);
            r
        }
        Command::Sandbox { url, admin_token, command } => {
            let base = url
                .or_else(|| std::env::var("PATCHBAY_SANDBOX_URL").ok())
                .unwrap_or_else(|| format!("http://{}", config.listen));
            let Some(token) = admin_token.or_else(|| config.admin_token.clone()) else {
                return Err(anyhow::anyhow!("no admin token: pass --admin-token or set PATCHBAY_ADMIN_TOKEN").into());
            };
            let (status, body) = patchbay::sandbox_cli::run(&base, &token, command).await?;
            if !body.is_empty() {
                say(&body);
            }
            if !(200..300).contains(&status) {
                return Err(anyhow::anyhow!("the server answered {status}").into());
            }
            Ok(())
        }
        Command::Migrate { database_url } => {
            if let Some(d) = database_url {
                config.database_url = d;
            }
            app::open_backend(config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Seed { file, database_url } => {
            if let Some(d) = database_url {
                config.database_url = d;
            }
            let backend = app::open_backend(config).await?;
            app::apply_seed_file(&backend, &file, SystemClock.now_ms(), patchbay_core::seed::SeedMode::Upsert).await?;
            println!("seed applied: {}", file.display());
            Ok(())
        }
        Command::Network { command: NetworkCommand::SigningKey { database_url } } => {
            if let Some(d) = database_url {
                config.database_url = d;
            }
            let backend = app::open_backend(config).await?;
            let key = patchbay_http::network::initialize::load_or_create(
                &backend.store,
                &backend.vault,
                SystemClock.now_ms(),
            )
            .await
            .map_err(anyhow::Error::from)?;
            print!("{}", key.public_pem);
            Ok(())
        }
        Command::RotateKeys { database_url } => {
            if let Some(d) = database_url {
                config.database_url = d;
            }
            let backend = app::open_backend(config).await?;
            let n = backend.store.rotate_secrets(&backend.vault).await.map_err(anyhow::Error::from)?;
            println!("re-encrypted {n} secret(s) under key {:?}", backend.vault.primary_key_id());
            Ok(())
        }
    }
}

async fn serve_until_signal(running: patchbay::Running, mut signals: Signals) -> Result<(), StartError> {
    let token = running.shutdown_token();
    tokio::spawn(async move {
        signals.recv().await;
        tracing::info!("shutdown requested; finishing in-flight work");
        token.cancel();
    });
    running.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Prints to stdout, ignoring a closed stdout (a server must not die because
/// whoever started it stopped reading).
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// SIGINT and SIGTERM, registered before the server announces itself so a
/// signal sent right after the announcement is never lost.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}
