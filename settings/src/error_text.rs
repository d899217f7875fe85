//! How both binaries talk to a person on stderr: one line for an error and its causes,
//! each cause said once, and colours only where a person reads them.
//!
//! Library errors often show their cause in their own message *and* return it from
//! `source()`, so a plain chain printer (`{:#}`) repeats it:
//! `cannot open x: libpcap error: y: libpcap error: y`. Both binaries print through this.

use std::error::Error;
use std::io::IsTerminal;

/// Colours in logs only for a person at a terminal: not in files, pipes or journald
/// (and never with `NO_COLOR` set, see no-color.org).
pub fn colour_logs() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `error: cause: cause…`, skipping every cause whose text the line already holds.
pub fn one_line(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let text = current.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = current.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;
    use std::fmt;

    #[derive(Debug)]
    struct Layer {
        text: String,
        cause: Option<Box<Layer>>,
    }

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.text)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.cause.as_deref().map(|c| c as _)
        }
    }

    fn chain(texts: &[&str]) -> Layer {
        texts
            .iter()
            .rev()
            .fold(None, |cause, text| {
                Some(Layer {
                    text: text.to_string(),
                    cause: cause.map(Box::new),
                })
            })
            .expect("at least one layer")
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let error = chain(&[
            "cannot open capture x.pcap: libpcap error: unknown file format",
            "libpcap error: unknown file format",
        ]);
        assert_eq!(
            one_line(&error),
            "cannot open capture x.pcap: libpcap error: unknown file format"
        );
    }

    #[test]
    fn causes_not_in_the_message_are_appended_in_order() {
        let error = chain(&["reflecting a into b", "cannot open a", "No such file"]);
        assert_eq!(
            one_line(&error),
            "reflecting a into b: cannot open a: No such file"
        );
    }
}
