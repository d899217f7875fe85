//! Lab names: the rules the demo's `--lab` follows, and namespace names of their own
//! for tests that build labs at the same time.

use crate::{remove_netns, LabError, NETNS_DIR};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// Interface names hold at most 15 bytes; `NAME-h` stays within them.
const MAX_NAME_LEN: usize = 10;

pub(crate) fn validate(name: &str) -> Result<(), LabError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(LabError::BadName(name.into()))
    }
}

/// `NAME-PID-N`, where N counts this process's labs.
pub(crate) fn unique_prefix(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{name}-{}-{n}", std::process::id())
}

/// Delete the namespaces of `name`'s unique labs whose process is gone: those of
/// tests killed (Ctrl-C, a timeout) before their guards could run.
pub(crate) fn remove_orphans(name: &str) {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let netns = entry.file_name();
        let Some(netns) = netns.to_str() else {
            continue;
        };
        let orphaned = owner(name, netns)
            .is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists());
        if orphaned {
            remove_netns(netns);
        }
    }
}

/// The PID in `NAME-PID-N-h` or `NAME-PID-N-r`, if `netns` has that form.
fn owner(name: &str, netns: &str) -> Option<u32> {
    let rest = netns.strip_prefix(name)?.strip_prefix('-')?;
    let mut parts = rest.split('-');
    let (pid, n, side) = (parts.next()?, parts.next()?, parts.next()?);
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unique = parts.next().is_none() && number(pid) && number(n) && matches!(side, "h" | "r");
    unique.then(|| pid.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_overflow_interface_names_are_refused() {
        for bad in ["", "much-too-long", "a b", "a/b", "é"] {
            assert!(
                matches!(validate(bad), Err(LabError::BadName(_))),
                "{bad:?}"
            );
        }
        for good in ["a", "rfl-demo", "0123456789"] {
            assert!(validate(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn unique_names_differ_per_call_and_name_their_process() {
        let (a, b) = (unique_prefix("t"), unique_prefix("t"));
        assert_ne!(a, b);
        assert_eq!(owner("t", &format!("{a}-h")), Some(std::process::id()));
    }

    #[test]
    fn only_unique_labs_of_the_same_name_have_an_owner() {
        assert_eq!(owner("e2e", "e2e-4711-3-r"), Some(4711));
        assert_eq!(owner("a-1", "a-1-4711-0-h"), Some(4711));
        for other in [
            "e2e-h",         // a lab built with `create`
            "e2e-4711-3",    // no side
            "e2e-4711-3-x",  // not a side
            "e2e-x-3-h",     // not a PID
            "e2ee-4711-3-h", // another name
            "e2e-4711-3-h-r",
        ] {
            assert_eq!(owner("e2e", other), None, "{other}");
        }
        // "a" must not claim the labs of "a-1".
        assert_eq!(owner("a", "a-1-4711-0-h"), None);
    }
}
