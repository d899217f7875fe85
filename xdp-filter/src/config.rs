//! Translating a [`dataplane::Filter`] and the signature table into the XDP program's
//! read-only configuration (`struct config` in reflector.bpf.c).
//!
//! The byte signatures are copied row by row from [`SIGNATURES`]; STAMP, which has no
//! row, becomes `stamp_enabled` and `stamp_port`. [`Reflection`] says where accepted
//! frames go.

use crate::skel::reflector_types as types;
use crate::{Error, Result, MAX_SIGNATURES, MAX_SIGNATURE_LEN};
use dataplane::signature::SIGNATURES;
use dataplane::{DstMacFilter, Filter, Mode, Signature};

/// Where the program sends the test frames it accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reflection {
    /// To the AF_XDP socket of the receiving queue (`--backend xdp`).
    #[default]
    AfXdp,
    /// Swapped in place as `dataplane::reflect` does in this mode and sent back with
    /// XDP_TX (`--backend xdp-tx`); STAMP packets still go to the AF_XDP socket.
    InKernel(Mode),
}

/// The `cfg` the XDP program classifies with, built from `filter`.
pub(crate) fn program_config(filter: &Filter, reflection: Reflection) -> Result<types::config> {
    check_table_fits()?;
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
    if let Reflection::InKernel(mode) = reflection {
        cfg.in_kernel = 1;
        cfg.swap_ip = (mode != Mode::Mac).into();
        cfg.swap_ports = (mode == Mode::All).into();
    }
    for (row, spec) in cfg.signatures.iter_mut().zip(SIGNATURES.iter()) {
        row.enabled = filter.signatures.contains(spec.signature).into();
        row.index = spec.signature.index() as u8;
        // Both fit: `check_table_fits` bounds them.
        row.offset = spec.offset as u8;
        row.len = spec.bytes.len() as u8;
        row.bytes[..spec.bytes.len()].copy_from_slice(spec.bytes);
    }
    Ok(cfg)
}

/// The C program holds a fixed-size copy of the table (and an XDP_TX counter per row
/// plus one for STAMP); refuse a table it cannot hold rather than silently dropping rows.
fn check_table_fits() -> Result<()> {
    let longest = SIGNATURES.iter().map(|s| s.bytes.len()).max().unwrap_or(0);
    let offset = SIGNATURES.iter().map(|s| s.offset).max().unwrap_or(0);
    if SIGNATURES.len() > MAX_SIGNATURES || longest > MAX_SIGNATURE_LEN || offset > 255 {
        return Err(Error::SignatureTableTooBig {
            count: SIGNATURES.len(),
            longest,
            offset,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::reference::reference_filter;
    use dataplane::SignatureSet;

    #[test]
    fn signature_table_fits_the_program() {
        check_table_fits().expect("dataplane's signature table outgrew reflector.bpf.c");
    }

    #[test]
    fn config_mirrors_the_filter() {
        let mut filter = reference_filter();
        filter.signatures = SignatureSet::from(vec![Signature::Rfc2544]);
        filter.ipv6 = false;
        let cfg = program_config(&filter, Reflection::AfXdp).unwrap();
        assert_eq!(cfg.dst_mac_exact, 1);
        assert_eq!(cfg.ipv6, 0);
        assert_eq!(cfg.vlan, u8::from(filter.vlan));
        assert_eq!(cfg.udp_port, filter.udp_port);
        assert_eq!(cfg.stamp_enabled, 0);
        assert_eq!(cfg.stamp_port, filter.stamp_port);
        assert_eq!(cfg.in_kernel, 0);
        for (row, spec) in cfg.signatures.iter().zip(SIGNATURES.iter()) {
            assert_eq!(row.enabled, u8::from(spec.signature == Signature::Rfc2544));
            assert_eq!(row.index as usize, spec.signature.index());
            assert_eq!(&row.bytes[..row.len as usize], spec.bytes);
            assert_eq!(row.offset as usize, spec.offset);
        }
        let unused = &cfg.signatures[SIGNATURES.len()..];
        assert!(unused.iter().all(|row| row.enabled == 0 && row.len == 0));
    }

    #[test]
    fn stamp_is_a_flag_and_a_port_not_a_row() {
        let mut filter = reference_filter();
        filter.signatures = SignatureSet::from(vec![Signature::Stamp]);
        filter.stamp_port = 8620;
        let cfg = program_config(&filter, Reflection::AfXdp).unwrap();
        assert_eq!((cfg.stamp_enabled, cfg.stamp_port), (1, 8620));
        assert!(cfg.signatures.iter().all(|row| row.enabled == 0));
        let cfg = program_config(&reference_filter(), Reflection::AfXdp).unwrap();
        assert_eq!((cfg.stamp_enabled, cfg.stamp_port), (1, 862));
        assert!(cfg.signatures[..SIGNATURES.len()]
            .iter()
            .all(|row| row.enabled == 1));
    }

    #[test]
    fn in_kernel_reflection_swaps_what_the_mode_says() {
        let swaps = |mode| {
            let cfg = program_config(&reference_filter(), Reflection::InKernel(mode)).unwrap();
            assert_eq!(cfg.in_kernel, 1);
            assert_eq!(cfg.stamp_index as usize, Signature::Stamp.index());
            (cfg.swap_ip, cfg.swap_ports)
        };
        assert_eq!(swaps(Mode::Mac), (0, 0));
        assert_eq!(swaps(Mode::MacIp), (1, 0));
        assert_eq!(swaps(Mode::All), (1, 1));
    }

    #[test]
    fn any_unicast_and_no_oui() {
        let mut filter = reference_filter();
        filter.dst_mac = DstMacFilter::AnyUnicast;
        filter.src_oui = None;
        let cfg = program_config(&filter, Reflection::AfXdp).unwrap();
        assert_eq!((cfg.dst_mac_exact, cfg.src_oui_enabled), (0, 0));
    }
}
