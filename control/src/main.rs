#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use control::api::{self, AppState};
use control::auth::{Origin, Token};
use control::config::{Config, ReflectorForm, ReflectorSettings};
use control::events::Bus;
use control::lab;
use control::supervisor::{Launcher, Supervisor};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::signal::unix::{signal, SignalKind};

/// Supervises reflector workers and serves the REST API, metrics and the dashboard.
#[derive(Debug, Parser)]
#[command(name = "reflector-control", version)]
struct Cli {
    /// TOML config file (interfaces, listen address, token...). SIGHUP re-reads it.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Address to serve on [default: 127.0.0.1:8080].
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The reflector worker binary [default: `reflector` next to this program].
    #[arg(long, global = true, value_name = "PATH")]
    reflector: Option<PathBuf>,
    /// Where the generated API token is kept [default: $STATE_DIRECTORY, else
    /// /var/lib/reflector-control for root, else ~/.local/state/reflector-control].
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Supervise the configured reflectors and serve the API (the default).
    Serve,
    /// Try it out: reflect on IFACE, or without one build a virtual lab (two network
    /// namespaces and a veth pair) with a reflector and a test head sending to it.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Reflect on this interface instead of building a lab.
    #[arg(value_name = "IFACE")]
    interface: Option<String>,
    /// Lab name; prefixes its namespaces and interfaces.
    #[arg(long, default_value = "rfl-demo")]
    lab: String,
    /// Test frames per second the lab's test head sends.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// STAMP session-sender run in the lab as well (stamp-suite, which
    /// scripts/setup.sh installs under target/tools); skipped if it is missing.
    #[arg(long, value_name = "PATH")]
    stamp_sender: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let listen = cli
        .listen
        .or(config.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let program = match cli.reflector.clone().or(config.reflector.clone()) {
        Some(path) => path,
        None => sibling_reflector()?,
    };
    let state_dir = cli
        .state_dir
        .clone()
        .or(config.state_dir.clone())
        .unwrap_or_else(default_state_dir);
    let (token, origin) = Token::load_or_create(config.token.clone(), &state_dir)?;
    let demo = matches!(cli.command, Some(Command::Demo(_)));
    match &origin {
        Origin::Generated(path) => println!(
            "API token (saved in {}): {}",
            path.display(),
            token.secret()
        ),
        // The demo is interactive: the token has to be typed into the page.
        _ if demo => println!("API token: {}", token.secret()),
        Origin::File(path) => tracing::info!("API token read from {}", path.display()),
        Origin::Config => tracing::info!("API token from the config file"),
    }
    let server = Server {
        listen,
        token,
        config_path: cli.config.clone(),
        launcher: Launcher::new(program),
    };
    match cli.command {
        None | Some(Command::Serve) => server.run(config.reflectors, Vec::new()).await,
        Some(Command::Demo(args)) => demo_main(server, args).await,
    }
}

async fn demo_main(server: Server, args: DemoArgs) -> Result<()> {
    if let Some(interface) = args.interface {
        let settings = ReflectorForm {
            interface,
            ..ReflectorForm::default()
        }
        .validate()?;
        return server.run(vec![settings], Vec::new()).await;
    }
    let lab = lab::create(&args.lab).context("building the demo lab")?;
    tracing::info!(
        "lab {}: reflector on {} (netns {}, {}), test head on {} (netns {}, {})",
        lab.name,
        lab.reflector.interface,
        lab.reflector.netns,
        lab::REFLECTOR_MAC,
        lab.head.interface,
        lab.head.netns,
        lab::HEAD_MAC
    );
    let reflector = ReflectorSettings {
        interface: lab.reflector.interface.clone(),
        netns: Some(lab.reflector.netns.clone()),
        ..ReflectorSettings::default()
    };
    // The test head sends for a day; the demo ends long before.
    let mut probe = tokio::process::Command::from(lab.head.exec(&server.launcher.program));
    probe
        .args([
            "probe",
            &lab.head.interface,
            "--to",
            lab::REFLECTOR_MAC,
            "--rate",
            &args.rate.to_string(),
        ])
        .args(["--duration", "86400"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    let mut companions = vec![probe];
    let stamp_sender = match args.stamp_sender {
        Some(path) => path,
        // target/<profile>/reflector-control -> target/tools/bin/stamp-suite
        None => sibling_reflector()?.with_file_name("../tools/bin/stamp-suite"),
    };
    if stamp_sender.exists() {
        // A STAMP session at 10 packets per second, also for a day.
        let mut stamp = tokio::process::Command::from(lab.head.exec(&stamp_sender));
        stamp
            .args([
                "-r",
                lab::REFLECTOR_IP,
                "-p",
                "862",
                "-c",
                "0",
                "-d",
                "100ms",
            ])
            .args(["--duration", "86400"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        companions.push(stamp);
    } else {
        tracing::info!(
            "no STAMP sender at {}: run scripts/setup.sh to add STAMP traffic to the demo",
            stamp_sender.display()
        );
    }
    let result = server.run(vec![reflector], companions).await;
    drop(lab);
    result
}

struct Server {
    listen: SocketAddr,
    token: Token,
    config_path: Option<PathBuf>,
    launcher: Launcher,
}

impl Server {
    /// Serve until SIGINT/SIGTERM, then stop every worker. `companions` are processes
    /// that run alongside (the demo's senders), started once the reflectors are.
    async fn run(
        self,
        reflectors: Vec<ReflectorSettings>,
        companions: Vec<tokio::process::Command>,
    ) -> Result<()> {
        let supervisor = Supervisor::new(self.launcher, Bus::default());
        let state = AppState::new(supervisor.clone(), self.token, self.config_path);
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("listening on {}", self.listen))?;
        for settings in reflectors {
            supervisor.add(settings, true).await?;
        }
        let mut running = Vec::new();
        for mut command in companions {
            running.push(command.spawn().context("starting the demo's senders")?);
        }
        println!("dashboard: http://{}/", listener.local_addr()?);
        let mut hangup = signal(SignalKind::hangup())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let app = api::router(state.clone());
        let server = axum::serve(listener, app).into_future();
        tokio::pin!(server);
        // Not a graceful shutdown: open event streams never end on their own, and a
        // dropped request to a control plane that is going away loses nothing.
        loop {
            tokio::select! {
                result = &mut server => {
                    result.context("serving HTTP")?;
                    bail!("the HTTP server stopped");
                }
                _ = hangup.recv() => match state.reload().await {
                    Ok(summary) => tracing::info!("reloaded: {summary:?}"),
                    Err(error) => tracing::error!("reload failed: {error}"),
                },
                _ = interrupt.recv() => break,
                _ = terminate.recv() => break,
            }
        }
        tracing::info!("stopping workers");
        supervisor.shutdown().await;
        Ok(())
    }
}

/// Installed side by side, the worker is found without configuration.
fn sibling_reflector() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this program")?;
    let dir = exe.parent().context("this program has no directory")?;
    Ok(dir.join("reflector"))
}

fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        // systemd's StateDirectory= may list several, colon-separated; the first is ours.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        return PathBuf::from(first);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/reflector-control");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("/tmp").to_owned());
    home.join(".local/state/reflector-control")
}
