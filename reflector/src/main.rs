#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use reflector::cli::{Cli, Command, ReflectArgs};
use reflector::offline::reflect_file;
use reflector::probe::ProbeArgs;
use reflector::report::Reporter;
use settings::events::PlatformInfo;
use std::process::ExitCode;

mod parent_watch;

fn main() -> ExitCode {
    parent_watch::die_with_parent();
    tracing_subscriber::fmt()
        .with_env_filter(
            // Warnings by default (a down link, a refused fallback); RUST_LOG=info for more.
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        // Held back while a --tui dashboard is up, so log lines cannot garble it.
        .with_writer(reflector::tui::log_writer)
        .with_ansi(settings::error_text::colour_logs())
        .init();
    if let Some(rendered) = settings::manual::render_if_requested(Cli::command) {
        return match rendered {
            Ok(files) => {
                files.iter().for_each(|f| println!("{}", f.display()));
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("reflector: rendering the man pages and completions: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Probe(args)) => run_probe(&args),
        None => run_reflector(cli.reflect),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!(
                "reflector: {}",
                settings::error_text::one_line(error.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

fn run_reflector(args: ReflectArgs) -> Result<ExitCode> {
    if let (Some(input), Some(output)) = (&args.read, &args.write) {
        let config = args.worker_config(None)?;
        let mut reporter = Reporter::new(std::io::stdout().lock(), args.output.format());
        reporter.started(&PlatformInfo {
            backend: "pcap".into(),
            interface: input.display().to_string(),
            queues: 1,
            ..PlatformInfo::default()
        })?;
        let (totals, telemetry) = reflect_file(input, output, &config)
            .with_context(|| format!("reflecting {} into {}", input.display(), output.display()))?;
        reporter.finish(&totals, &telemetry.report())?;
        return Ok(ExitCode::SUCCESS);
    }
    let interface = args
        .interface
        .clone()
        .context("name an interface, or use --read/--write")?;
    if args.output.tui && args.output.stats_interval.is_zero() {
        anyhow::bail!("--tui redraws every --stats-interval: give it more than 0 seconds");
    }
    live::run(&interface, &args)
}

#[cfg(target_os = "linux")]
mod live {
    pub use reflector::live_linux::run;
}

#[cfg(target_os = "macos")]
mod live {
    pub use reflector::live_macos::run;
}

#[cfg(target_os = "linux")]
fn run_probe(args: &ProbeArgs) -> Result<ExitCode> {
    if args.search {
        let table = reflector::probe::search(args)?;
        if args.json {
            println!("{}", serde_json::to_string(&table)?);
        } else {
            print!("{table}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = if args.tui && reflector::tui::available() {
        reflector::tui::watch_probe(args)?
    } else if let Some(every) = args.interval {
        reflector::probe::run_printing(args, every)?
    } else {
        reflector::probe::run(args, &reflector::probe::Progress::new()?)?
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report}");
    }
    if report.sent > 0 && report.received == 0 {
        eprintln!("reflector probe: {}", args.nothing_came_back_hint());
    }
    Ok(
        if report.sent > 0 && report.lost == 0 && report.malformed == 0 {
            ExitCode::SUCCESS
        } else {
            // Scripts can tell "the reflector lost or mangled frames" from success.
            ExitCode::from(2)
        },
    )
}

#[cfg(not(target_os = "linux"))]
fn run_probe(_args: &ProbeArgs) -> Result<ExitCode> {
    anyhow::bail!(
        "`reflector probe` is available on Linux only; run the test head from a Linux machine"
    )
}
