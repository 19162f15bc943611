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

/// The bodies of up to `max` messages waiting in `queue`, read without taking them: they are
/// fetched unacknowledged and returned to the queue when the peeking connection closes. A
/// queue not declared yet (or still starting) holds nothing yet.
pub async fn peek_messages(amqp_url: &str, queue: &str, max: usize) -> Vec<Vec<u8>> {
    use lapin::options::BasicGetOptions;
    let connection = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ answers");
    let channel = connection.create_channel().await.expect("a channel");
    let mut bodies = Vec::new();
    while bodies.len() < max {
        let got = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await;
        match got {
            Ok(Some(message)) => bodies.push(message.delivery.data),
            Ok(None) => break,
            // Not declared yet, or declared but its quorum replica not started ("noproc").
            Err(error)
                if ["NOT_FOUND", "noproc"]
                    .iter()
                    .any(|m| error.to_string().contains(m)) =>
            {
                break;
            }
            Err(error) => panic!("basic.get from {queue}: {error}"),
        }
    }
    let _ = connection.close(200, "peeked".into()).await;
    bodies
}
