//! Keep idle CPUs quick to wake while frames flow: a CPU latency request
//! (`/dev/cpu_dma_latency`) held from the first frame until none has come for a
//! second.
//!
//! A worker sleeps in poll(2) between frames, and at low rates its CPU goes idle. How
//! long an idle CPU then takes to run the woken worker depends on how deeply it sleeps:
//! in a VM whose idle driver halts the virtual CPU (haltpoll with halt polling off, as
//! on the rig of docs/PERFORMANCE.md), the wake-up is an interrupt through the host;
//! at 1 kpps such wake-ups made most of the RTT tail (p99.9 1.3-1.7 ms, max up to
//! 3.7 ms).
//! With a latency request of 0 the kernel keeps idle CPUs polling instead, so a wake-up
//! is a flag the CPU sees at once.
//!
//! The request is the kernel's global one, not one per CPU: a per-CPU request exists
//! only as a sysfs value (`cpuN/power/pm_qos_resume_latency_us`) that would outlive a
//! killed process, while this one belongs to an open file and the kernel drops it when
//! the process exits, however it exits. It is held only while frames arrive, so an idle
//! reflector costs no CPU.
//!
//! Every worker that sleeps between frames (AF_XDP without busy polling, AF_PACKET)
//! keeps one; `--wake-latency off` makes it ask for nothing. The packaged service may
//! open the device through the udev rule it installs (docs/TROUBLESHOOTING.md).

use crate::clock::nanos;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};

/// How long after the last frame the request stays: longer than the gap between frames
/// at any rate whose latency matters, short enough that an idle reflector lets its CPUs
/// sleep again within a second or two.
const HOLD_FOR_NS: u64 = 1_000_000_000;

/// The latency asked for while frames flow, in µs: 0, no idle state that takes time to
/// leave (with the haltpoll idle governor of a KVM guest, the only value that keeps an
/// idle CPU from halting).
const LATENCY_US: i32 = 0;

/// Where the kernel takes CPU latency requests.
const DEVICE: &str = "/dev/cpu_dma_latency";

/// One worker's request: opened when frames start to arrive, closed (released) once
/// they stop, and when dropped.
#[derive(Debug)]
pub struct WakeLatency {
    held: Option<File>,
    /// CLOCK_MONOTONIC of the last batch with frames.
    last_frame_ns: u64,
    /// Never requested: turned off (`--wake-latency off`, or a worker that never
    /// sleeps), or after a failed request (warned once, not retried).
    unavailable: bool,
}

impl WakeLatency {
    /// A worker's request, taken while frames flow if `wanted`; never otherwise.
    pub fn new(wanted: bool) -> WakeLatency {
        WakeLatency {
            held: None,
            last_frame_ns: 0,
            unavailable: !wanted,
        }
    }

    /// Frames arrived at `now_ns` (CLOCK_MONOTONIC): hold the request.
    #[inline]
    pub fn frames_at(&mut self, now_ns: u64) {
        self.last_frame_ns = now_ns;
        if self.held.is_none() && !self.unavailable {
            self.hold();
        }
    }

    /// A receive found no frame: release the request once none came for a second. The
    /// clock is read only while the request is held.
    pub fn idle(&mut self) {
        if self.held.is_some() {
            self.idle_at(nanos(libc::CLOCK_MONOTONIC));
        }
    }

    /// No frames at `now_ns`: release the request once none came for [`HOLD_FOR_NS`].
    fn idle_at(&mut self, now_ns: u64) {
        if self.held.is_some() && now_ns.saturating_sub(self.last_frame_ns) >= HOLD_FOR_NS {
            self.held = None;
        }
    }

    /// Whether the request is held now.
    #[cfg(test)]
    fn is_held(&self) -> bool {
        self.held.is_some()
    }

    fn hold(&mut self) {
        match request(LATENCY_US) {
            Ok(file) => self.held = Some(file),
            Err(e) => {
                self.unavailable = true;
                tracing::warn!(
                    "cannot keep idle CPUs quick to wake ({DEVICE}: {e}): at low rates the \
                     reflector may add wake-up delays of up to milliseconds; run as root, \
                     give its user write access to {DEVICE} (the package's udev rule does \
                     for its service; docs/TROUBLESHOOTING.md), or say --wake-latency off"
                );
            }
        }
    }
}

/// Open a latency request for `us` microseconds; it lasts while the file is open.
fn request(us: i32) -> io::Result<File> {
    let mut file = OpenOptions::new().write(true).open(DEVICE)?;
    // The device takes the value as a binary s32.
    file.write_all(&us.to_ne_bytes())?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_only_after_a_quiet_second() {
        let mut wake = WakeLatency {
            // Stands in for the device: the logic only cares whether a file is held.
            held: Some(File::open("/dev/null").unwrap()),
            last_frame_ns: 5_000_000_000,
            unavailable: true,
        };
        wake.idle_at(5_000_000_000 + HOLD_FOR_NS - 1);
        assert!(wake.is_held(), "released before a second without frames");
        wake.idle_at(5_000_000_000 + HOLD_FOR_NS);
        assert!(!wake.is_held(), "still held after a second without frames");
        // Unavailable: frames do not retry the request.
        wake.frames_at(7_000_000_000);
        assert!(!wake.is_held());
    }

    #[test]
    fn a_request_turned_off_is_never_taken() {
        let mut off = WakeLatency::new(false);
        off.frames_at(1);
        off.idle();
        assert!(!off.is_held());
    }
}
