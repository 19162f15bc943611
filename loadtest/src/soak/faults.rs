//! The faults a soak round runs under, struck at random moments while the coordinator runs:
//! a worker `kill -9`ed (a fresh one takes its place), the private Redis restarted empty, the
//! private RabbitMQ node restarted (`stop_app`/`start_app`); and, all along, the source reached
//! through testkit's fault proxy, which cuts some connections mid-transfer and greets some with
//! "busy".

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use mailfleet_testkit::fault_proxy::{Action, FaultProxy};
use mailfleet_testkit::private::{PrivateRabbitMq, PrivateRedis};
use rand::Rng;

use super::{FleetSettings, SoakArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    KillWorker,
    RestartRedisEmpty,
    RestartRabbitMq,
    /// A source connection cut or greeted "busy" by the proxy.
    SourceConnection,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [
        FaultKind::KillWorker,
        FaultKind::RestartRedisEmpty,
        FaultKind::RestartRabbitMq,
        FaultKind::SourceConnection,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillWorker => "workers killed",
            FaultKind::RestartRedisEmpty => "Redis restarts (empty)",
            FaultKind::RestartRabbitMq => "RabbitMQ restarts",
            FaultKind::SourceConnection => "source connections cut or busy",
        }
    }
}

/// How many faults of each kind struck.
#[derive(Debug, Default, Clone)]
pub struct FaultLog {
    counts: [usize; 4],
}

impl FaultLog {
    pub fn count(&self, kind: FaultKind) -> usize {
        self.counts[kind as usize]
    }

    fn add(&mut self, kind: FaultKind) {
        self.counts[kind as usize] += 1;
    }
}

pub struct Faults {
    binary: PathBuf,
    settings: FleetSettings,
    workers: Vec<Child>,
    worker_count: usize,
    redis: PrivateRedis,
    broker: PrivateRabbitMq,
    proxy: FaultProxy,
    /// Whether the proxy injects faults now (off while a round is resumed).
    proxy_faults: Arc<AtomicBool>,
    /// Source connections the proxy has cut or greeted "busy" so far.
    proxy_struck: Arc<AtomicUsize>,
    mean_gap: Duration,
    log: FaultLog,
}

impl Faults {
    /// Starts the workers and the source's fault proxy (faults off until a round runs).
    pub async fn start(
        binary: &Path,
        fleet: &FleetSettings,
        source_port: u16,
        redis: PrivateRedis,
        broker: PrivateRabbitMq,
        args: &SoakArgs,
    ) -> anyhow::Result<Self> {
        let proxy_faults = Arc::new(AtomicBool::new(false));
        let proxy_struck = Arc::new(AtomicUsize::new(0));
        let (on, struck) = (proxy_faults.clone(), proxy_struck.clone());
        let proxy = FaultProxy::start(([127, 0, 0, 1], source_port).into(), move |_| {
            if !on.load(Ordering::SeqCst) {
                return Action::Pass;
            }
            let mut rng = rand::rng();
            let action = match rng.random_range(0..100) {
                0..5 => Action::BusyGreeting,
                5..12 => Action::CutAfter(rng.random_range(2_000..400_000)),
                12..16 => Action::CutBeforeFetchResponse(rng.random_range(2_000..400_000)),
                _ => Action::Pass,
            };
            if action != Action::Pass {
                struck.fetch_add(1, Ordering::SeqCst);
            }
            action
        })
        .await?;
        let mut faults = Faults {
            binary: binary.to_owned(),
            settings: fleet.clone(),
            workers: Vec::new(),
            worker_count: args.workers,
            redis,
            broker,
            proxy,
            proxy_faults,
            proxy_struck,
            mean_gap: Duration::from_secs(args.fault_every.max(1)),
            log: FaultLog::default(),
        };
        for _ in 0..args.workers {
            faults.spawn_worker()?;
        }
        Ok(faults)
    }

    /// The source as the coordinator reaches it: through the proxy.
    pub fn source_url(&self) -> String {
        self.proxy.url()
    }

    /// What struck so far.
    pub fn log(&self) -> FaultLog {
        let mut log = self.log.clone();
        log.counts[FaultKind::SourceConnection as usize] = self.proxy_struck.load(Ordering::SeqCst);
        log
    }

    fn spawn_worker(&mut self) -> std::io::Result<()> {
        let worker = self
            .settings
            .command(&self.binary)
            .args(["worker", "--concurrency", "4"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.workers.push(worker);
        Ok(())
    }

    /// Strikes random faults until `coordinator` exits; returns its exit code. Source
    /// connection faults are on only meanwhile.
    pub async fn strike_until_exit(&mut self, coordinator: Child) -> anyhow::Result<Option<i32>> {
        let mut coordinator = coordinator;
        self.proxy_faults.store(true, Ordering::SeqCst);
        let code = loop {
            let gap = rand::rng().random_range(self.mean_gap / 2..=self.mean_gap * 3 / 2);
            let deadline = tokio::time::Instant::now() + gap;
            while tokio::time::Instant::now() < deadline && coordinator.try_wait()?.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if let Some(status) = coordinator.try_wait()? {
                break status.code();
            }
            self.strike_one()?;
        };
        self.proxy_faults.store(false, Ordering::SeqCst);
        // Workers killed in this round are replaced before the next.
        while self.workers.len() < self.worker_count {
            self.spawn_worker()?;
        }
        Ok(code)
    }

    fn strike_one(&mut self) -> anyhow::Result<()> {
        let kind = FaultKind::ALL[rand::rng().random_range(0..3)];
        eprintln!("  fault: {}", kind.name());
        match kind {
            FaultKind::KillWorker => {
                if !self.workers.is_empty() {
                    let index = rand::rng().random_range(0..self.workers.len());
                    let mut worker = self.workers.swap_remove(index);
                    // SIGKILL; reaped whatever kill says (it fails only if the worker had exited).
                    let killed = worker.kill();
                    worker.wait()?;
                    killed?;
                    self.spawn_worker()?;
                }
            }
            FaultKind::RestartRedisEmpty => {
                tokio::task::block_in_place(|| self.redis.restart_empty());
            }
            FaultKind::RestartRabbitMq => {
                tokio::task::block_in_place(|| self.broker.restart_app());
            }
            FaultKind::SourceConnection => {}
        }
        self.log.add(kind);
        Ok(())
    }

    /// Stops the workers (SIGTERM, then waits); returns what struck.
    pub fn stop(mut self) -> FaultLog {
        for worker in &mut self.workers {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &worker.id().to_string()])
                .status();
            let _ = worker.wait();
        }
        self.log()
    }
}

impl std::fmt::Display for FaultLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = FaultKind::ALL
            .iter()
            .map(|kind| format!("{} {}", kind.name(), self.count(*kind)))
            .collect();
        f.write_str(&parts.join(", "))
    }
}
