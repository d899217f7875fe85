//! Translating a [`dataplane::Filter`] and the signature table into the XDP program's
//! read-only configuration (`struct config` in reflector.bpf.c).
//!
//! The byte signatures are compiled into the program from [`SIGNATURES`] (build.rs);
//! the filter's choice among them is `signature_rows`, a bit per row. STAMP, which has no
//! row, becomes `stamp_enabled` and `stamp_port`. [`Reflection`] says where accepted
//! frames go, and for in-kernel reflection which of the worker's policy the program
//! runs itself.

use crate::skel::reflector_types as types;
use dataplane::filter::MAX_BROADCASTS;
use dataplane::safety::Safety;
use dataplane::signature::SIGNATURES;
use dataplane::{Broadcasts, DstMacFilter, Filter, Mode, Signature};
use nix::time::{clock_gettime, ClockId};
use std::time::Duration;

/// Where the program sends the test frames it accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Reflection {
    /// To the AF_XDP socket of the receiving queue (`--backend xdp`); the workers
    /// apply the policy.
    #[default]
    AfXdp,
    /// Swapped in place as `dataplane::reflect` does in `mode` and sent back with
    /// XDP_TX (`--backend xdp-tx`); STAMP packets still go to the AF_XDP socket. The
    /// program applies `safety` (loop timeout, allow-list, per-source rate limit) to
    /// every test frame, STAMP included, as a worker would: the loop timeout counts
    /// from the moment the program is loaded.
    InKernel { mode: Mode, safety: Safety },
}

impl Reflection {
    /// In-kernel reflection in `mode` with no policy.
    pub fn in_kernel(mode: Mode) -> Reflection {
        Reflection::InKernel {
            mode,
            safety: Safety::default(),
        }
    }

    /// The policy the program itself applies.
    pub(crate) fn policy(&self) -> Option<&Safety> {
        match self {
            Reflection::AfXdp => None,
            Reflection::InKernel { safety, .. } => Some(safety),
        }
    }
}

/// The `cfg` the XDP program classifies with, built from `filter`. Test frames longer
/// than `max_frame_len` (what the AF_XDP sockets take) are counted as `too_large`
/// instead of being redirected.
pub(crate) fn program_config(
    filter: &Filter,
    reflection: &Reflection,
    max_frame_len: u32,
) -> types::config {
    // All zero, the value the program starts from.
    let mut cfg = types::config::default();
    match filter.dst_mac {
        DstMacFilter::Exact(mac) => {
            cfg.dst_mac = mac.0;
            cfg.dst_mac_exact = 1;
        }
        DstMacFilter::AnyUnicast => cfg.dst_mac_exact = 0,
    }
    if let Some(oui) = filter.src_oui {
        cfg.src_oui_enabled = 1;
        cfg.src_oui = oui.0;
    }
    cfg.ipv6 = filter.ipv6.into();
    cfg.vlan = filter.vlan.into();
    cfg.udp_port = filter.udp_port;
    cfg.stamp_enabled = filter.signatures.contains(Signature::Stamp).into();
    cfg.stamp_port = filter.stamp_port;
    cfg.stamp_index = Signature::Stamp.index() as u8;
    cfg.max_frame_len = max_frame_len;
    cfg.send_secret = crate::skel::random_secret();
    if let Reflection::InKernel { mode, safety } = reflection {
        cfg.in_kernel = 1;
        cfg.swap_ip = (*mode != Mode::Mac).into();
        cfg.swap_ports = (*mode == Mode::All).into();
        set_policy(&mut cfg, safety);
    }
    cfg.signature_rows = signature_rows(filter);
    cfg
}

/// The policy fields of `cfg`; the allow-list's prefixes go into their maps once the
/// program is loaded ([`allow_key`]).
fn set_policy(cfg: &mut types::config, safety: &Safety) {
    cfg.allow = u8::from(!safety.allow.is_empty());
    if let Some(limit) = safety.rate_limit {
        cfg.rate_limit = 1;
        (cfg.rate_interval_ns, cfg.rate_tolerance_ns) = limit.gcra();
    }
    if let Some(timeout) = safety.loop_timeout {
        cfg.loop_timeout = 1;
        let deadline = monotonic_now().saturating_add(timeout);
        cfg.loop_deadline_ns = u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX);
    }
}

