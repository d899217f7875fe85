//! What a probe is asked to do: the body of `POST /api/v1/probes`, checked into
//! [`ProbeSettings`], and the `reflector probe` command line built from them.

use dataplane::{MacAddr, Signature};
use serde::{Deserialize, Serialize};

/// Longest a probe may run (a week); 0 means until stopped.
pub const MAX_DURATION_S: f64 = 7.0 * 86_400.0;
/// The socket engine's reach, with room: faster needs `reflector probe --engine fast`.
pub const MAX_RATE: u64 = 1_000_000;
/// Frames one run may send (the probe's own limit for a run without a count).
const MAX_FRAMES: f64 = (1u64 << 27) as f64;

/// A probe as a client describes it; everything but `interface` and `to` has a default.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProbeInput)]
pub struct ProbeForm {
    /// Interface to send from.
    pub interface: String,
    /// Network namespace the interface is in.
    #[serde(default)]
    pub netns: Option<String>,
    /// MAC address of the reflector's interface.
    pub to: String,
    /// Source MAC (default: the interface's); must be inside the reflector's OUI filter.
    #[serde(default)]
    pub src_mac: Option<String>,
    /// Frames per second (default 1000).
    #[serde(default)]
    pub rate: Option<u64>,
    /// Frame size on the wire, FCS included (64 to 9018; default the smallest that fits).
    #[serde(default)]
    pub size: Option<u16>,
    /// Test-frame signature (default PROBEOT).
    #[serde(default)]
    pub signature: Option<String>,
    /// Seconds to send for; 0 (the default) sends until stopped.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Id of the reflector the probe drives, so the dashboard shows them together.
    #[serde(default)]
    pub reflector: Option<String>,
    /// Start at once (default true).
    #[serde(default)]
    pub autostart: Option<bool>,
}

/// A checked probe: what `reflector probe` is run with.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProbeSettings {
    pub interface: String,
    pub netns: Option<String>,
    pub to: String,
    pub src_mac: Option<String>,
    pub rate: u64,
    pub size: Option<u16>,
    pub signature: String,
    pub duration_s: f64,
    pub reflector: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormError {
    #[error("interface must be an interface name (1 to 15 characters, no '/'), not {0:?}")]
    Interface(String),
    #[error("{field} must be a unicast MAC address like 02:52:45:46:4c:01, not {value:?}")]
    Mac { field: &'static str, value: String },
    #[error("rate must be 1 to {MAX_RATE} frames per second, not {0}")]
    Rate(u64),
    #[error("size must be 64 to 9018 bytes on the wire, not {0}")]
    Size(u16),
    #[error("{0}; for STAMP, run a STAMP session-sender instead")]
    Signature(String),
    #[error("duration_s must be 0 (until stopped) or up to {MAX_DURATION_S} seconds, not {0}")]
    Duration(f64),
    #[error("rate x duration_s is more than {MAX_FRAMES} frames; lower one of them")]
    TooManyFrames,
}

impl ProbeForm {
    pub fn autostart(&self) -> bool {
        self.autostart.unwrap_or(true)
    }

    pub fn validate(self) -> Result<ProbeSettings, FormError> {
        let interface_ok =
            (1..=15).contains(&self.interface.len()) && !self.interface.contains(['/', ' ', ':']);
        if !interface_ok {
            return Err(FormError::Interface(self.interface));
        }
        let to = unicast("to", &self.to)?;
        let src_mac = self
            .src_mac
            .as_deref()
            .map(|m| unicast("src_mac", m))
            .transpose()?;
        let rate = self.rate.unwrap_or(1000);
        if !(1..=MAX_RATE).contains(&rate) {
            return Err(FormError::Rate(rate));
        }
        if let Some(size) = self.size.filter(|s| !(64..=9018).contains(s)) {
            return Err(FormError::Size(size));
        }
        let signature: Signature = self
            .signature
            .as_deref()
            .unwrap_or("PROBEOT")
            .parse()
            .map_err(|e: dataplane::signature::UnknownSignature| {
                FormError::Signature(e.to_string())
            })?;
        if signature == Signature::Stamp {
            return Err(FormError::Signature("the probe does not send STAMP".into()));
        }
        let duration_s = self.duration_s.unwrap_or(0.0);
        if !(0.0..=MAX_DURATION_S).contains(&duration_s) {
            return Err(FormError::Duration(duration_s));
        }
        if rate as f64 * duration_s > MAX_FRAMES {
            return Err(FormError::TooManyFrames);
        }
        Ok(ProbeSettings {
            interface: self.interface,
            netns: self.netns.filter(|ns| !ns.is_empty()),
            to,
            src_mac,
            rate,
            size: self.size,
            signature: signature.name().to_owned(),
            duration_s,
            reflector: self.reflector,
        })
    }
}

fn unicast(field: &'static str, value: &str) -> Result<String, FormError> {
    match value.parse::<MacAddr>() {
        Ok(mac) if !mac.is_group() => Ok(mac.to_string()),
        _ => Err(FormError::Mac {
            field,
            value: value.to_owned(),
        }),
    }
}

impl ProbeSettings {
    /// `reflector probe ...`: JSON reports, the one so far every second.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "probe".to_owned(),
            self.interface.clone(),
            "--to".into(),
            self.to.clone(),
            "--rate".into(),
            self.rate.to_string(),
            "--signature".into(),
            self.signature.clone(),
            "--duration".into(),
            self.duration_s.to_string(),
            "--json".into(),
            "--interval".into(),
            "1".into(),
        ];
        if let Some(size) = self.size {
            args.extend(["--size".into(), size.to_string()]);
        }
        if let Some(mac) = &self.src_mac {
            args.extend(["--src-mac".into(), mac.clone()]);
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(extra: serde_json::Value) -> Result<ProbeSettings, String> {
        let mut body = serde_json::json!({"interface": "veth0", "to": "02:52:45:46:4c:01"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value::<ProbeForm>(body)
            .map_err(|e| e.to_string())?
            .validate()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_the_command_line() {
        let s = form(serde_json::json!({"size": 128, "signature": "rfc2544"})).unwrap();
        assert_eq!(
            s.args().join(" "),
            "probe veth0 --to 02:52:45:46:4c:01 --rate 1000 --signature RFC2544 \
             --duration 0 --json --interval 1 --size 128"
        );
    }

    #[test]
    fn bad_fields_are_named() {
        for (extra, expected) in [
            (
                serde_json::json!({"to": "ff:ff:ff:ff:ff:ff"}),
                "to must be a unicast MAC",
            ),
            (serde_json::json!({"rate": 0}), "rate must be 1 to"),
            (serde_json::json!({"size": 63}), "size must be 64 to 9018"),
            (
                serde_json::json!({"signature": "stamp"}),
                "STAMP session-sender",
            ),
            (serde_json::json!({"signature": "nope"}), "nope"),
            (
                serde_json::json!({"duration_s": -1.0}),
                "duration_s must be 0",
            ),
            (
                serde_json::json!({"rate": 1_000_000, "duration_s": 600_000.0}),
                "lower one",
            ),
            (serde_json::json!({"interface": "a/b"}), "interface must be"),
            (serde_json::json!({"speed": 1}), "unknown field `speed`"),
        ] {
            let error = form(extra.clone()).unwrap_err();
            assert!(error.contains(expected), "{extra}: {error}");
        }
    }
}
