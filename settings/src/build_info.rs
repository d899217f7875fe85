//! What `--version` says on both binaries: the version, the git commit they were built
//! from and the packet back ends the `reflector` of this platform has.

use crate::Backend;

/// The packet back ends of this platform's `reflector`, as `--backend` names them on
/// Linux (`auto` only chooses among them), `/dev/bpf` on macOS; pcap files everywhere.
pub fn back_ends() -> String {
    let live: Vec<&str> = if cfg!(target_os = "linux") {
        Backend::ALL
            .iter()
            .filter(|b| **b != Backend::Auto)
            .map(|b| b.name())
            .collect()
    } else {
        vec!["bpf"]
    };
    format!("{} (live), pcap (--read/--write)", live.join(", "))
}

/// The text after the program name in `--version`: `version` (the crate's), `commit`
/// (`REFLECTOR_GIT_COMMIT`, which the binaries' build script exports) and the back ends.
pub fn long_version(version: &str, commit: &str) -> String {
    format!("{version}\ncommit: {commit}\nback ends: {}", back_ends())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_names_commit_and_back_ends() {
        let text = long_version("1.2.3", "abc1234");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["1.2.3", "commit: abc1234"]);
        #[cfg(target_os = "linux")]
        assert_eq!(
            lines[2],
            "back ends: xdp, xdp-tx, af-packet (live), pcap (--read/--write)"
        );
    }
}
