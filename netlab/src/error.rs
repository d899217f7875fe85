//! What can go wrong building or entering a lab, each with the way out.

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("lab name {0:?} must be 1 to 10 letters, digits or '-' (it prefixes interface names)")]
    BadName(String),
    #[error("cannot run `{command}`: {source} (a lab needs iproute2's `ip`: install iproute2)")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error(
        "`{command}` failed: {stderr} (building a lab needs root or CAP_NET_ADMIN and \
         CAP_SYS_ADMIN, and iproute2, ethtool and procps' sysctl installed)"
    )]
    Failed { command: String, stderr: String },
    #[error(
        "cannot enter network namespace {netns}: {source} (entering one needs root or \
         CAP_SYS_ADMIN, and the lab must still exist)"
    )]
    Enter {
        netns: String,
        source: std::io::Error,
    },
}
