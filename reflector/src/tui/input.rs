//! The dashboards' input: keys from the terminal and its resizes (SIGWINCH), waited
//! for with select(2), which reports unread input every time it is asked.
//!
//! Not crossterm's event reader: it waits with edge-triggered epoll (mio) and, when a
//! resize and a key arrive in one wakeup, returns the resize and drops the note that
//! the terminal has input. The key then stays unread until the next one is typed, so a
//! `q` right after resizing the window did not quit (tests/tests/tui.rs). select(2)
//! rather than poll(2): macOS's poll does not support devices, a terminal among them.

use nix::sys::select::{select, FdSet};
use nix::sys::time::{TimeVal, TimeValLike};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use signal_hook::consts::SIGWINCH;
use signal_hook::SigId;
use std::fs::File;
use std::io::{ErrorKind, IsTerminal, Read};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// What arrived while waiting.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Input {
    pub keys: Vec<KeyEvent>,
    pub resized: bool,
}

/// The terminal's input and a pipe the SIGWINCH handler writes to.
pub struct TerminalInput {
    tty: File,
    resizes: UnixStream,
    handler: SigId,
    buffer: [u8; 1024],
}

impl TerminalInput {
    /// The terminal the dashboard draws on: stdin if it is one, else the controlling
    /// terminal (as crossterm's raw mode picks it).
    pub fn open() -> std::io::Result<TerminalInput> {
        let stdin = std::io::stdin();
        let tty = if stdin.is_terminal() {
            File::from(stdin.as_fd().try_clone_to_owned()?)
        } else {
            File::open("/dev/tty")?
        };
        let (resizes, handler_end) = UnixStream::pair()?;
        resizes.set_nonblocking(true)?;
        // The handler writes without blocking; a full pipe already says "resized".
        handler_end.set_nonblocking(true)?;
        let handler = signal_hook::low_level::pipe::register(SIGWINCH, handler_end)?;
        Ok(TerminalInput {
            tty,
            resizes,
            handler,
            buffer: [0; 1024],
        })
    }

    /// Wait up to `timeout` for keys or a resize; `None` when nothing came.
    pub fn wait(&mut self, timeout: Duration) -> std::io::Result<Option<Input>> {
        let deadline = Instant::now() + timeout;
        let (tty, resized) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut timeout =
                TimeVal::microseconds(left.as_micros().try_into().unwrap_or(i64::MAX));
            // Readable also means hung up; the read then says so.
            let mut ready = FdSet::new();
            ready.insert(self.tty.as_fd());
            ready.insert(self.resizes.as_fd());
            match select(None, &mut ready, None, None, &mut timeout) {
                Ok(0) => return Ok(None),
                Ok(_) => {
                    break (
                        ready.contains(self.tty.as_fd()),
                        ready.contains(self.resizes.as_fd()),
                    )
                }
                // SIGWINCH (or another handled signal) landed on this thread.
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        // Both, when both are ready: nothing is left for a later wakeup to report.
        let mut input = Input::default();
        if resized {
            self.drain_resizes()?;
            input.resized = true;
        }
        if tty {
            let n = self.tty.read(&mut self.buffer)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the terminal closed; run without --tui to keep running without one",
                ));
            }
            decode(&self.buffer[..n], &mut input.keys);
        }
        Ok(Some(input))
    }

    fn drain_resizes(&mut self) -> std::io::Result<()> {
        let mut bytes = [0u8; 64];
        loop {
            match self.resizes.read(&mut bytes) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for TerminalInput {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.handler);
    }
}

/// The keys in one read of a raw-mode terminal. Only what the dashboards use is told
/// apart: printable ASCII, Ctrl-C (raw mode delivers it as a byte, not SIGINT), and
/// Esc. Esc is a lone ESC byte; an ESC followed by more in the same read starts an
/// escape sequence (an arrow key, a function key, Alt with a key), which is skipped.
fn decode(bytes: &[u8], keys: &mut Vec<KeyEvent>) {
    let mut rest = bytes;
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        match byte {
            0x1b if rest.is_empty() => keys.push(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
            0x1b => rest = skip_escape(rest),
            0x03 => keys.push(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            b' '..=b'~' => keys.push(KeyEvent::new(
                KeyCode::Char(char::from(byte)),
                KeyModifiers::NONE,
            )),
            // Other control bytes and non-ASCII characters: no dashboard key.
            _ => {}
        }
    }
}

/// What follows an escape sequence's ESC (`rest`, not empty): CSI (`[`, parameters,
/// then a final byte in `@`..=`~`), SS3 (`O` and one byte), or Alt and one byte.
fn skip_escape(rest: &[u8]) -> &[u8] {
    match rest {
        [b'[', sequence @ ..] => match sequence.iter().position(|b| (b'@'..=b'~').contains(b)) {
            Some(end) => &sequence[end + 1..],
            None => &[],
        },
        [b'O', _, after @ ..] => after,
        [_, after @ ..] => after,
        [] => rest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<KeyEvent> {
        let mut keys = Vec::new();
        decode(bytes, &mut keys);
        keys
    }

    fn char(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn every_key_of_one_read_is_decoded() {
        assert_eq!(keys(b"spq"), vec![char('s'), char('p'), char('q')]);
        assert_eq!(
            keys(b"\x03"),
            vec![KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)]
        );
        assert_eq!(
            keys(b"\x1b"),
            vec![KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)]
        );
    }

    #[test]
    fn escape_sequences_are_no_keys_and_no_esc() {
        // Arrow up (CSI and SS3 forms), F5, Alt-q, then a real `p`.
        assert_eq!(keys(b"\x1b[A\x1bOA\x1b[15~\x1bqp"), vec![char('p')]);
        // A sequence cut off at the end of the read is dropped, not taken for keys.
        assert_eq!(keys(b"\x1b[1;5"), vec![]);
        // Non-ASCII text is no key either.
        assert_eq!(keys("é".as_bytes()), vec![]);
    }
}
