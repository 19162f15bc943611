//! Reports back to the pass that published their tasks. Passes running at once share one queue
//! (and its reports); each report names its pass ([`Report::pass`]), so one reader routes them.
//! Reports of a pass no longer running (tasks an interrupted pass left behind) are dropped, as
//! its collector would ignore them anyway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mailfleet_shared::messages::Report;
use mailfleet_shared::queue::TaskQueue;
use tokio::sync::mpsc;

use crate::error::CliError;

#[derive(Default)]
struct Routes {
    passes: HashMap<String, mpsc::UnboundedSender<Report>>,
    /// Why the reports stopped, when the queue failed (the passes say it).
    failure: Option<String>,
}

#[derive(Clone)]
pub struct ReportRouter {
    routes: Arc<Mutex<Routes>>,
}

impl ReportRouter {
    /// Reads `queue`'s reports until it is closed and drained (or fails).
    pub fn start(queue: Arc<dyn TaskQueue>) -> Self {
        let routes = Arc::new(Mutex::new(Routes::default()));
        let reader = routes.clone();
        tokio::spawn(async move {
            let ended = loop {
                match queue.next_report().await {
                    Ok(Some(report)) => {
                        let routes = lock(&reader);
                        if let Some(pass) = routes.passes.get(report.pass()) {
                            // A pass that just ended has dropped its receiver: nothing to tell.
                            let _ = pass.send(report);
                        }
                    }
                    Ok(None) => break None,
                    Err(error) => break Some(error.to_string()),
                }
            };
            let mut routes = lock(&reader);
            routes.failure = ended;
            // Receivers see the end once their sender is gone.
            routes.passes.clear();
        });
        ReportRouter { routes }
    }

    /// The reports of `pass` from now on, until the returned value is dropped.
    pub fn route(&self, pass: &str) -> PassReports {
        let (sender, receiver) = mpsc::unbounded_channel();
        lock(&self.routes).passes.insert(pass.to_owned(), sender);
        PassReports {
            router: self.clone(),
            pass: pass.to_owned(),
            receiver,
        }
    }
}

fn lock(routes: &Mutex<Routes>) -> std::sync::MutexGuard<'_, Routes> {
    routes.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct PassReports {
    router: ReportRouter,
    pass: String,
    receiver: mpsc::UnboundedReceiver<Report>,
}

impl PassReports {
    /// The next report of the pass; `Ok(None)` once the queue is closed and drained.
    pub async fn next(&mut self) -> Result<Option<Report>, CliError> {
        match self.receiver.recv().await {
            Some(report) => Ok(Some(report)),
            None => match lock(&self.router.routes).failure.clone() {
                Some(failure) => Err(CliError::failed("the task queue", failure)),
                None => Ok(None),
            },
        }
    }
}

impl Drop for PassReports {
    fn drop(&mut self) {
        lock(&self.router.routes).passes.remove(&self.pass);
    }
}
