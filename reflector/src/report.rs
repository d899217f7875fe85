//! Statistics output: human-readable lines, CSV, JSON lines, or the terminal dashboard
//! (`--tui`). The JSON form is the interface the control plane reads from each worker
//! process: its types are [`settings::events`]. The dashboard is handed the very
//! events the JSON lines print, so both always show the same numbers.

use crate::tui::{ReflectorDashboard, ReflectorView};
use dataplane::{Counters, KernelDrops, Reject, Signature, TelemetryReport};
use settings::events::{Event, PlatformInfo, Rates};
use std::io::Write;
use std::time::{Duration, Instant};

/// How statistics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Csv,
    /// The terminal dashboard; the final totals are then printed as with `Human`.
    Tui,
}

/// Prints statistics in the chosen format.
pub struct Reporter<W: Write> {
    out: W,
    format: Format,
    start: Instant,
    last: Counters,
    last_at: Instant,
    csv_header_done: bool,
    /// The running dashboard (`Format::Tui`, between `started` and `finish`).
    dashboard: Option<ReflectorDashboard>,
}

impl<W: Write> Reporter<W> {
    pub fn new(out: W, format: Format) -> Self {
        let now = Instant::now();
        Reporter {
            out,
            format,
            start: now,
            last: Counters::default(),
            last_at: now,
            csv_header_done: false,
            dashboard: None,
        }
    }

    pub fn started(&mut self, platform: &PlatformInfo) -> std::io::Result<()> {
        match self.format {
            Format::Json => self.json(&Event::Started {
                platform: platform.clone(),
            }),
            Format::Csv => Ok(()),
            Format::Human => writeln!(self.out, "{}", platform_line(platform)),
            Format::Tui => {
                // The line stays on the normal screen, above the final totals.
                writeln!(self.out, "{}", platform_line(platform))?;
                self.out.flush()?;
                let mut view = ReflectorView::default();
                view.take(&Event::Started {
                    platform: platform.clone(),
                });
                self.dashboard = Some(ReflectorDashboard::start(view)?);
                Ok(())
            }
        }
    }

    /// Wait up to `timeout` between statistics; true when the user asked the dashboard
    /// to quit (there is nothing to ask without one).
    pub fn wait(&mut self, timeout: Duration) -> std::io::Result<bool> {
        match &mut self.dashboard {
            Some(dashboard) => dashboard.wait(timeout),
            None => {
                std::thread::sleep(timeout);
                Ok(false)
            }
        }
    }

    /// Print one interval line for the current totals.
    pub fn tick(&mut self, now: &Counters, telemetry: &TelemetryReport) -> std::io::Result<()> {
        let at = Instant::now();
        let rates = Rates::between(&self.last, now, at - self.last_at);
        let elapsed_s = (at - self.start).as_secs_f64();
        self.last = *now;
        self.last_at = at;
        match self.format {
            Format::Json => self.json(&Event::Stats {
                elapsed_s,
                rates,
                counters: *now,
                telemetry: telemetry.clone(),
            }),
            Format::Csv => self.csv_row(elapsed_s, &rates, now, telemetry),
            Format::Tui => {
                let event = Event::Stats {
                    elapsed_s,
                    rates,
                    counters: *now,
                    telemetry: telemetry.clone(),
                };
                if let Some(dashboard) = &mut self.dashboard {
                    dashboard.update(|view| view.take(&event));
                }
                Ok(())
            }
            Format::Human => {
                let signatures: Vec<String> = Signature::ALL
                    .iter()
                    .filter(|s| now.signature(**s) > 0)
                    .map(|s| format!("{s} {}", now.signature(*s)))
                    .collect();
                let dwell = telemetry.dwell_ns;
                // Only when non-zero (kernel drops, bad STAMP checksums), so the usual line
                // stays short.
                let mut kernel = if now.kernel.any() {
                    format!(" | kernel {}", kernel_summary(&now.kernel))
                } else {
                    String::new()
                };
                if now.stamp_bad_checksum > 0 {
                    kernel += &format!(" | stamp_bad_checksum {}", now.stamp_bad_checksum);
                }
                writeln!(
                    self.out,
                    "[{elapsed_s:7.1}s] rx {:>10}  tx {:>10}  {:>9.1} Mbps | reflected {} rejected {} tx_errors {}{kernel} | dwell p50 {} p99 {} | streams {}{} | {}",
                    human_pps(rates.rx_pps),
                    human_pps(rates.tx_pps),
                    rates.tx_mbps,
                    now.reflected,
                    now.rejected(),
                    now.tx_errors,
                    human_ns(dwell.p50),
                    human_ns(dwell.p99),
                    telemetry.streams.len(),
                    if telemetry.loop_timed_out { " | LOOP TIMEOUT: not reflecting" } else { "" },
                    signatures.join(" ")
                )
            }
        }
    }

