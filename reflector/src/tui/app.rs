//! Dashboard state that does not depend on the terminal: what is shown (live, or frozen
//! while paused), the sparklines' history, and the keys' effect on both.

use super::keys::Action;
use ratatui::Frame;
use std::collections::VecDeque;

/// Samples the sparklines keep: five minutes at the default one-second interval.
pub const HISTORY: usize = 300;

/// What one dashboard shows (the reflector's or the probe's): drawn from its state,
/// which the keys reset and re-sort.
pub trait View: Clone {
    /// Draw the whole screen; `paused` is shown in the header.
    fn render(&self, frame: &mut Frame, paused: bool);
    /// Start the "since reset" counts and the sparklines again from the latest sample.
    fn reset(&mut self);
    /// Sort the streams table by the next key.
    fn next_sort(&mut self);
}

/// A view and the keys' effect on it. While paused, the screen keeps the copy taken
/// when the pause began; the live view still takes every sample.
pub struct App<V> {
    live: V,
    frozen: Option<V>,
}

impl<V: View> App<V> {
    pub fn new(view: V) -> Self {
        App {
            live: view,
            frozen: None,
        }
    }

    /// The view that takes new samples.
    pub fn live_mut(&mut self) -> &mut V {
        &mut self.live
    }

    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    /// Apply a key's action; true when it asks to quit.
    pub fn act(&mut self, action: Action) -> bool {
        match action {
            Action::Quit => return true,
            Action::Pause => {
                self.frozen = match self.frozen {
                    Some(_) => None,
                    None => Some(self.live.clone()),
                }
            }
            Action::Reset => {
                self.live.reset();
                // A reset is meant to be seen: it ends a pause.
                self.frozen = None;
            }
            Action::Sort => {
                self.live.next_sort();
                if let Some(frozen) = &mut self.frozen {
                    frozen.next_sort();
                }
            }
        }
        false
    }

    pub fn render(&self, frame: &mut Frame) {
        self.frozen
            .as_ref()
            .unwrap_or(&self.live)
            .render(frame, self.paused());
    }
}

/// The last [`HISTORY`] values of one rate, oldest first, for a sparkline.
#[derive(Clone, Debug, Default)]
pub struct History {
    values: VecDeque<u64>,
}

impl History {
    pub fn push(&mut self, value: f64) {
        if self.values.len() == HISTORY {
            self.values.pop_front();
        }
        // Rates are non-negative; a sparkline needs integers.
        self.values.push_back(value.max(0.0).round() as u64);
    }

    /// The newest `width` values, oldest first (a sparkline draws from the left).
    pub fn last(&self, width: usize) -> Vec<u64> {
        let skip = self.values.len().saturating_sub(width);
        self.values.iter().skip(skip).copied().collect()
    }

    pub fn clear(&mut self) {
        self.values.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_newest_values_in_order() {
        let mut h = History::default();
        for v in 0..(HISTORY as u64 + 5) {
            h.push(v as f64);
        }
        assert_eq!(h.last(3), vec![302, 303, 304]);
        assert_eq!(h.last(usize::MAX).len(), HISTORY);
        assert_eq!(h.last(usize::MAX)[0], 5);
        h.clear();
        assert!(h.last(10).is_empty());
    }
}
