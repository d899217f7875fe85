//! `reflector IFACE` on Linux: AF_XDP behind the XDP filter, reflection in the XDP
//! program itself (`xdp-tx`, STAMP still through AF_XDP), or AF_PACKET; `--backend auto`
//! picks between the first two ([`settings::Settings::backend_choice`]).

use crate::cli::ReflectArgs;
use crate::live::{quiet_host_stack_on_stamp_port, Workers};
use crate::report::Reporter;
use crate::watch::{InterfaceView, InterfaceWatch};
use anyhow::{Context, Result};
use dataplane::worker::WorkerConfig;
use dataplane::Counters;
use platform_linux::iface;
use platform_linux::packet::AfPacketPlatform;
use platform_linux::session::{Reflection, SessionOptions, XdpSession};
use platform_linux::xsk::SocketOptions;
use settings::events::PlatformInfo;
use settings::{LiveBackend, WakeLatency, XdpSend};
use std::process::ExitCode;

pub fn run(interface: &str, args: &ReflectArgs) -> Result<ExitCode> {
    let mac = iface::mac_address(interface)?;
    let mut config = args.worker_config(Some(mac))?;
    let view = InterfaceView::read(interface)?;
    config.filter.broadcasts = view.broadcasts;
    config.stamp.error_estimate = platform_linux::clock::stamp_error_estimate();
    let filter = config.filter;
    let mut reporter = Reporter::new(std::io::stdout().lock(), args.output.format());
    let cpus = iface::allowed_cpus()?;
    // Worker `i` runs on the i-th allowed CPU (wrapping), next to its queue's IRQ on a
    // NIC whose queues are spread one per CPU. A worker that sleeps until frames arrive
    // also gets a real-time priority, so it wakes at once even when its CPU is busy
    // (docs/PERFORMANCE.md: without it, the RTT's p99 at 1 kpps was ~4 ms). A busy-polling
    // worker never sleeps, and with that priority would starve the kernel's own work on
    // its CPU.
    let busy_poll = args.live.busy_poll;
    let pin = move |worker: usize| -> Result<()> {
        let cpu = cpus[worker % cpus.len()];
        iface::pin_current_thread(cpu)?;
        if !busy_poll {
            if let Err(e) = iface::prioritise_current_thread() {
                tracing::warn!(
                    "cannot give worker {worker} real-time priority (SCHED_FIFO 1): {e}; \
                     its latency may show millisecond tails when CPU {cpu} is busy \
                     (grant CAP_SYS_NICE or run as root)"
                );
            }
        }
        Ok(())
    };

    let (backend, reason) = args.settings().backend_choice();
    match backend {
        LiveBackend::AfXdp | LiveBackend::XdpTx => {
            // With xdp-tx the program rewrites every test frame but STAMP as a worker
            // would; the sockets (and workers) then serve STAMP alone.
            let reflection = match backend {
                LiveBackend::XdpTx => in_kernel(&mut config),
                _ => Reflection::AfXdp,
            };
            let options = session_options(args, reflection);
            let (session, sockets) =
                XdpSession::open(interface, &filter, &options).with_context(|| {
                    format!("starting the {} reflector on {interface}", backend.name())
                })?;
            let info = session.info();
            reporter.started(&PlatformInfo {
                backend: backend.name().into(),
                interface: interface.to_owned(),
                xdp_mode: Some(info.xdp_mode.name().to_owned()),
                zero_copy: Some(info.zero_copy),
                busy_poll: Some(info.busy_poll),
                wake_latency: Some(options.socket.holds_wake_latency()),
                xdp_send: Some(info.xdp_send),
                queues: info.queues,
                reason,
                max_frame_len: Some(info.max_frame_len),
            })?;
            let workers = Workers::spawn(sockets, &config, pin)?;
            let watch = InterfaceWatch::new(interface, view).on_change(|list| {
                if let Err(e) = session.set_broadcasts(list) {
                    tracing::warn!("cannot update the XDP program's directed broadcasts: {e}");
                }
            });
            workers.report_until_stopped(
                &mut reporter,
                args.output.stats_interval,
                |totals| add_kernel_verdicts(&session, totals),
                watch,
            )?;
        }
        LiveBackend::AfPacket => {
            iface::check_af_xdp_privileges()?;
            let wake_latency = args.live.wake_latency == WakeLatency::On;
            let platform = AfPacketPlatform::open(interface, wake_latency)?;
            let _stamp_port = quiet_host_stack_on_stamp_port(&config);
            reporter.started(&PlatformInfo {
                backend: "af_packet".into(),
                interface: interface.to_owned(),
                wake_latency: Some(wake_latency),
                queues: 1,
                max_frame_len: Some(platform_linux::packet::MAX_FRAME_LEN as u32),
                ..PlatformInfo::default()
            })?;
            let workers = Workers::spawn(vec![platform], &config, pin)?;
            let watch = InterfaceWatch::new(interface, view);
            workers.report_until_stopped(
                &mut reporter,
                args.output.stats_interval,
                |_| {},
                watch,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// In-kernel reflection: the program applies the whole policy to every test frame,
/// STAMP included, before a worker could see it (so a source's STAMP and other frames
/// share one rate-limit bucket). The workers keep only the loop timeout, which raises
/// their `loop_timed_out` flag when the program stops reflecting.
fn in_kernel(config: &mut WorkerConfig) -> Reflection {
    let safety = std::mem::take(&mut config.safety);
    config.safety.loop_timeout = safety.loop_timeout;
    Reflection::InKernel {
        mode: config.mode,
        safety,
    }
}

fn session_options(args: &ReflectArgs, reflection: Reflection) -> SessionOptions {
    SessionOptions {
        reflection,
        queues: args.live.queues,
        xdp_mode: args.live.xdp_mode,
        socket: SocketOptions {
            zero_copy: args.live.zero_copy,
            busy_poll: args.live.busy_poll,
            wake_latency: args.live.wake_latency == WakeLatency::On,
            xdp_send: args.live.xdp_send == XdpSend::On,
        },
    }
}

/// Frames the XDP program turned away or reflected itself never reach a worker; count
/// them (read once per stats interval) so the totals describe everything that arrived
/// on the interface.
fn add_kernel_verdicts(session: &XdpSession, totals: &mut Counters) {
    match session.verdicts() {
        Ok(verdicts) => verdicts.add_to(totals),
        Err(e) => tracing::warn!("cannot read the XDP verdict counters: {e}"),
    }
}
