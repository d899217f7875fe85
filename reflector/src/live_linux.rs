//! `reflector IFACE` on Linux: AF_XDP behind the XDP filter (or AF_PACKET on request).

use crate::cli::ReflectArgs;
use crate::live::{quiet_host_stack_on_stamp_port, Workers};
use crate::report::Reporter;
use anyhow::{Context, Result};
use dataplane::Counters;
use platform_linux::iface;
use platform_linux::packet::AfPacketPlatform;
use platform_linux::session::{SessionOptions, XdpSession};
use platform_linux::xsk::SocketOptions;
use settings::events::PlatformInfo;
use settings::Backend;
use std::process::ExitCode;

pub fn run(interface: &str, args: &ReflectArgs) -> Result<ExitCode> {
    let mac = iface::mac_address(interface)?;
    let mut config = args.worker_config(Some(mac))?;
    config.stamp.error_estimate = platform_linux::clock::stamp_error_estimate();
    let filter = config.filter;
    let mut reporter = Reporter::new(std::io::stdout().lock(), args.output.format());
    let cpus = iface::allowed_cpus()?;
    // Worker `i` runs on the i-th allowed CPU (wrapping), next to its queue's IRQ on a
    // NIC whose queues are spread one per CPU.
    let pin = move |worker: usize| -> Result<()> {
        Ok(iface::pin_current_thread(cpus[worker % cpus.len()])?)
    };

    match args.live.backend {
        Backend::Xdp => {
            let options = session_options(args);
            let (session, sockets) = XdpSession::open(interface, &filter, &options)
                .with_context(|| format!("starting the AF_XDP reflector on {interface}"))?;
            let info = session.info();
            reporter.started(&PlatformInfo {
                backend: "af_xdp".into(),
                interface: interface.to_owned(),
                xdp_mode: Some(info.xdp_mode.name().to_owned()),
                zero_copy: Some(info.zero_copy),
                busy_poll: Some(info.busy_poll),
                queues: info.queues,
            })?;
            let workers = Workers::spawn(sockets, &config, pin)?;
            workers.report_until_stopped(&mut reporter, args.output.stats_interval, |totals| {
                add_xdp_rejections(&session, totals)
            })?;
        }
        Backend::AfPacket => {
            iface::check_af_xdp_privileges()?;
            let platform = AfPacketPlatform::open(interface)?;
            let _stamp_port = quiet_host_stack_on_stamp_port(&config);
            reporter.started(&PlatformInfo {
                backend: "af_packet".into(),
                interface: interface.to_owned(),
                queues: 1,
                ..PlatformInfo::default()
            })?;
            let workers = Workers::spawn(vec![platform], &config, pin)?;
            workers.report_until_stopped(&mut reporter, args.output.stats_interval, |_| {})?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn session_options(args: &ReflectArgs) -> SessionOptions {
    SessionOptions {
        queues: args.live.queues,
        xdp_mode: args.live.xdp_mode,
        socket: SocketOptions {
            zero_copy: args.live.zero_copy,
            busy_poll: args.live.busy_poll,
        },
    }
}

/// Frames the XDP program turned away never reach a worker; count them as received and
/// rejected so the totals describe everything that arrived on the interface.
fn add_xdp_rejections(session: &XdpSession, totals: &mut Counters) {
    match session.verdicts() {
        Ok(verdicts) => {
            for (total, kernel) in totals.per_reject.iter_mut().zip(verdicts.rejects) {
                *total += kernel;
            }
            totals.received += verdicts.rejected();
        }
        Err(e) => tracing::warn!("cannot read the XDP verdict counters: {e}"),
    }
}
