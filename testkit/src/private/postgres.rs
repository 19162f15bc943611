//! A PostgreSQL cluster of a test's own (`initdb` in a temporary directory, `pg_ctl` on a free
//! loopback port, trust authentication, fsync off), run as the `postgres` user because the
//! server refuses to run as root. The machine's binaries are found under
//! `/usr/lib/postgresql/<version>/bin`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{free_port, run, wait_for_port};

pub struct PrivatePostgres {
    port: u16,
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// Creates the cluster and starts it; waits until it accepts connections.
    pub fn start() -> Self {
        let bin = binaries();
        let dir = tempfile::Builder::new()
            .prefix("mailfleet-postgres-")
            .tempdir()
            .expect("a directory for PostgreSQL");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("the cluster's directory is writable");
        let data = dir.path().join("data");
        run(
            as_postgres(&bin.join("initdb")).arg("-D").arg(&data).args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ]),
            "initdb",
        );
        let server = PrivatePostgres {
            port: free_port(),
            bin,
            data,
            _dir: dir,
        };
        server.pg_ctl_start();
        server
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres` (the cluster is the test's own).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (`-m immediate`: connections cut, no clean shutdown, crash
    /// recovery at the next start) and starts it again on the same port.
    pub fn restart(&self) {
        self.pg_ctl_stop("immediate");
        wait_for_port(self.port, false, Duration::from_secs(20), "PostgreSQL");
        self.pg_ctl_start();
    }

    fn pg_ctl_start(&self) {
        let socket_dir = self.data.parent().expect("the data dir has a parent");
        run(
            as_postgres(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(socket_dir.join("postgres.log"))
                .arg("-o")
                .arg(format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                    self.port,
                    socket_dir.display()
                ))
                .args(["-w", "start"]),
            "pg_ctl start",
        );
        wait_for_port(self.port, true, Duration::from_secs(30), "PostgreSQL");
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w", "stop"])
            .output();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.pg_ctl_stop("immediate");
    }
}

/// `program` run as the `postgres` user when we are root (PostgreSQL refuses root).
fn as_postgres(program: &Path) -> Command {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `pg_ctl`.
fn binaries() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql")
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version with pg_ctl")
}