    /// Print the final totals, with average rates over the whole run.
    pub fn finish(
        &mut self,
        totals: &Counters,
        telemetry: &TelemetryReport,
    ) -> std::io::Result<()> {
        // Back to the normal screen (where the start line is) for the totals.
        self.dashboard = None;
        let elapsed = self.start.elapsed();
        let rates = Rates::between(&Counters::default(), totals, elapsed);
        let elapsed_s = elapsed.as_secs_f64();
        match self.format {
            Format::Json => self.json(&Event::Final {
                elapsed_s,
                rates,
                counters: *totals,
                telemetry: telemetry.clone(),
            }),
            Format::Csv => self.csv_row(elapsed_s, &rates, totals, telemetry),
            Format::Human | Format::Tui => {
                writeln!(self.out, "totals after {elapsed_s:.1}s:")?;
                writeln!(
                    self.out,
                    "  received   {:>12}  ({} bytes)",
                    totals.received, totals.rx_bytes
                )?;
                writeln!(
                    self.out,
                    "  reflected  {:>12}  ({} bytes)",
                    totals.reflected, totals.tx_bytes
                )?;
                writeln!(self.out, "  rejected   {:>12}", totals.rejected())?;
                writeln!(self.out, "  tx errors  {:>12}", totals.tx_errors)?;
                if totals.kernel.any() {
                    writeln!(self.out, "  kernel     {}", kernel_summary(&totals.kernel))?;
                }
                if totals.stamp_bad_checksum > 0 {
                    writeln!(
                        self.out,
                        "  STAMP packets with a wrong UDP checksum (answered) {}",
                        totals.stamp_bad_checksum
                    )?;
                }
                for s in Signature::ALL.iter().filter(|s| totals.signature(**s) > 0) {
                    writeln!(
                        self.out,
                        "  signature {:<10} {:>10}",
                        s.name(),
                        totals.signature(*s)
                    )?;
                }
                for r in Reject::ALL.iter().filter(|r| totals.reject(**r) > 0) {
                    writeln!(
                        self.out,
                        "  rejected  {:<20} {:>10}",
                        r.name(),
                        totals.reject(*r)
                    )?;
                }
                self.human_telemetry(telemetry)
            }
        }?;
        self.out.flush()
    }

    /// Dwell percentiles and the busiest streams, for the human-readable totals.
    fn human_telemetry(&mut self, telemetry: &TelemetryReport) -> std::io::Result<()> {
        let d = telemetry.dwell_ns;
        if d.count > 0 {
            writeln!(
                self.out,
                "  dwell (rx to tx)  min {}  p50 {}  p99 {}  p99.9 {}  max {}",
                human_ns(d.min),
                human_ns(d.p50),
                human_ns(d.p99),
                human_ns(d.p999),
                human_ns(d.max)
            )?;
        }
        if telemetry.loop_timed_out {
            writeln!(self.out, "  loop timeout reached: reflection stopped")?;
        }
        if telemetry.streams.is_empty() {
            return Ok(());
        }
        writeln!(
            self.out,
            "  streams ({}, busiest first; {} frames untracked):",
            telemetry.streams.len(),
            telemetry.untracked_frames
        )?;
        for s in telemetry.streams.iter().take(HUMAN_STREAMS) {
            let sequence = s.sequence.map_or(String::new(), |q| {
                format!(
                    "  lost {} reordered {} duplicated {} too_late {} restarts {}",
                    q.lost, q.reordered, q.duplicated, q.too_late, q.restarts
                )
            });
            writeln!(
                self.out,
                "    {} {} port {} -> {} {:<8} {:>10} frames {:>12} bytes{sequence}",
                s.src_mac,
                s.src_ip,
                s.src_port,
                s.dst_port,
                s.signature.name(),
                s.frames,
                s.bytes
            )?;
        }
        Ok(())
    }

