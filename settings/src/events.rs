//! What a worker prints with `--json`, one [`Event`] per line, and what `reflector
//! probe --json` prints ([`ProbeReport`]): the interface the control plane and the
//! tests read.

use dataplane::histogram::{Buckets, Percentiles};
use dataplane::{Counters, TelemetryReport};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// How the platform is actually running (what the kernel granted, not what was asked).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlatformInfo {
    /// e.g. "af_xdp", "bpf", "pcap".
    pub backend: String,
    pub interface: String,
    /// XDP attach mode in use ("native"/"generic"), where applicable.
    pub xdp_mode: Option<String>,
    pub zero_copy: Option<bool>,
    pub busy_poll: Option<bool>,
    /// Whether the workers hold a CPU latency request while frames flow
    /// (`--wake-latency`; AF_XDP workers that busy-poll never do), where they sleep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_latency: Option<bool>,
    /// Whether AF_XDP sockets in copy mode send full batches as XDP frames through the
    /// XDP program (`--xdp-send`): true when at least one socket does at the start (a
    /// device that refuses them puts it back on the socket at its first batch); false
    /// with zero-copy or `off`; absent for AF_PACKET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xdp_send: Option<bool>,
    pub queues: u32,
    /// Why this back end runs, when `--backend auto` chose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The longest frame (bytes, without FCS) the back end's buffers take, where they
    /// set a limit: longer test frames are counted as `too_large`. With `xdp_tx` it
    /// bounds the STAMP packets the workers answer; the kernel reflects the rest
    /// whatever their length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_frame_len: Option<u32>,
}

/// Packet and bit rates over one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rates {
    pub rx_pps: f64,
    pub tx_pps: f64,
    /// Received Ethernet bits per second (frame bytes without FCS), in Mbit/s. Absent
    /// (0) in lines from workers older than this field.
    #[serde(default)]
    pub rx_mbps: f64,
    /// Reflected Ethernet bits per second (frame bytes without FCS), in Mbit/s.
    pub tx_mbps: f64,
}

impl Rates {
    pub fn between(before: &Counters, after: &Counters, elapsed: Duration) -> Rates {
        let secs = elapsed.as_secs_f64();
        if secs <= 0.0 {
            return Rates::default();
        }
        Rates {
            rx_pps: after.received.saturating_sub(before.received) as f64 / secs,
            tx_pps: after.reflected.saturating_sub(before.reflected) as f64 / secs,
            rx_mbps: after.rx_bytes.saturating_sub(before.rx_bytes) as f64 * 8.0 / secs / 1e6,
            tx_mbps: after.tx_bytes.saturating_sub(before.tx_bytes) as f64 * 8.0 / secs / 1e6,
        }
    }
}

/// One line of `--json` output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        platform: PlatformInfo,
    },
    Stats {
        elapsed_s: f64,
        rates: Rates,
        counters: Counters,
        #[serde(default)]
        telemetry: TelemetryReport,
    },
    Final {
        elapsed_s: f64,
        rates: Rates,
        counters: Counters,
        #[serde(default)]
        telemetry: TelemetryReport,
    },
}

