//! `mailfleet serve` on a free loopback port over the benchmark's state, as an operator runs
//! it — except for `--rate-limit 0`: the benchmark sends far more than a person's 600
//! requests a minute with one token, and a 429 would measure the limiter, not the API.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::super::process::peak_rss_mib;
use super::setup::BenchState;

pub struct Serve {
    child: Child,
    pub base: String,
}

impl Serve {
    /// Starts the service and returns once `/healthz` answers.
    pub async fn start(binary: &Path, state: &BenchState) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = state
            .mailfleet(binary)
            .args(["serve", "--listen", &listen, "--rate-limit", "0"])
            .arg("--state-dir")
            .arg(&state.state_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting mailfleet serve")?;
        let mut serve = Serve {
            child,
            base: format!("http://{listen}"),
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = serve.child.try_wait()? {
                bail!("mailfleet serve exited at start ({status})");
            }
            let health = client.get(format!("{}/healthz", serve.base)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(serve);
            }
            if started.elapsed() > Duration::from_secs(60) {
                serve.stop();
                bail!("mailfleet serve did not answer on {listen} within a minute");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The service's peak resident set size so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        peak_rss_mib(self.child.id()).unwrap_or(f64::NAN)
    }

    /// SIGTERM, as systemd stops it, and waits for it.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) with our own child's pid, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}