    fn json(&mut self, event: &Event) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, event)?;
        writeln!(self.out)?;
        self.out.flush()
    }

    fn csv_row(
        &mut self,
        elapsed_s: f64,
        rates: &Rates,
        c: &Counters,
        telemetry: &TelemetryReport,
    ) -> std::io::Result<()> {
        if !self.csv_header_done {
            let mut header: Vec<String> = [
                "elapsed_s",
                "rx_pps",
                "tx_pps",
                "tx_mbps",
                "received",
                "reflected",
                "rejected",
                "tx_errors",
                "rx_bytes",
                "tx_bytes",
                "kernel_rx_dropped",
                "kernel_rx_ring_full",
                "kernel_fill_ring_empty",
                "kernel_tx_invalid",
                "kernel_unserved_queue",
            ]
            .map(String::from)
            .to_vec();
            header.extend(Signature::ALL.iter().map(|s| format!("sig_{}", s.name())));
            header.extend(Reject::ALL.iter().map(|r| format!("rej_{}", r.name())));
            header.extend(
                [
                    "dwell_p50_ns",
                    "dwell_p99_ns",
                    "dwell_max_ns",
                    "streams",
                    "loop_timed_out",
                ]
                .map(String::from),
            );
            writeln!(self.out, "{}", header.join(","))?;
            self.csv_header_done = true;
        }
        let mut row = vec![
            format!("{elapsed_s:.3}"),
            format!("{:.0}", rates.rx_pps),
            format!("{:.0}", rates.tx_pps),
            format!("{:.3}", rates.tx_mbps),
        ];
        row.extend(
            [
                c.received,
                c.reflected,
                c.rejected(),
                c.tx_errors,
                c.rx_bytes,
                c.tx_bytes,
                c.kernel.rx_dropped,
                c.kernel.rx_ring_full,
                c.kernel.fill_ring_empty,
                c.kernel.tx_invalid,
                c.kernel.unserved_queue,
            ]
            .map(|v| v.to_string()),
        );
        row.extend(Signature::ALL.iter().map(|s| c.signature(*s).to_string()));
        row.extend(Reject::ALL.iter().map(|r| c.reject(*r).to_string()));
        let d = telemetry.dwell_ns;
        row.extend(
            [
                d.p50,
                d.p99,
                d.max,
                telemetry.streams.len() as u64,
                u64::from(telemetry.loop_timed_out),
            ]
            .map(|v| v.to_string()),
        );
        writeln!(self.out, "{}", row.join(","))?;
        self.out.flush()
    }
}

/// How the platform runs, as the human start line and the dashboard's header show it:
/// e.g. "reflecting on eth0 (af_xdp (auto: ...), xdp native, zero-copy), 4 queue(s)".
pub(crate) fn platform_line(platform: &PlatformInfo) -> String {
    let mut detail = vec![match &platform.reason {
        Some(reason) => format!("{} ({reason})", platform.backend),
        None => platform.backend.clone(),
    }];
    detail.extend(platform.xdp_mode.as_ref().map(|m| format!("xdp {m}")));
    detail.extend(
        platform
            .zero_copy
            .map(|z| if z { "zero-copy" } else { "copy mode" }.to_owned()),
    );
    // Granted in copy mode only, so it follows "copy mode".
    detail.extend(
        platform
            .xdp_send
            .filter(|x| *x)
            .map(|_| "xdp send".to_owned()),
    );
    detail.extend(
        platform
            .busy_poll
            .filter(|b| *b)
            .map(|_| "busy-poll".to_owned()),
    );
    detail.extend(
        platform
            .wake_latency
            .map(|w| format!("wake-latency {}", if w { "on" } else { "off" })),
    );
    // What the path carries; the in-kernel back end limits the STAMP packets alone.
    detail.extend(platform.max_frame_len.map(|n| {
        if platform.backend == settings::LiveBackend::XdpTx.name() {
            format!("STAMP frames up to {n} B")
        } else {
            format!("frames up to {n} B")
        }
    }));
    format!(
        "reflecting on {} ({}), {} queue(s)",
        platform.interface,
        detail.join(", "),
        platform.queues
    )
}

/// The kernel's drops at the workers' sockets, for the human stats line and totals:
/// frames lost before a worker saw them, then why.
pub(crate) fn kernel_summary(k: &KernelDrops) -> String {
    format!(
        "dropped {} (rx ring full {}, no buffer {}, unserved queue {}) fill ring empty {} \
         tx invalid {}",
        k.lost(),
        k.rx_ring_full,
        k.rx_dropped,
        k.unserved_queue,
        k.fill_ring_empty,
        k.tx_invalid
    )
}

/// Streams listed in the human-readable totals (all of them are in `--json`).
const HUMAN_STREAMS: usize = 20;

pub(crate) fn human_ns(ns: u64) -> String {
    match ns {
        n if n >= 1_000_000 => format!("{:.2} ms", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} µs", n as f64 / 1e3),
        n => format!("{n} ns"),
    }
}

