//! What each key does on a dashboard.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// A request from the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Stop cleanly (`q`, Esc, or Ctrl-C, which raw mode delivers as a key, not SIGINT).
    Quit,
    /// Freeze the screen, or let it move again (`p`, space).
    Pause,
    /// Count the "since reset" columns and the sparklines from now (`r`).
    Reset,
    /// Sort the streams table by the next key (`s`).
    Sort,
}

/// The keys, as the reflector dashboard's help line shows them.
pub const HELP: &str = "q quit  p pause  r reset deltas  s sort streams";
/// The probe's dashboard has no streams to sort.
pub const PROBE_HELP: &str = "q quit  p pause  r reset deltas";

/// The action `key` asks for, if any. Key releases and repeats (reported by some
/// terminals) do nothing, so one press is one action.
pub fn action(key: &KeyEvent) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None;
    }
    match key.code {
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Some(Action::Quit),
        KeyCode::Char('q' | 'Q') | KeyCode::Esc => Some(Action::Quit),
        KeyCode::Char('p' | 'P' | ' ') => Some(Action::Pause),
        KeyCode::Char('r' | 'R') => Some(Action::Reset),
        KeyCode::Char('s' | 'S') => Some(Action::Sort),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_c_quits_but_plain_c_does_nothing() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(&ctrl_c), Some(Action::Quit));
        let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(action(&c), None);
        let q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(action(&q), Some(Action::Quit));
        let mut released = q;
        released.kind = KeyEventKind::Release;
        assert_eq!(action(&released), None);
    }
}