/// Whether `cfg` turns on any part of the policy: then the program to run is
/// `xdp_reflector_policed`, which has it compiled in, not `xdp_reflector`.
pub(crate) fn policed(cfg: &types::config) -> bool {
    cfg.allow | cfg.rate_limit | cfg.loop_timeout != 0
}

/// CLOCK_MONOTONIC, the clock of the program's bpf_ktime_get_ns().
fn monotonic_now() -> Duration {
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always there");
    Duration::from(now)
}

/// The key of an allow-list prefix in its map: `allow_v4` (`false`) or `allow_v6`
/// (`true`), then `struct allow_v4_key` or `struct allow_v6_key` (the prefix length,
/// host order, then the address, network order).
pub(crate) fn allow_key(prefix: &ipnet::IpNet) -> (bool, Vec<u8>) {
    let prefix = prefix.trunc();
    let (v6, addr) = match prefix.addr() {
        std::net::IpAddr::V4(a) => (false, a.octets().to_vec()),
        std::net::IpAddr::V6(a) => (true, a.octets().to_vec()),
    };
    let key = u32::from(prefix.prefix_len())
        .to_ne_bytes()
        .into_iter()
        .chain(addr);
    (v6, key.collect())
}

/// The value of the program's `broadcasts` map (`struct broadcasts`): the count, then
/// every slot of the address array, each a native-endian u32 as the program compares it.
pub(crate) fn broadcasts_value(list: &Broadcasts) -> Vec<u8> {
    let mut slots = [0u32; MAX_BROADCASTS];
    slots[..list.len()].copy_from_slice(list.as_u32s());
    std::iter::once(list.len() as u32)
        .chain(slots)
        .flat_map(u32::to_ne_bytes)
        .collect()
}

