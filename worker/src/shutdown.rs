//! Graceful shutdown as a value handed to every task loop (not a global).
//!
//! The process keeps the [`ShutdownTrigger`]; loops hold a [`Shutdown`] and stop taking new tasks
//! once it fires. A task already running finishes (its report is published and it is acked), so
//! a SIGTERM never leaves half-acknowledged work; a `kill -9` is covered by redelivery instead.

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

pub fn shutdown_pair() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.sender.send(true);
    }
}

impl Shutdown {
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Completes once shutdown has been triggered (or its trigger dropped).
    pub async fn triggered(&mut self) {
        let _ = self.receiver.wait_for(|&stop| stop).await;
    }
}
