//! `reflector IFACE` on macOS: one worker on `/dev/bpf`, behind a classic-BPF filter
//! generated from the same settings as the shared classifier.

use crate::cli::ReflectArgs;
use crate::live::{quiet_host_stack_on_stamp_port, Workers};
use crate::report::Reporter;
use crate::watch::{InterfaceView, InterfaceWatch};
use anyhow::{Context, Result};
use platform_macos::device::{interface_mac, BpfPlatform};
use settings::events::PlatformInfo;
use std::process::ExitCode;

pub fn run(interface: &str, args: &ReflectArgs) -> Result<ExitCode> {
    // An explicit --dst-mac makes the interface's own address unnecessary (and lets
    // interfaces whose MAC getifaddrs cannot report still be used).
    let mac = match (interface_mac(interface), args.filter.dst_mac) {
        (Ok(mac), _) => Some(mac),
        (Err(_), Some(_)) => None,
        (Err(e), None) => return Err(e.into()),
    };
    let mut config = args.worker_config(mac)?;
    let view = InterfaceView::read(interface)?;
    config.filter.broadcasts = view.broadcasts;
    let filter = config.filter;
    let platform = BpfPlatform::open(interface, &filter)
        .with_context(|| format!("starting the /dev/bpf reflector on {interface}"))?;
    let kernel = platform.kernel_counters()?;
    tracing::info!(
        interface,
        buffer = platform.buffer_len(),
        "reading from /dev/bpf"
    );

    let mut reporter = Reporter::new(std::io::stdout().lock(), args.output.format());
    reporter.started(&PlatformInfo {
        backend: "bpf".into(),
        interface: interface.to_owned(),
        queues: 1,
        ..PlatformInfo::default()
    })?;
    let _stamp_port = quiet_host_stack_on_stamp_port(&config);
    // One device, one worker: /dev/bpf has no per-queue steering to spread over threads.
    let workers = Workers::spawn(vec![platform], &config, |_| Ok(()))?;
    // The classic-BPF program keeps the broadcasts it was compiled with; frames to a
    // new one pass it, and the worker refuses them with the same reason.
    let watch = InterfaceWatch::new(interface, view);
    workers.report_until_stopped(&mut reporter, args.output.stats_interval, |_| {}, watch)?;

    if let Some(stats) = kernel.read().filter(|s| s.dropped > 0) {
        eprintln!(
            "reflector: the kernel dropped {} of {} test frames because the reflector fell \
             behind (/dev/bpf copies every frame; see docs/MACOS.md for expected rates)",
            stats.dropped, stats.received
        );
    }
    Ok(ExitCode::SUCCESS)
}
