//! The terminal dashboards (`--tui`) of the reflector and the probe, drawn with
//! ratatui on the thread that already prints the statistics: the workers (and the
//! probe's sender and receiver) never draw, wait for a key or touch the terminal.
//!
//! A dashboard only shows numbers that also reach the other outputs: the reflector's
//! is fed the [`settings::events::Event`]s the `--json` lines print, the probe's the
//! [`settings::events::ProbeReport`]s its final report is made of.

mod app;
mod input;
mod keys;
mod probe;
mod reflector;
mod terminal;
mod widgets;

pub use app::{App, History, View, HISTORY};
pub use keys::{action, Action, HELP, PROBE_HELP};
#[cfg(target_os = "linux")]
pub use probe::watch as watch_probe;
pub use probe::{ProbeDashboard, ProbeView};
pub use reflector::{ReflectorView, StreamSort};
pub use terminal::{available, log_writer, LogWriter};

use input::TerminalInput;
use std::time::{Duration, Instant};
use terminal::Screen;

/// A view on the terminal, redrawn when it changes, a key is pressed or the terminal is
/// resized. Dropping it gives the terminal back.
pub struct Dashboard<V: View> {
    screen: Screen,
    input: TerminalInput,
    app: App<V>,
    dirty: bool,
}

/// The reflector's dashboard.
pub type ReflectorDashboard = Dashboard<ReflectorView>;

impl<V: View> Dashboard<V> {
    /// Take the terminal over and draw `view`.
    pub fn start(view: V) -> std::io::Result<Self> {
        let screen = Screen::enter()?;
        let mut dashboard = Dashboard {
            screen,
            input: TerminalInput::open()?,
            app: App::new(view),
            dirty: true,
        };
        dashboard.draw()?;
        Ok(dashboard)
    }

    /// Change the live view; it is redrawn while waiting for keys.
    pub fn update(&mut self, change: impl FnOnce(&mut V)) {
        change(self.app.live_mut());
        self.dirty = true;
    }

    /// Handle keys and resizes for up to `timeout`, redrawing as needed; true when the
    /// user asked to quit.
    pub fn wait(&mut self, timeout: Duration) -> std::io::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.dirty {
                self.draw()?;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(input) = self.input.wait(left)? else {
                return Ok(false);
            };
            if input.resized {
                // Clear and draw everything again: the terminal's cells are no longer
                // what was drawn (tmux crops them, and restores old ones when it grows
                // again), even when the size ends up as before. Not `Terminal::clear`:
                // it asks the terminal where the cursor is, and crossterm's reader of
                // the answer is the one that loses input.
                let size = self.screen.terminal.size()?;
                self.screen.terminal.resize(size.into())?;
                self.dirty = true;
            }
            for action in input.keys.iter().filter_map(keys::action) {
                if self.app.act(action) {
                    return Ok(true);
                }
                self.dirty = true;
            }
        }
    }

    fn draw(&mut self) -> std::io::Result<()> {
        let app = &self.app;
        self.screen.terminal.draw(|frame| app.render(frame))?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
