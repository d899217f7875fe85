//! The terminal dashboards (`--tui`) of the reflector and the probe, drawn with
//! ratatui on the thread that already prints the statistics: the workers (and the
//! probe's sender and receiver) never draw, wait for a key or touch the terminal.
//!
//! A dashboard only shows numbers that also reach the other outputs: the reflector's
//! is fed the [`settings::events::Event`]s the `--json` lines print, the probe's the
//! [`settings::events::ProbeReport`]s its final report is made of.

mod app;
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

use ratatui::crossterm::event::{self, Event as TermEvent};
use std::time::{Duration, Instant};
use terminal::Screen;

/// A view on the terminal, redrawn when it changes, a key is pressed or the terminal is
/// resized. Dropping it gives the terminal back.
pub struct Dashboard<V: View> {
    screen: Screen,
    app: App<V>,
    dirty: bool,
}

/// The reflector's dashboard.
pub type ReflectorDashboard = Dashboard<ReflectorView>;

impl<V: View> Dashboard<V> {
    /// Take the terminal over and draw `view`.
    pub fn start(view: V) -> std::io::Result<Self> {
        let mut dashboard = Dashboard {
            screen: Screen::enter()?,
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
            if !event::poll(left)? {
                return Ok(false);
            }
            match event::read()? {
                TermEvent::Key(key) => {
                    if let Some(action) = keys::action(&key) {
                        if self.app.act(action) {
                            return Ok(true);
                        }
                        self.dirty = true;
                    }
                }
                // Terminal::draw adopts the new size by itself.
                TermEvent::Resize(..) => self.dirty = true,
                _ => {}
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
