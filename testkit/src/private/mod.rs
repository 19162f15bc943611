//! Private instances of the machine's infrastructure servers, started from its own binaries on
//! free loopback ports, each in a temporary directory of its own — so a test may stop, restart
//! or wipe them mid-run while other tests keep using the shared Redis, RabbitMQ and PostgreSQL.
//! Every instance is stopped and its directory removed when dropped.
//!
//! - [`PrivateRedis`]: `redis-server` without persistence; [`PrivateRedis::restart_empty`].
//! - [`PrivateRabbitMq`]: a RabbitMQ node of its own (own node name, ports, Mnesia and logs);
//!   [`PrivateRabbitMq::restart_app`] is `rabbitmqctl stop_app` + `start_app`.
//! - [`PrivatePostgres`]: `initdb` + `pg_ctl` as the `postgres` user; [`PrivatePostgres::restart`].
//! - [`SmallFilesystem`]: a size-limited tmpfs (needs root) that can be filled and freed.

mod filesystem;
mod postgres;
mod rabbitmq;
mod redis;

pub use filesystem::SmallFilesystem;
pub use postgres::PrivatePostgres;
pub use rabbitmq::PrivateRabbitMq;
pub use redis::PrivateRedis;

use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// Waits until `port` accepts connections (or stops accepting, with `up = false`); panics
/// naming `what` after `bound`.
fn wait_for_port(port: u16, up: bool, bound: Duration, what: &str) {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() == up {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let state = if up { "accept" } else { "refuse" };
    panic!("{what} did not {state} connections on port {port} within {bound:?}");
}

/// Runs a command to its end; panics with its output if it fails.
fn run(command: &mut std::process::Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
