//! Taking the terminal over for a dashboard and giving it back, and keeping log lines
//! off the screen meanwhile.

use ratatui::DefaultTerminal;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// Log output held back while a dashboard owns the terminal (`None`: write it through).
/// A line written to the terminal under the dashboard would scroll and garble it.
static HELD_LOGS: Mutex<Option<Vec<u8>>> = Mutex::new(None);

/// Whether a dashboard can run: stdout is a terminal (otherwise the line output is used).
pub fn available() -> bool {
    std::io::stdout().is_terminal()
}

/// Where the binary's log lines go: stderr, except while a dashboard is up, when they
/// are held and written out as soon as it is gone (and the latest is shown on it).
/// For `tracing_subscriber`'s `with_writer`.
pub fn log_writer() -> LogWriter {
    LogWriter
}

/// See [`log_writer`].
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match held().as_mut() {
            Some(held) => {
                held.extend_from_slice(bytes);
                Ok(bytes.len())
            }
            None => std::io::stderr().write(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn held() -> std::sync::MutexGuard<'static, Option<Vec<u8>>> {
    HELD_LOGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The last log line held back while the dashboard is up, without the colour codes a
/// terminal's logs carry (they would garble a cell-by-cell drawn screen).
pub fn last_held_log() -> Option<String> {
    let held = held();
    let text = String::from_utf8_lossy(held.as_deref()?);
    text.lines().last().map(without_escapes)
}

/// `line` without ANSI CSI sequences (ESC [ ... final letter).
fn without_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // Skip up to and including the sequence's final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The terminal in raw mode on the alternate screen. Dropping it (also while an error
/// returns early) restores the terminal, so the shell is never left in raw mode, and
/// writes out the log lines held meanwhile; ratatui's panic hook restores it on a panic.
pub struct Screen {
    pub terminal: DefaultTerminal,
}

impl Screen {
    pub fn enter() -> std::io::Result<Screen> {
        held().get_or_insert_with(Vec::new);
        match ratatui::try_init() {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                release_logs();
                Err(e)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if let Err(e) = ratatui::try_restore() {
            eprintln!("reflector: cannot restore the terminal ({e}); run `reset`");
        }
        release_logs();
    }
}

fn release_logs() {
    if let Some(logs) = held().take() {
        let _ = std::io::stderr().write_all(&logs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_are_taken_out_of_log_lines() {
        assert_eq!(
            without_escapes("\x1b[33m WARN\x1b[0m reflector::link: no carrier"),
            " WARN reflector::link: no carrier"
        );
    }
}