/// What the probe measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeReport {
    pub sent: u64,
    /// Distinct sequence numbers that came back correctly reflected.
    pub received: u64,
    /// Frames that did not come back within `--wait` of being sent.
    pub lost: u64,
    /// Frames sent less than `--wait` ago that have not come back yet: a report taken
    /// while the run goes on counts them here, not as lost; 0 in a final report.
    /// Absent in reports from before it was added.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub in_flight: u64,
    /// Reflections that arrived after a higher sequence number.
    pub reordered: u64,
    /// Reflections of a sequence number already seen.
    pub duplicated: u64,
    /// Frames carrying our stamp whose reflection is wrong (fields not swapped as
    /// `--mode` says, or a bad checksum).
    pub malformed: u64,
    /// Round-trip time in nanoseconds.
    pub rtt_ns: Percentiles,
    /// The round-trip times as a Prometheus-shaped histogram (cumulative counts at
    /// fixed bounds); absent in reports from before it was added.
    #[serde(default)]
    pub rtt_buckets: Buckets,
    pub send_seconds: f64,
    pub tx_pps: f64,
    /// Where the round-trip times' stamps came from, i.e. the head's own floor:
    /// "XDP bpf_ktime_get_ns" (fast engine), "kernel software" (SO_TIMESTAMPING on
    /// both ends), "user clock", or each end's ("kernel software receive, user clock
    /// send"); "no kernel software" for an end offered stamps that never got one (no
    /// RTT sample). Absent in reports from before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamps: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = |ns: u64| ns as f64 / 1000.0;
        writeln!(
            f,
            "sent {} in {:.2}s ({:.0} pps)",
            self.sent, self.send_seconds, self.tx_pps
        )?;
        writeln!(
            f,
            "received {}  lost {}  reordered {}  duplicated {}  malformed {}",
            self.received, self.lost, self.reordered, self.duplicated, self.malformed
        )?;
        if self.in_flight > 0 {
            writeln!(
                f,
                "in flight {} (sent less than --wait ago)",
                self.in_flight
            )?;
        }
        if self.received == 0 {
            return write!(f, "rtt us: none (nothing came back)");
        }
        let r = &self.rtt_ns;
        write!(
            f,
            "rtt us: min {:.1}  p50 {:.1}  p99 {:.1}  max {:.1}",
            us(r.min),
            us(r.p50),
            us(r.p99),
            us(r.max)
        )?;
        match &self.timestamps {
            Some(source) => write!(f, "  ({source} timestamps)"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact lines the control plane has always read: field names, the `event`
    /// tag and telemetry defaulting when an older worker leaves it out.
    #[test]
    fn the_json_lines_keep_their_shape() {
        let started = Event::Started {
            platform: PlatformInfo {
                backend: "af_xdp".into(),
                interface: "eth0".into(),
                xdp_mode: Some("native".into()),
                zero_copy: Some(true),
                busy_poll: Some(false),
                wake_latency: Some(true),
                xdp_send: Some(false),
                queues: 4,
                reason: None,
                max_frame_len: None,
            },
        };
        assert_eq!(
            serde_json::to_string(&started).unwrap(),
            r#"{"event":"started","platform":{"backend":"af_xdp","interface":"eth0","xdp_mode":"native","zero_copy":true,"busy_poll":false,"wake_latency":true,"xdp_send":false,"queues":4}}"#
        );
        let stats = serde_json::to_value(Event::Stats {
            elapsed_s: 1.5,
            rates: Rates {
                rx_pps: 10.0,
                tx_pps: 9.0,
                rx_mbps: 0.6,
                tx_mbps: 0.5,
            },
            counters: Counters::default(),
            telemetry: TelemetryReport::default(),
        })
        .unwrap();
        assert_eq!(stats["event"], "stats");
        assert_eq!(stats["rates"]["tx_mbps"], 0.5);
        let mut old = stats.clone();
        old.as_object_mut().unwrap().remove("telemetry");
        old["event"] = "final".into();
        assert!(matches!(
            serde_json::from_value::<Event>(old).unwrap(),
            Event::Final { elapsed_s, .. } if elapsed_s == 1.5
        ));
    }

    #[test]
    fn rates_are_deltas_over_time() {
        let before = Counters::default();
        let after = Counters {
            received: 2000,
            reflected: 1000,
            rx_bytes: 250_000,
            tx_bytes: 125_000,
            ..Counters::default()
        };
        let rates = Rates::between(&before, &after, Duration::from_secs(2));
        assert_eq!(
            (rates.rx_pps, rates.tx_pps, rates.rx_mbps, rates.tx_mbps),
            (1000.0, 500.0, 1.0, 0.5)
        );
        assert_eq!(
            Rates::between(&before, &after, Duration::ZERO),
            Rates::default()
        );
    }

    #[test]
    fn the_probe_report_reads_in_microseconds() {
        let report = ProbeReport {
            sent: 10,
            received: 9,
            lost: 1,
            rtt_ns: Percentiles {
                min: 1500,
                p50: 2000,
                p99: 9000,
                max: 12_000,
                ..Percentiles::default()
            },
            send_seconds: 2.0,
            tx_pps: 5.0,
            ..ProbeReport::default()
        };
        assert_eq!(
            report.to_string(),
            "sent 10 in 2.00s (5 pps)\nreceived 9  lost 1  reordered 0  duplicated 0  malformed 0\nrtt us: min 1.5  p50 2.0  p99 9.0  max 12.0"
        );
    }
}
