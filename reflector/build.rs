//! Exports `REFLECTOR_GIT_COMMIT` (the short commit hash `--version` and the
//! `reflector_build_info` metric print) to the crate being compiled. The control plane's
//! package uses this same file (`build = "../reflector/build.rs"`).
//!
//! Set `REFLECTOR_GIT_COMMIT` in the environment to override it (e.g. building from a
//! source tarball); outside a git checkout, without the variable, it is "unknown".

use std::process::Command;

const VAR: &str = "REFLECTOR_GIT_COMMIT";

fn main() {
    println!("cargo:rerun-if-env-changed={VAR}");
    let commit = std::env::var(VAR)
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env={VAR}={commit}");
    // Rebuild when HEAD moves: HEAD itself (checkout) and the branch it names (commit).
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        // A missing file would make cargo rerun this script on every build.
        let path = git(&["rev-parse", "--git-path", &name]);
        if let Some(path) = path.filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// `git ARGS` run in the package's directory: its trimmed output, or None when git or
/// the repository is missing.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}
