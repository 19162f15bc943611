//! One progress bar per running mailbox on a terminal (indicatif), fed by the worker.
//!
//! Bars draw to stderr and only on a terminal; with `--json` or a pipe nothing is drawn, so
//! stdout stays machine-readable.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mailfleet_worker::Progress;

pub struct TerminalProgress {
    bars: MultiProgress,
    by_user: Mutex<HashMap<String, ProgressBar>>,
}

impl TerminalProgress {
    pub fn new(enabled: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        TerminalProgress {
            bars: MultiProgress::with_draw_target(target),
            by_user: Mutex::default(),
        }
    }

    fn bar(&self, user: &str) -> ProgressBar {
        let mut bars = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        bars.entry(user.to_owned())
            .or_insert_with(|| {
                let bar = self.bars.add(ProgressBar::new(0));
                let style = ProgressStyle::with_template(
                    "{prefix:30!} {bar:30} {pos}/{len} messages {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar.set_prefix(user.to_owned());
                bar
            })
            .clone()
    }

    /// The user's bar stops and disappears; the summary at the end says how it went.
    ///
    /// Removed from the `MultiProgress` explicitly: a bar merely dropped becomes a "zombie" that
    /// indicatif reaps only when it draws, and with nothing drawn (`--json`, a pipe) every
    /// finished user's bar stayed, each later one costing a walk over them all (`bench scale`:
    /// CPU and memory per mailbox growing with the batch).
    pub fn finish(&self, user: &str) {
        let bar = self
            .by_user
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(user);
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
    }
}

impl Progress for TerminalProgress {
    fn discovered(&self, user: &str, messages: u64) {
        self.bar(user).inc_length(messages);
    }

    fn advanced(&self, user: &str, messages: u64) {
        self.bar(user).inc(messages);
    }
}
