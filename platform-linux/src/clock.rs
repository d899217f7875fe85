//! The system clocks, as the reflector's timestamps need them.

use dataplane::stamp::{error_estimate, UNSYNCHRONISED_ERROR_ESTIMATE};

/// Nanoseconds on `clock` (CLOCK_MONOTONIC, CLOCK_REALTIME, ...).
pub fn nanos(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec to write to; the call cannot fail then.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The STAMP Error Estimate for the system clock as the kernel's NTP state describes
/// it (`ntp_adjtime`): synchronised with its estimated error, or not synchronised.
pub fn stamp_error_estimate() -> u16 {
    // SAFETY: all-zero is a valid `timex`; modes = 0 only reads the state.
    let mut state: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: a valid, writable timex.
    let clock_state = unsafe { libc::ntp_adjtime(&mut state) };
    let synchronised = clock_state != libc::TIME_ERROR && state.status & libc::STA_UNSYNC == 0;
    if !synchronised {
        return UNSYNCHRONISED_ERROR_ESTIMATE;
    }
    // esterror is in microseconds.
    error_estimate(true, u64::try_from(state.esterror).unwrap_or(0) * 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_sensibly() {
        assert!(nanos(libc::CLOCK_REALTIME) > 1_600_000_000_000_000_000);
        let before = nanos(libc::CLOCK_MONOTONIC);
        assert!(nanos(libc::CLOCK_MONOTONIC) >= before);
    }

    #[test]
    fn error_estimate_follows_the_kernel_clock_state() {
        let field = stamp_error_estimate();
        // Whatever this machine's NTP state, the multiplier is never 0 (RFC 4656) and
        // Z says NTP format.
        assert_ne!(field & 0xFF, 0);
        assert_eq!(field >> 14 & 1, 0);
    }
}
