#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};
use control::api::{self, AppState};
use control::auth::{Origin, Token};
use control::config::{Config, ReflectorForm, ReflectorSettings};
use control::events::Bus;
use control::guard::AllowedHosts;
use control::lab;
use control::probes::{self, ProbeForm};
use control::supervisor::{Launcher, Supervisor};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::LazyLock;
use tokio::signal::unix::{signal, SignalKind};

mod preflight;

/// `--version`: version, git commit and back ends (the same text as the reflector's).
static LONG_VERSION: LazyLock<String> = LazyLock::new(|| {
    settings::build_info::long_version(env!("CARGO_PKG_VERSION"), env!("REFLECTOR_GIT_COMMIT"))
});

/// Supervises reflector workers and serves the REST API, metrics and the dashboard.
#[derive(Debug, Parser)]
#[command(name = "reflector-control", version, long_version = LONG_VERSION.as_str())]
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
        .with_ansi(settings::error_text::colour_logs())
        .init();
    if let Some(rendered) = settings::manual::render_if_requested(Cli::command) {
        let files = rendered.context("rendering the man pages and completions")?;
        files.iter().for_each(|f| println!("{}", f.display()));
        return Ok(());
    }
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let listen = cli
        .listen
        .or(config.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let listener = preflight::bind(listen)?;
    if let Some(Command::Demo(DemoArgs {
        interface: Some(interface),
        ..
    })) = &cli.command
    {
        preflight::interface_exists(interface)?;
    }
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
        listener,
        token,
        config_path: cli.config.clone(),
        allowed_hosts: AllowedHosts::new(&config.allowed_hosts),
        launcher: Launcher::new(program),
    };
    match cli.command {
        None | Some(Command::Serve) => server.run(config.reflectors, Vec::new(), Vec::new()).await,
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
        return server.run(vec![settings], Vec::new(), Vec::new()).await;
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
    // The test head is a probe of the control plane, as `POST /api/v1/probes` makes
    // one: it sends until Ctrl-C, which prints its verdict.
    let probe = ProbeForm {
        interface: lab.head.interface.clone(),
        netns: Some(lab.head.netns.clone()),
        to: lab::REFLECTOR_MAC.to_owned(),
        rate: Some(args.rate),
        reflector: Some(reflector.id()),
        ..ProbeForm::default()
    };
    let mut companions = Vec::new();
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
    let result = server.run(vec![reflector], vec![probe], companions).await;
    drop(lab);
    result
}

struct Server {
    /// Bound before anything else is set up, so a busy address fails first.
    listener: std::net::TcpListener,
    token: Token,
    config_path: Option<PathBuf>,
    allowed_hosts: AllowedHosts,
    launcher: Launcher,
}

impl Server {
    /// Serve until SIGINT/SIGTERM, then stop every probe (printing their verdicts) and
    /// every worker. `probes` and `companions` (processes that run alongside, the
    /// demo's senders) start once the reflectors have.
    async fn run(
        self,
        reflectors: Vec<ReflectorSettings>,
        probes: Vec<ProbeForm>,
        companions: Vec<tokio::process::Command>,
    ) -> Result<()> {
        let supervisor = Supervisor::new(self.launcher, Bus::default());
        let state = AppState::new(supervisor.clone(), self.token, self.config_path)
            .with_allowed_hosts(self.allowed_hosts);
        let listener = tokio::net::TcpListener::from_std(self.listener)
            .context("serving the bound listener")?;
        for settings in reflectors {
            supervisor.add(settings, true).await?;
        }
        for form in probes {
            // Frames sent before the reflector runs would count as lost.
            if let Some(id) = &form.reflector {
                wait_until_running(&supervisor, id).await;
            }
            state
                .probes
                .create(form)
                .await
                .context("starting the probe")?;
        }
        // Summary lines while probes run (none run unless the demo or the API adds them).
        let summaries = tokio::spawn(probes::terminal::print_every(
            state.probes.clone(),
            PROBE_SUMMARY_EVERY,
        ));
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
        summaries.abort();
        probes::terminal::stop_and_print_verdicts(&state.probes).await;
        tracing::info!("stopping workers");
        supervisor.shutdown().await;
        Ok(())
    }
}

/// Wait (20 s at most) for reflector `id` to run; a probe started after that measures
/// the reflector, not its start-up.
async fn wait_until_running(supervisor: &Supervisor, id: &str) {
    for _ in 0..200 {
        match supervisor.get(id).await {
            Ok(view) if view.state == control::views::RunState::Running => return,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(_) => return,
        }
    }
    tracing::warn!("reflector {id} is not running after 20 s; starting its probe anyway");
}

/// How often the terminal gets a line per running probe.
const PROBE_SUMMARY_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

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