pub(crate) fn human_pps(pps: f64) -> String {
    match pps {
        p if p >= 1e6 => format!("{:.2} Mpps", p / 1e6),
        p if p >= 1e3 => format!("{:.1} kpps", p / 1e3),
        p => format!("{p:.0} pps"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(received: u64) -> Counters {
        let mut c = Counters {
            received,
            reflected: received - 1,
            tx_bytes: (received - 1) * 60,
            ..Counters::default()
        };
        c.per_signature[Signature::Rfc2544.index()] = received - 1;
        c.per_reject[Reject::NoSignature.index()] = 1;
        c
    }

    fn telemetry() -> TelemetryReport {
        TelemetryReport {
            dwell_ns: dataplane::histogram::Percentiles {
                count: 3,
                min: 1_000,
                p50: 2_000,
                p90: 5_000,
                p99: 7_000,
                p999: 7_000,
                max: 7_000,
            },
            ..TelemetryReport::default()
        }
    }

    #[test]
    fn json_lines_parse_back_into_events() {
        let mut out = Vec::new();
        let mut reporter = Reporter::new(&mut out, Format::Json);
        reporter
            .started(&PlatformInfo {
                backend: "pcap".into(),
                queues: 1,
                ..Default::default()
            })
            .unwrap();
        reporter.tick(&counters(11), &telemetry()).unwrap();
        reporter.finish(&counters(21), &telemetry()).unwrap();
        let events: Vec<Event> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(matches!(&events[0], Event::Started { platform } if platform.backend == "pcap"));
        assert!(matches!(&events[1], Event::Stats { counters, .. } if counters.received == 11));
        assert!(
            matches!(&events[1], Event::Stats { telemetry, .. } if telemetry.dwell_ns.p99 == 7_000)
        );
        match &events[2] {
            Event::Final {
                counters, rates, ..
            } => {
                assert_eq!(counters.signature(Signature::Rfc2544), 20);
                assert!(rates.tx_pps > 0.0);
            }
            other => panic!("expected final, got {other:?}"),
        }
    }

    #[test]
    fn csv_has_one_header_and_matching_columns() {
        let mut out = Vec::new();
        let mut reporter = Reporter::new(&mut out, Format::Csv);
        reporter.tick(&counters(5), &telemetry()).unwrap();
        reporter.finish(&counters(9), &telemetry()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let columns = lines[0].split(',').count();
        assert!(lines[1..].iter().all(|l| l.split(',').count() == columns));
        assert!(lines[0].contains("sig_Y.1564") && lines[0].contains("rej_no_signature"));
        assert!(lines[0].ends_with("dwell_p50_ns,dwell_p99_ns,dwell_max_ns,streams,loop_timed_out"));
        assert!(lines[1].ends_with(",2000,7000,7000,0,0"), "{}", lines[1]);
        assert!(lines[2].starts_with(|c: char| c.is_ascii_digit()));
        assert!(lines[0].contains(",tx_bytes,kernel_rx_dropped,kernel_rx_ring_full,"));
    }

    #[test]
    fn the_first_line_says_whether_the_workers_keep_cpus_quick_to_wake() {
        let line = |wake_latency| {
            platform_line(&PlatformInfo {
                backend: "af_packet".into(),
                interface: "eth0".into(),
                wake_latency,
                queues: 1,
                ..PlatformInfo::default()
            })
        };
        assert_eq!(
            line(Some(true)),
            "reflecting on eth0 (af_packet, wake-latency on), 1 queue(s)"
        );
        assert_eq!(
            line(Some(false)),
            "reflecting on eth0 (af_packet, wake-latency off), 1 queue(s)"
        );
        assert_eq!(line(None), "reflecting on eth0 (af_packet), 1 queue(s)");
    }

    #[test]
    fn the_first_line_says_when_copy_mode_sends_through_xdp() {
        let line = |xdp_send| {
            platform_line(&PlatformInfo {
                backend: "af_xdp".into(),
                interface: "veth0".into(),
                xdp_mode: Some("native".into()),
                zero_copy: Some(false),
                busy_poll: Some(false),
                wake_latency: Some(true),
                xdp_send,
                queues: 2,
                ..PlatformInfo::default()
            })
        };
        assert_eq!(
            line(Some(true)),
            "reflecting on veth0 (af_xdp, xdp native, copy mode, xdp send, wake-latency on), \
             2 queue(s)"
        );
        let socket = "reflecting on veth0 (af_xdp, xdp native, copy mode, wake-latency on), \
                      2 queue(s)";
        assert_eq!(line(Some(false)), socket);
        assert_eq!(line(None), socket);
    }

    #[test]
    fn human_lines_name_kernel_drops_only_when_there_are_some() {
        let mut out = Vec::new();
        let mut reporter = Reporter::new(&mut out, Format::Human);
        reporter.tick(&counters(5), &telemetry()).unwrap();
        let mut dropping = counters(9);
        dropping.kernel.rx_ring_full = 300;
        dropping.kernel.rx_dropped = 2;
        reporter.tick(&dropping, &telemetry()).unwrap();
        reporter.finish(&dropping, &telemetry()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(!lines[0].contains("kernel"), "{}", lines[0]);
        assert!(
            lines[1]
                .contains("kernel dropped 302 (rx ring full 300, no buffer 2, unserved queue 0)"),
            "{}",
            lines[1]
        );
        assert!(
            text.contains("  kernel     dropped 302 (rx ring full 300"),
            "{text}"
        );
    }
}
