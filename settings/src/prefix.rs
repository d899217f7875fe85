//! Reading `allow` entries: CIDR prefixes, with a message for each way of getting one
//! wrong.

use ipnet::IpNet;

/// A string that is not one CIDR prefix; says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} {why}")]
pub struct BadPrefix {
    pub given: String,
    why: String,
}

/// One prefix such as `192.0.2.0/24` or `2001:db8::/32`. Host bits after the prefix
/// length are accepted here and refused by [`crate::Settings::validate`], which can
/// name the entry.
pub fn parse_prefix(text: &str) -> Result<IpNet, BadPrefix> {
    let bad = |why: String| BadPrefix {
        given: text.to_owned(),
        why,
    };
    if text.contains(',') {
        return Err(bad(
            "holds several prefixes: give each as its own list item".into(),
        ));
    }
    if text.is_empty() {
        return Err(bad("is empty: give a prefix like 192.0.2.0/24".into()));
    }
    if text.trim() != text {
        return Err(bad("has spaces around it: remove them".into()));
    }
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        return Err(bad(format!(
            "has no prefix length: write {ip}/{bits} for this address alone"
        )));
    }
    text.parse()
        .map_err(|_| bad("is not a CIDR prefix like 192.0.2.0/24 or 2001:db8::/32".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mistake_gets_its_own_message() {
        let cases = [
            (
                "10.0.0.0/33",
                "\"10.0.0.0/33\" is not a CIDR prefix like 192.0.2.0/24 or 2001:db8::/32",
            ),
            ("example.com", "\"example.com\" is not a CIDR prefix"),
            (
                "192.0.2.7",
                "\"192.0.2.7\" has no prefix length: write 192.0.2.7/32 for this address alone",
            ),
            ("2001:db8::1", "write 2001:db8::1/128"),
            (
                "10.0.0.0/8,192.0.2.0/24",
                "holds several prefixes: give each as its own list item",
            ),
            ("", "\"\" is empty"),
            (" 10.0.0.0/8", "has spaces around it"),
        ];
        for (text, expected) in cases {
            let err = parse_prefix(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
        assert_eq!(
            parse_prefix("192.0.2.7/24").unwrap().to_string(),
            "192.0.2.7/24",
            "host bits are for validate() to refuse"
        );
    }
}