/// The rows of [`SIGNATURES`] the filter accepts, as the program's mask (bit r: row r;
/// build.rs refuses a table of more than 32 rows).
fn signature_rows(filter: &Filter) -> u32 {
    SIGNATURES
        .iter()
        .enumerate()
        .filter(|(_, spec)| filter.signatures.contains(spec.signature))
        .fold(0, |rows, (row, _)| rows | 1 << row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::reference::reference_filter;
    use dataplane::SignatureSet;

    const ANY_LENGTH: u32 = u32::MAX;

    #[test]
    fn broadcasts_value_is_the_count_then_every_slot() {
        let list = Broadcasts::new(["192.0.2.255".parse().unwrap()]);
        let value = broadcasts_value(&list);
        assert_eq!(value.len(), 4 * (1 + MAX_BROADCASTS));
        assert_eq!(value[..4], 1u32.to_ne_bytes());
        assert_eq!(value[4..8], 0xc000_02ffu32.to_ne_bytes());
        assert!(value[8..].iter().all(|b| *b == 0));
        assert_eq!(
            std::mem::size_of::<types::broadcasts>(),
            value.len(),
            "struct broadcasts in reflector.bpf.c changed"
        );
    }

    #[test]
    fn config_mirrors_the_filter() {
        let mut filter = reference_filter();
        filter.signatures = SignatureSet::from(vec![Signature::Rfc2544]);
        filter.ipv6 = false;
        let cfg = program_config(&filter, &Reflection::AfXdp, ANY_LENGTH);
        assert_eq!(cfg.dst_mac_exact, 1);
        assert_eq!(cfg.ipv6, 0);
        assert_eq!(cfg.vlan, u8::from(filter.vlan));
        assert_eq!(cfg.udp_port, filter.udp_port);
        assert_eq!(cfg.stamp_enabled, 0);
        assert_eq!(cfg.stamp_port, filter.stamp_port);
        assert_eq!(cfg.in_kernel, 0);
        assert_eq!(cfg.max_frame_len, ANY_LENGTH);
        let rfc2544_row = SIGNATURES
            .iter()
            .position(|spec| spec.signature == Signature::Rfc2544)
            .unwrap();
        assert_eq!(cfg.signature_rows, 1 << rfc2544_row);
    }

    #[test]
    fn stamp_is_a_flag_and_a_port_not_a_row() {
        let mut filter = reference_filter();
        filter.signatures = SignatureSet::from(vec![Signature::Stamp]);
        filter.stamp_port = 8620;
        let cfg = program_config(&filter, &Reflection::AfXdp, ANY_LENGTH);
        assert_eq!((cfg.stamp_enabled, cfg.stamp_port), (1, 8620));
        assert_eq!(cfg.signature_rows, 0);
        let cfg = program_config(&reference_filter(), &Reflection::AfXdp, ANY_LENGTH);
        assert_eq!((cfg.stamp_enabled, cfg.stamp_port), (1, 862));
        assert_eq!(cfg.signature_rows, (1 << SIGNATURES.len()) - 1);
    }

    #[test]
    fn in_kernel_reflection_swaps_what_the_mode_says() {
        let swaps = |mode| {
            let reflection = Reflection::in_kernel(mode);
            let cfg = program_config(&reference_filter(), &reflection, ANY_LENGTH);
            assert!(!policed(&cfg));
            assert_eq!(cfg.in_kernel, 1);
            assert_eq!(cfg.stamp_index as usize, Signature::Stamp.index());
            (cfg.swap_ip, cfg.swap_ports)
        };
        assert_eq!(swaps(Mode::Mac), (0, 0));
        assert_eq!(swaps(Mode::MacIp), (1, 0));
        assert_eq!(swaps(Mode::All), (1, 1));
    }

    #[test]
    fn policy_goes_into_the_configuration() {
        let safety = Safety {
            allow: vec!["192.0.2.0/24".parse().unwrap()],
            rate_limit: Some(dataplane::safety::RateLimit {
                per_source_pps: 1000,
                burst: 64,
            }),
            loop_timeout: Some(Duration::from_secs(10)),
        };
        let before = monotonic_now();
        let reflection = Reflection::InKernel {
            mode: Mode::All,
            safety: safety.clone(),
        };
        let cfg = program_config(&reference_filter(), &reflection, ANY_LENGTH);
        let after = monotonic_now();
        assert_eq!((cfg.allow, cfg.rate_limit, cfg.loop_timeout), (1, 1, 1));
        assert!(policed(&cfg));
        assert_eq!(
            (cfg.rate_interval_ns, cfg.rate_tolerance_ns),
            (1_000_000, 63_000_000)
        );
        let deadline = Duration::from_nanos(cfg.loop_deadline_ns);
        let timeout = Duration::from_secs(10);
        assert!(before + timeout <= deadline && deadline <= after + timeout);
        // With AF_XDP the workers apply it; the program does not.
        let cfg = program_config(&reference_filter(), &Reflection::AfXdp, ANY_LENGTH);
        assert!(!policed(&cfg));
    }

    #[test]
    fn allow_keys_are_the_prefix_length_then_the_address() {
        let (v6, key) = allow_key(&"192.0.2.0/24".parse().unwrap());
        assert!(!v6);
        assert_eq!(key[..4], 24u32.to_ne_bytes());
        assert_eq!(key[4..], [192, 0, 2, 0]);
        assert_eq!(key.len(), std::mem::size_of::<types::allow_v4_key>());
        let (v6, key) = allow_key(&"2001:db8::/32".parse().unwrap());
        assert!(v6);
        assert_eq!(key[..4], 32u32.to_ne_bytes());
        assert_eq!(key[4..8], [0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(key.len(), std::mem::size_of::<types::allow_v6_key>());
    }

    #[test]
    fn any_unicast_and_no_oui() {
        let mut filter = reference_filter();
        filter.dst_mac = DstMacFilter::AnyUnicast;
        filter.src_oui = None;
        let cfg = program_config(&filter, &Reflection::AfXdp, ANY_LENGTH);
        assert_eq!((cfg.dst_mac_exact, cfg.src_oui_enabled), (0, 0));
    }
}
