//! The dashboard in a real headless Chromium (Debian's `chromium`, driven over WebDriver by
//! Debian's `chromedriver`), against the real `mailfleet serve` and two real Dovecot servers:
//! an operator signs in, creates the endpoints (each tested), uploads a CSV with an error and
//! sees its line, fixes it, starts the batch, watches it reach Synced, opens a user and
//! completes the batch — only through the page. Screenshots at 1280 and 390 px wide are kept
//! in `target/dashboard-screenshots/` as the test's artifacts.
//!
//! Without `/usr/bin/chromium` or `/usr/bin/chromedriver` the test says so and passes;
//! `deploy/dev/install-deps.sh` installs both, so CI runs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use mailfleet_testkit::assert_same_mail;
use mailfleet_testkit::corpus::CorpusSpec;
use serde_json::json;

use common::{Pair, Running, mailfleet};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Attempts, 200 ms apart, for the page to show what the service did: a bound against a hang,
/// not a timing assertion.
const ATTEMPTS: usize = 900;

/// A headless Chromium session through its own chromedriver, on free ports, with a fresh
/// profile; both processes end when it is dropped.
struct Browser {
    client: Client,
    _driver: Running,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Browser {
    async fn start() -> Self {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Running::new(driver);
        let url = format!("http://127.0.0.1:{port}");
        wait_until_listening(port).await;
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-background-networking",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&url)
            .await
            .expect("a Chromium session");
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("dashboard-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            _driver: driver,
            _profile: profile,
            shots,
        }
    }

    /// `NAME-1280.png` and `NAME-390.png` (a tall window, so most of the page is in it).
    async fn screenshot(&self, name: &str) {
        for (width, height) in [(1280, 900), (390, 1600)] {
            self.client.set_window_size(width, height).await.unwrap();
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(self.shots.join(format!("{name}-{width}.png")), png).unwrap();
        }
        self.client.set_window_size(1280, 900).await.unwrap();
    }

    async fn element(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    async fn type_into(&self, css: &str, text: &str) {
        let input = self.element(css).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap();
    }

    /// Clicks a button that asks for confirmation, then confirms.
    async fn click_and_confirm(&self, css: &str) {
        self.click(css).await;
        self.click("dialog[open] #confirm-ok").await;
    }

    async fn select(&self, css: &str, value: &str) {
        self.element(css)
            .await
            .select_by_value(value)
            .await
            .unwrap();
    }

    /// The text of `css` once `done` holds for it (the page updates by itself).
    async fn wait_for_text(&self, css: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if done(&text) {
                    return text;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.screenshot("failed").await;
        panic!("the page never showed {what} in {css}; it showed {last:?}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_until_listening(port: u16) {
    for _ in 0..ATTEMPTS {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

fn chromium_missing() -> bool {
    !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists()
}

/// `mailfleet serve` on a free port with a short poll interval; its log in `log`.
async fn serve(state_dir: &Path, log: &Path) -> (Running, String) {
    let port = free_port();
    let child = mailfleet()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--poll-interval", "200ms", "--workers", "4", "--state-dir"])
        .arg(state_dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let running = Running::new(child);
    wait_until_listening(port).await;
    (running, format!("http://127.0.0.1:{port}/"))
}

/// An admin token of the default tenant (endpoints need admin), as `mailfleet token create`
/// prints it: once, on stdout.
fn admin_token(state_dir: &Path) -> String {
    let output = mailfleet()
        .args(["token", "create", "--role", "admin"])
        .arg("--state-dir")
        .arg(state_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .find(|word| word.starts_with("mf_"))
        .expect("a token in the output")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_a_batch_from_csv_to_completed_in_the_dashboard() {
    if chromium_missing() {
        eprintln!(
            "SKIPPED: {CHROMIUM} or {CHROMEDRIVER} is missing; deploy/dev/install-deps.sh \
             installs Debian's chromium and chromium-driver"
        );
        return;
    }
    let pair = Pair::start(&[
        ("dash-a@example.com", "dash-pw-a"),
        ("dash-b@example.com", "dash-pw-b"),
    ]);
    pair.seed_all(&CorpusSpec {
        messages: 20,
        ..Default::default()
    })
    .await;
    let state_dir = pair.state_dir();
    let token = admin_token(&state_dir);
    let (_service, base) = serve(&state_dir, &pair.dir.path().join("serve.log")).await;
    let browser = Browser::start().await;
    let page = &browser;

    // Sign in: a wrong token is refused on the page, the right one opens the batches.
    page.client.goto(&base).await.unwrap();
    page.type_into("#token", "mf_nobody_wrong").await;
    page.click("form button[type=submit]").await;
    page.wait_for_text("#signin-error", "the refusal", |t| t.contains("not valid"))
        .await;
    page.screenshot("01-sign-in").await;
    page.type_into("#token", &token).await;
    page.click("form button[type=submit]").await;
    page.wait_for_text("h1", "the batches", |t| t == "Batches")
        .await;
    page.wait_for_text("main", "an empty list saying so", |t| {
        t.contains("No batches yet")
    })
    .await;

    // Endpoints, each tested as it is created.
    page.click("a[data-nav=endpoints]").await;
    for (name, server) in [("old-imap", &pair.source), ("new-imap", &pair.target)] {
        page.type_into("#endpoint-name", name).await;
        page.type_into("#endpoint-url", &server.url()).await;
        page.click("#endpoint-create ~ .actions button").await;
        let tested = page
            .wait_for_text("#endpoint-test", "the endpoint's test", |t| {
                t.contains(&format!("Test of {name}")) && !t.contains("Testing")
            })
            .await;
        assert!(
            tested.contains("ok: ") && !tested.contains("FAILED"),
            "{tested}"
        );
    }
    page.screenshot("02-endpoints").await;

    // A CSV with an error: nothing is created and the page names the line.
    page.click("a[data-nav=batches]").await;
    let dir = pair.dir.path();
    let broken = dir.join("broken.csv");
    let mut csv = String::from("EmailAddress,UserName,Password\n");
    for (user, password) in &pair.users {
        csv.push_str(&format!("{user},{user},{password}\n"));
    }
    std::fs::write(&broken, format!("{csv}not-an-address,x,y\n")).unwrap();
    let fixed = dir.join("users.csv");
    std::fs::write(&fixed, &csv).unwrap();
    page.type_into("#batch-name", "wave-1").await;
    page.type_into("#batch-window", "3s").await;
    page.select("#batch-source", "old-imap").await;
    page.select("#batch-target", "new-imap").await;
    page.element("#batch-csv")
        .await
        .send_keys(&broken.display().to_string())
        .await
        .unwrap();
    page.click("#batch-submit").await;
    let errors = page
        .wait_for_text(".csv-errors", "the CSV's error", |t| t.contains("Line 4"))
        .await;
    assert!(errors.contains("not-an-address"), "{errors}");
    page.screenshot("03-csv-error").await;

    // Fixed: created, started after a confirmation, Synced.
    page.element("#batch-csv")
        .await
        .send_keys(&fixed.display().to_string())
        .await
        .unwrap();
    page.click("#batch-submit").await;
    page.wait_for_text("h1", "the batch's page", |t| t == "Batch wave-1")
        .await;
    page.wait_for_text(".headline .badge", "Created", |t| t == "Created")
        .await;
    page.click_and_confirm("#action-start").await;
    page.wait_for_text(".headline .badge", "Synced", |t| t == "Synced")
        .await;
    page.wait_for_text(".headline .progress", "every user done", |t| {
        t.contains("2 of 2 users done")
    })
    .await;
    page.screenshot("04-synced").await;
    for user in 0..pair.users.len() {
        assert_same_mail(
            &pair.source_snapshot(user).await,
            &pair.target_snapshot(user).await,
            str::to_owned,
        );
    }

    // One user: synced, nothing skipped, no errors.
    let alice = &pair.users[0].0;
    page.click(&format!("a[href$='{}']", alice.replace('@', "%40")))
        .await;
    page.wait_for_text("h1", "the user's page", |t| t == alice)
        .await;
    let text = page
        .wait_for_text("main", "the user's sync", |t| {
            t.contains("Nothing was skipped.")
        })
        .await;
    assert!(text.contains("No errors."), "{text}");
    page.screenshot("05-user").await;

    // Complete, after a confirmation: the 3 s window, the final sync, Completed.
    page.client.back().await.unwrap();
    page.wait_for_text("h1", "the batch's page", |t| t == "Batch wave-1")
        .await;
    page.click_and_confirm("#action-complete").await;
    page.wait_for_text(".headline .badge", "Completed", |t| t == "Completed")
        .await;
    page.screenshot("06-completed").await;
}
