//! Faults on the machine's real RabbitMQ: closing connections from the broker's side, as a
//! broker restart or `rabbitmqctl close_all_connections` does.

use std::process::Command;

/// Closes every connection whose client properties (e.g. its connection name) contain
/// `marker`; returns how many were closed.
pub fn close_rabbitmq_connections(marker: &str) -> usize {
    let listing = Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "pid",
            "client_properties",
            "--no-table-headers",
            "-q",
        ])
        .output()
        .expect("rabbitmqctl runs");
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let pids: Vec<&str> = listing
        .lines()
        .filter(|line| line.contains(marker))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    for pid in &pids {
        let _ = Command::new("rabbitmqctl")
            .args(["close_connection", pid, "mailfleet fault test"])
            .output();
    }
    pids.len()
}
