//! The demo's virtual lab: two network namespaces joined by a veth pair, the reflector
//! on one end and the test head on the other, so the whole path (XDP included) runs
//! on one machine without a NIC or cable.
//!
//! ```text
//!   netns NAME-r                 netns NAME-h
//!   [NAME-r] <----- veth -----> [NAME-h]
//!   reflector  192.0.2.2         192.0.2.1  reflector probe, STAMP sender
//! ```

use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("lab name {0:?} must be 1 to 10 letters, digits or '-' (it prefixes interface names)")]
    BadName(String),
    #[error("cannot run `ip {args}`: {source} (is iproute2 installed?)")]
    Spawn {
        args: String,
        source: std::io::Error,
    },
    #[error("`ip {args}` failed: {stderr} (building a lab needs root or CAP_NET_ADMIN)")]
    Failed { args: String, stderr: String },
}

/// Fixed MACs make the demo reproducible. The test head's is in the NetAlly OUI so
/// the reflector's default source-OUI filter accepts its frames; the reflector's is a
/// locally administered address.
pub const REFLECTOR_MAC: &str = "02:52:46:4c:00:01";
pub const HEAD_MAC: &str = "00:c0:17:52:46:02";
/// Addresses for the STAMP sender, which uses the head's IP stack.
pub const REFLECTOR_IP: &str = "192.0.2.2";
pub const HEAD_IP: &str = "192.0.2.1";

/// A built lab; removed again when dropped.
#[derive(Debug)]
pub struct Lab {
    pub name: String,
    pub reflector_netns: String,
    pub reflector_if: String,
    pub head_netns: String,
    pub head_if: String,
}

impl Lab {
    /// Build the lab, first removing any stale one of the same name (left by a demo
    /// that was killed before it could clean up).
    pub fn create(name: &str) -> Result<Lab, LabError> {
        let valid = !name.is_empty()
            && name.len() <= 10
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(LabError::BadName(name.into()));
        }
        let lab = Lab {
            name: name.into(),
            reflector_netns: format!("{name}-r"),
            reflector_if: format!("{name}-r"),
            head_netns: format!("{name}-h"),
            head_if: format!("{name}-h"),
        };
        if Lab::exists(name) {
            tracing::info!("removing the stale lab {name} a previous run left behind");
            lab.remove();
        }
        lab.build()?;
        Ok(lab)
    }

    fn build(&self) -> Result<(), LabError> {
        let (r_ns, r_if, h_ns, h_if) = (
            &self.reflector_netns,
            &self.reflector_if,
            &self.head_netns,
            &self.head_if,
        );
        ip(&["netns", "add", r_ns])?;
        ip(&["netns", "add", h_ns])?;
        // Create both ends inside their namespaces directly: nothing ever appears in the
        // host namespace, so a crash cannot leave a stray interface there.
        ip(&[
            "link",
            "add",
            r_if,
            "netns",
            r_ns,
            "address",
            REFLECTOR_MAC,
            "type",
            "veth",
            "peer",
            "name",
            h_if,
            "netns",
            h_ns,
            "address",
            HEAD_MAC,
        ])?;
        for (ns, iface, ip_addr) in [(r_ns, r_if, REFLECTOR_IP), (h_ns, h_if, HEAD_IP)] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{ip_addr}/24"),
                "dev",
                iface,
            ])?;
            // IPv6 would have the kernel send router solicitations and DAD probes,
            // which the reflector would count as rejected frames.
            ip(&[
                "netns",
                "exec",
                ns,
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv6.conf.{iface}.disable_ipv6=1"),
            ])?;
            ip(&["-n", ns, "link", "set", "dev", iface, "up"])?;
            ip(&["-n", ns, "link", "set", "dev", "lo", "up"])?;
        }
        // veth would hand the STAMP sender's packets over with only a partial UDP
        // checksum (a NIC completes it on the wire); make the head compute it.
        ip(&["netns", "exec", h_ns, "ethtool", "-K", h_if, "tx", "off"])?;
        Ok(())
    }

    /// Whether both namespaces of the lab exist.
    pub fn exists(name: &str) -> bool {
        let listed = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        let listed = listed.unwrap_or_default();
        let has = |ns: String| {
            listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns.as_str()))
        };
        has(format!("{name}-r")) || has(format!("{name}-h"))
    }

    /// Delete the namespaces (which deletes the veth pair with them). Idempotent.
    pub fn remove(&self) {
        for ns in [&self.reflector_netns, &self.head_netns] {
            // Missing is fine: that is the state we want.
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.remove();
    }
}

fn ip(args: &[&str]) -> Result<(), LabError> {
    let joined = args.join(" ");
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| LabError::Spawn {
            args: joined.clone(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(LabError::Failed {
            args: joined,
            stderr,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_overflow_interface_names_are_refused() {
        for bad in ["", "much-too-long", "a b", "a/b"] {
            assert!(
                matches!(Lab::create(bad), Err(LabError::BadName(_))),
                "{bad:?}"
            );
        }
    }
}
