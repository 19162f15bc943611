//! A `redis-server` of a test's own, with no persistence: a restart brings it back empty, as a
//! failover to a replica that had not synced (or a Redis without AOF/RDB) does.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for_port};

pub struct PrivateRedis {
    port: u16,
    process: Child,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// Starts `redis-server` on a free loopback port and waits until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mailfleet-redis-")
            .tempdir()
            .expect("a directory for Redis");
        let port = free_port();
        let process = spawn(port, dir.path());
        wait_for_port(port, true, Duration::from_secs(20), "redis-server");
        PrivateRedis { port, process, dir }
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: connections drop, nothing is saved) and starts it again on
    /// the same port with nothing in it.
    pub fn restart_empty(&mut self) {
        self.stop();
        self.process = spawn(self.port, self.dir.path());
        wait_for_port(self.port, true, Duration::from_secs(20), "redis-server");
    }

    fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        wait_for_port(self.port, false, Duration::from_secs(10), "redis-server");
    }
}

fn spawn(port: u16, dir: &Path) -> Child {
    Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs (deploy/dev/install-deps.sh installs it)")
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
