//! MX checks against a real DNS server on loopback (dnsmasq serving a test zone): `dns check`
//! shows the records and their TTL and warns; `batch complete` refuses while the users' domain
//! does not point at the batch's target MX, and goes ahead once it does (or with --force).

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::fleet::free_port;
use common::service::{ServiceCli, batch_state};
use common::{Pair, mailfleet};
use mailfleet_testkit::corpus::CorpusSpec;

/// dnsmasq answering for example.com with one MX record, nothing else.
struct DnsServer {
    process: Child,
    port: u16,
}

impl DnsServer {
    fn start(mx: &str, ttl: u32) -> Self {
        let port = free_port();
        let process = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
            ])
            .args([
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--user=root",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--mx-host=example.com,{mx},10"))
            .arg(format!("--local-ttl={ttl}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (deploy/dev/install-deps.sh installs dnsmasq-base)");
        let server = DnsServer { process, port };
        for _ in 0..100 {
            if server.answers() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("dnsmasq did not answer on {port}");
    }

    /// Whether something listens: dnsmasq binds its TCP port together with UDP.
    fn answers(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `mailfleet dns check example.com --expect-mx mx.new.example` against `dns`.
fn expect_new_mx(dns: &DnsServer) -> Output {
    mailfleet()
        .args([
            "dns",
            "check",
            "example.com",
            "--expect-mx",
            "mx.new.example",
        ])
        .env("MAILFLEET_DNS_SERVER", dns.address())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mx_checks_warn_and_gate_completion_until_the_switch() {
    let old = DnsServer::start("mx.old.example", 7200);
    let check = expect_new_mx(&old);
    let shown = text(&check);
    assert_eq!(check.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("MX  10 mx.old.example  (TTL 7200 s)"),
        "{shown}"
    );
    assert!(shown.contains("MX TTL is 7200 s"), "{shown}");
    assert!(shown.contains("not at mx.new.example yet"), "{shown}");

    // A synced batch whose users are @example.com, completing onto mx.new.example.
    let pair = Pair::start(&[("dns-a@example.com", "dns-pw")]);
    pair.seed_all(&CorpusSpec {
        messages: 5,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();
    let service = ServiceCli::new(pair.state_dir());
    service.create_endpoints(&pair);
    service.create_batch(
        "mx-gated",
        &csv,
        &["--autostart", "--target-mx", "mx.new.example"],
    );
    let running = service.start(&[], &pair.dir.path().join("service.log"));
    service
        .wait_for("mx-gated", "Synced", |s| batch_state(s) == "Synced")
        .await;
    running.terminate();
    let complete = |dns: &DnsServer| {
        ServiceCli::new(pair.state_dir())
            .with_env("MAILFLEET_DNS_SERVER", dns.address())
            .cli(&["batch", "complete", "mx-gated"])
    };

    let refused = complete(&old);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(
        said.contains("MX of example.com does not point at mx.new.example yet"),
        "{said}"
    );
    assert!(said.contains("--force"), "{said}");

    drop(old);
    let switched = DnsServer::start("mx.new.example", 300);
    let check = expect_new_mx(&switched);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert!(!text(&check).contains("warning"), "{}", text(&check));
    let completed = complete(&switched);
    assert!(completed.status.success(), "{}", text(&completed));
    assert!(text(&completed).contains("syncing goes on until"));
}
