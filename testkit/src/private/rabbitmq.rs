//! A RabbitMQ node of a test's own: its own node name, AMQP and distribution ports, Mnesia and
//! log directories, no plugins. It registers with the machine's epmd like any node, and is
//! driven with `rabbitmqctl -n NODE`, so stopping it never touches the shared broker.
//!
//! Starting a node takes seconds to tens of seconds (the Erlang VM boots); the AMQP listener
//! opening is what is waited for. The `rabbitmq-server` script drops to the `rabbitmq` user
//! when run as root, so the node's directory belongs to that user.

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{free_port, run, wait_for_port};

static STARTED: AtomicUsize = AtomicUsize::new(0);
const BOOT: Duration = Duration::from_secs(120);

pub struct PrivateRabbitMq {
    node: String,
    port: u16,
    process: Child,
    _dir: tempfile::TempDir,
}

impl PrivateRabbitMq {
    /// Boots the node and waits until its AMQP port accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mailfleet-rabbitmq-")
            .tempdir()
            .expect("a directory for RabbitMQ");
        let base = dir.path();
        std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o777))
            .expect("the node's directory is writable");
        let (port, dist_port) = (free_port(), free_port());
        let node = format!(
            "mailfleet-{}-{}@localhost",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        std::fs::write(
            base.join("rabbitmq.conf"),
            format!("listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .expect("the node's configuration");
        std::fs::write(base.join("enabled_plugins"), "[].\n").expect("the plugin list");
        for sub in ["mnesia", "log"] {
            std::fs::create_dir_all(base.join(sub)).expect("the node's directories");
        }
        // The script runs the node as the `rabbitmq` user when started by root.
        let _ = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(base)
            .status();
        let process = Command::new("rabbitmq-server")
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", base.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", base.join("log"))
            .env("RABBITMQ_CONFIG_FILE", base.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                base.join("enabled_plugins"),
            )
            .env("RABBITMQ_PID_FILE", base.join("node.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rabbitmq-server runs (deploy/dev/install-deps.sh installs it)");
        wait_for_port(port, true, BOOT, "the private RabbitMQ node");
        PrivateRabbitMq {
            node,
            port,
            process,
            _dir: dir,
        }
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// mailfleet's `queue` setting for this node with the queue-name `prefix`.
    pub fn queue_url(&self, prefix: &str) -> String {
        format!(
            "rabbitmq://guest:guest@127.0.0.1:{}/%2f?prefix={prefix}",
            self.port
        )
    }

    /// `rabbitmqctl stop_app`, then `start_app`: every connection is closed, the broker is
    /// down for a moment, durable queues and their messages come back.
    pub fn restart_app(&self) {
        self.ctl(&["stop_app"]);
        wait_for_port(self.port, false, BOOT, "the private RabbitMQ node");
        self.ctl(&["start_app"]);
        wait_for_port(self.port, true, BOOT, "the private RabbitMQ node");
    }

    fn ctl(&self, args: &[&str]) {
        run(
            Command::new("rabbitmqctl")
                .args(["-n", &self.node])
                .args(args),
            &format!("rabbitmqctl {}", args.join(" ")),
        );
    }
}

impl Drop for PrivateRabbitMq {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-n", &self.node, "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
