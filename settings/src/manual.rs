//! Man pages and shell completions rendered from a binary's own clap command, so the
//! packages ship no hand-written copies. With [`RENDER_DOCS_ENV`] set to a directory,
//! either binary writes them there and exits (`scripts/package-*.sh` do this); nothing
//! on the command line, so neither the pages nor the completions show the hook.

use clap::Command;
use clap_complete::Shell;
use std::path::{Path, PathBuf};

/// The environment variable that asks a binary to render its docs into a directory.
pub const RENDER_DOCS_ENV: &str = "REFLECTOR_RENDER_DOCS";

/// The shells whose completions are rendered.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// If [`RENDER_DOCS_ENV`] is set, render the docs of `command()` into that directory
/// and return what was written (or why not); None when it is not set.
pub fn render_if_requested(
    command: impl FnOnce() -> Command,
) -> Option<std::io::Result<Vec<PathBuf>>> {
    let dir = std::env::var_os(RENDER_DOCS_ENV)?;
    Some(render(command(), Path::new(&dir)))
}

/// Write `dir/man/NAME.1` (and `NAME-SUB.1` per visible subcommand) and
/// `dir/completions/` for [`SHELLS`] (`NAME.bash`, `_NAME`, `NAME.fish`).
pub fn render(mut command: Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let (man, completions) = (dir.join("man"), dir.join("completions"));
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    clap_mangen::generate_to(command.clone(), &man)?;
    let name = command.get_name().to_string();
    let mut written = Vec::new();
    for shell in SHELLS {
        written.push(clap_complete::generate_to(
            shell,
            &mut command,
            &name,
            &completions,
        )?);
    }
    for page in std::fs::read_dir(&man)? {
        written.push(page?.path());
    }
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_completions_come_from_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let command = Command::new("tool")
            .about("Does a thing")
            .arg(clap::Arg::new("fast").long("fast").help("Go fast"))
            .subcommand(Command::new("sub").about("A part"))
            .subcommand(Command::new("secret").hide(true));
        let written = render(command, dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "completions/_tool",
                "completions/tool.bash",
                "completions/tool.fish",
                "man/tool-sub.1",
                "man/tool.1"
            ]
        );
        let page = std::fs::read_to_string(dir.path().join("man/tool.1")).unwrap();
        assert!(
            page.contains("Go fast") && page.contains("tool\\-sub(1)"),
            "{page}"
        );
    }
}
