//! Admin logins, folder rules, the size limit, bad credentials, strict namespaces and bad CSVs,
//! each through the real binary against real Dovecot.

mod common;

use common::service::{SOURCE_ENDPOINT, ServiceCli, TARGET_ENDPOINT, batch_state};
use common::{ADMIN, Pair, mailfleet, run, user_result};
use mailfleet_testkit::client::MailboxSnapshot;
use mailfleet_testkit::corpus::{CorpusSpec, FOLDERS};
use mailfleet_testkit::{Layout, StartOptions, assert_same_mail};

#[tokio::test]
async fn dovecot_master_user_on_the_source_with_folder_rules_and_size_limit() {
    // The source knows other passwords than the CSV: only the admin login can work there.
    let source =
        StartOptions::users(&[("adm@example.com", "source-only-pw")]).with_master(ADMIN.0, ADMIN.1);
    let target = StartOptions::users(&[("adm@example.com", "csv-pw")]);
    let pair = Pair::from_servers(source, target, &[("adm@example.com", "csv-pw")]);
    let spec = CorpusSpec {
        messages: 90,
        ..Default::default()
    };
    mailfleet_testkit::seed(pair.source.port(), "adm@example.com*admin", ADMIN.1, &spec)
        .await
        .unwrap();
    let csv = pair.write_csv();

    let limit = 20_000;
    let mut command = pair.migrate_command(
        &csv,
        &[
            "--source-admin",
            "admin",
            "--source-admin-format",
            "dovecot",
            "--exclude-folders",
            "#DeletedItems#,Archive/*",
        ],
    );
    command
        .args(["--max-message-size", &limit.to_string()])
        .env("MAILFLEET_SOURCE_ADMIN_PASSWORD", ADMIN.1);
    let (code, json, stderr) = run(&mut command);
    assert_eq!(code, 0, "{stderr}\n{json}");

    let source = pair.source_snapshot_as_admin(0).await;
    let mut expected = MailboxSnapshot::default();
    let mut oversized = 0;
    for (name, folder) in &source.folders {
        if name == "Trash" || name.starts_with("Archive") {
            continue;
        }
        let mut folder = folder.clone();
        let before = folder.messages.len();
        folder.messages.retain(|m| m.bytes.len() <= limit);
        oversized += before - folder.messages.len();
        expected.folders.insert(name.clone(), folder);
    }
    assert!(
        oversized > 0,
        "the corpus must hold messages over the limit"
    );
    let target = pair.target_snapshot(0).await;
    assert_same_mail(&expected, &target, str::to_owned);
    assert!(target.folder("Trash").is_none() && target.folder("Archive/2023").is_none());

    let result = user_result(&json, "adm@example.com");
    assert_eq!(result["status"], "CompletedWithWarnings");
    assert_eq!(result["items_skipped"], oversized as u64);
    for item in result["skipped"].as_array().unwrap() {
        assert!(
            item["reason"].as_str().unwrap().contains("larger than"),
            "{item}"
        );
        assert!(item["size"].as_u64().unwrap() > limit as u64);
        assert!(
            item["folder"].is_string() && item["subject"].is_string() && item["date"].is_string(),
            "{item}"
        );
    }
}

#[tokio::test]
async fn a_wrong_password_fails_that_user_only_and_exits_1() {
    let pair = Pair::start(&[
        ("ok-1@example.com", "good1"),
        ("wrong@example.com", "good2"),
        ("ok-2@example.com", "good3"),
    ]);
    pair.seed_all(&CorpusSpec {
        messages: 15,
        ..Default::default()
    })
    .await;
    let csv = pair.dir.path().join("users.csv");
    std::fs::write(
        &csv,
        "EmailAddress,UserName,Password\nok-1@example.com,ok-1@example.com,good1\n\
         wrong@example.com,wrong@example.com,not-the-password\nok-2@example.com,ok-2@example.com,good3\n",
    )
    .unwrap();
    // One user at a time: the user after the failed one must still be admitted.
    let (code, json, stderr) =
        run(&mut pair.migrate_command(&csv, &["--max-concurrent-migrations", "1"]));
    assert_eq!(code, 1, "{stderr}\n{json}");
    let failed = user_result(&json, "wrong@example.com");
    assert_eq!(failed["status"], "Failed");
    let error = failed["errors"][0].as_str().unwrap();
    assert!(
        error.contains("wrong@example.com") && error.contains("login rejected"),
        "{error}"
    );
    assert!(!error.contains("not-the-password") && !stderr.contains("not-the-password"));
    for (i, user) in [(0, "ok-1@example.com"), (2, "ok-2@example.com")] {
        assert_eq!(user_result(&json, user)["status"], "Completed");
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
}

#[tokio::test]
async fn cyrus_style_inbox_prefix_on_the_source_lands_prefixless_on_the_target() {
    let pair = Pair::start_with_layout(&[("cy@example.com", "cy-pw")], Layout::CyrusLike);
    let cyrus_folders = FOLDERS
        .iter()
        .map(|f| {
            if *f == "INBOX" {
                f.to_string()
            } else {
                format!("INBOX.{}", f.replace('/', "."))
            }
        })
        .collect();
    let spec = CorpusSpec {
        messages: 50,
        folders: cyrus_folders,
        ..Default::default()
    };
    mailfleet_testkit::seed(pair.source.port(), "cy@example.com", "cy-pw", &spec)
        .await
        .unwrap();
    let csv = pair.write_csv();
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let to_target = |name: &str| match name.strip_prefix("INBOX.") {
        Some(rest) => rest.replace('.', "/"),
        None => name.to_owned(),
    };
    let target = pair.target_snapshot(0).await;
    assert!(
        target.folder("Sent").is_some() && target.folder("Projects/Alpha/Specs").is_some(),
        "{:?}",
        target.folders.keys()
    );
    assert_same_mail(&pair.source_snapshot(0).await, &target, to_target);
}

/// `migrate` with `csv` against unreachable servers: validation must stop it before any connect.
fn migrate_invalid(csv: &std::path::Path, state_dir: &std::path::Path) -> (i32, String) {
    let mut command = mailfleet();
    command
        .args([
            "migrate",
            "--source",
            "imap://127.0.0.1:1",
            "--target",
            "imap://127.0.0.1:2",
        ])
        .arg("--csv")
        .arg(csv)
        .arg("--state-dir")
        .arg(state_dir);
    let (code, _, stderr) = run(&mut command);
    (code, stderr)
}

#[test]
fn invalid_csvs_exit_2_and_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let header = "EmailAddress,UserName,Password";
    let cases: [(&str, Vec<u8>, &str); 6] = [
        (
            "header",
            b"Email,UserName,Password\na@example.com,a,p\n".to_vec(),
            "line 1",
        ),
        (
            "duplicate",
            format!("{header}\na@example.com,a,p\nA@example.com,b,p\n").into_bytes(),
            "line 3",
        ),
        (
            "address",
            format!("{header}\nnot-an-address,a,p\n").into_bytes(),
            "line 2",
        ),
        (
            "encoding",
            [
                format!("{header}\nj").as_bytes(),
                b"\xfcrgen@example.com,a,p\n",
            ]
            .concat(),
            "line 2",
        ),
        ("size", vec![b'x'; 10 * 1024 * 1024 + 1], "10 MB"),
        (
            "no rows",
            format!("{header}\r\n").into_bytes(),
            "the CSV holds no users",
        ),
    ];
    for (name, content, expected) in cases {
        let csv = dir.path().join(format!("{name}.csv"));
        std::fs::write(&csv, content).unwrap();
        let (code, stderr) = migrate_invalid(&csv, &dir.path().join("state"));
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}

#[tokio::test]
async fn endpoint_test_reports_logins_in_plain_words() {
    let pair = Pair::start(&[("ep@example.com", "ep-pw")]);
    let endpoint_test = |password: &str| {
        let mut command = mailfleet();
        command
            .args(["endpoint", "test", "--json", "--source", &pair.source.url()])
            .args(["--user", "ep@example.com"])
            .env("MAILFLEET_USER_PASSWORD", password);
        run(&mut command)
    };
    let (code, json, stderr) = endpoint_test("ep-pw");
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert!(
        json[1]["detail"].as_str().unwrap().contains("IMAP4REV1"),
        "{json}"
    );

    let (code, json, _) = endpoint_test("wrong");
    assert_eq!(code, 1);
    assert!(
        json[1]["detail"]
            .as_str()
            .unwrap()
            .contains("login rejected"),
        "{json}"
    );
}

/// Panics naming the secret when any of `secrets` occurs in any of `haystacks` (name, bytes).
fn assert_no_secret(secrets: &[&str], haystacks: &[(String, Vec<u8>)]) {
    for secret in secrets {
        for (name, haystack) in haystacks {
            assert!(
                !haystack
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes()),
                "{secret} leaked into {name}"
            );
        }
    }
}

/// Every file of `dir` (not its subdirectories), named, for [`assert_no_secret`].
fn files_of(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .collect()
}

/// Source and target with `users`, a small corpus on the source, and their CSV.
async fn seeded_pair(users: &[(&str, &str)]) -> (Pair, std::path::PathBuf) {
    let pair = Pair::start(users);
    pair.seed_all(&CorpusSpec {
        messages: 10,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();
    (pair, csv)
}

#[tokio::test]
async fn passwords_appear_in_no_output_log_or_state_file() {
    let secrets = [
        ("leak-a@example.com", "Zq7-unique-pass-A"),
        ("leak-b@example.com", "Zq7-unique-pass-B"),
    ];
    let (pair, csv) = seeded_pair(&secrets).await;
    // Trace: the most any level shows, the IMAP library's own wire tracing included.
    let mut command = pair.migrate_command(&csv, &["--log", "trace"]);
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut haystacks = vec![
        ("stdout".to_owned(), output.stdout),
        ("stderr".to_owned(), output.stderr),
    ];
    haystacks.extend(files_of(&pair.state_dir()));
    assert_no_secret(&secrets.map(|(_, password)| password), &haystacks);
}

#[tokio::test]
async fn passwords_appear_in_no_service_output_log_or_report() {
    let secrets = [
        ("leak-s@example.com", "Zq7-unique-pass-S"),
        ("leak-t@example.com", "Zq7-unique-pass-T"),
    ];
    let (pair, csv) = seeded_pair(&secrets).await;
    // The source endpoint logs in as the Dovecot master user: its password is a secret too.
    let service = ServiceCli::new(pair.state_dir())
        .with_env("MAILFLEET_LOG", "trace")
        .with_env("MAILFLEET_ADMIN_PASSWORD", ADMIN.1);
    let mut haystacks = Vec::new();
    let mut shown = |what: &str, output: std::process::Output| {
        assert!(
            output.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        haystacks.push((format!("{what} stdout"), output.stdout));
        haystacks.push((format!("{what} stderr"), output.stderr));
    };
    let source = pair.source.url();
    let target = pair.target.url();
    shown(
        "endpoint create",
        service.cli(&[
            "endpoint",
            "create",
            SOURCE_ENDPOINT,
            "--server",
            &source,
            "--admin",
            ADMIN.0,
            "--admin-format",
            "dovecot",
        ]),
    );
    shown(
        "endpoint create",
        service.cli(&["endpoint", "create", TARGET_ENDPOINT, "--server", &target]),
    );
    let batch = ServiceCli::batch_args("leaks", &csv, &["--autostart"]);
    shown(
        "batch create",
        service.cli(&batch.iter().map(String::as_str).collect::<Vec<_>>()),
    );
    let log = pair.dir.path().join("service.log");
    let running = service.start(&["--workers", "2"], &log);
    service
        .wait_for("leaks", "Synced", |s| batch_state(s) == "Synced")
        .await;
    running.terminate();
    let mut reports = Vec::new();
    for format in ["csv", "json", "html"] {
        let report = pair.dir.path().join(format!("report.{format}"));
        let report_arg = report.display().to_string();
        shown(
            "report users",
            service.cli(&["report", "users", "leaks", "--format", format]),
        );
        shown(
            "report users --output",
            service.cli(&[
                "report",
                "users",
                "leaks",
                "--format",
                format,
                "--output",
                &report_arg,
            ]),
        );
        let written = std::fs::read(&report).unwrap();
        assert!(
            written.contains(&b'@'),
            "the {format} report names its users"
        );
        reports.push((report_arg, written));
    }
    haystacks.extend(reports);
    let service_log = std::fs::read(&log).unwrap();
    // Above the default `warn`: the trace filter took effect.
    assert!(
        service_log.windows(4).any(|w| w == b"INFO"),
        "the service log holds its info lines"
    );
    haystacks.push(("service log".to_owned(), service_log));
    haystacks.extend(files_of(&pair.state_dir()));
    let mut passwords = secrets.map(|(_, password)| password).to_vec();
    passwords.push(ADMIN.1);
    assert_no_secret(&passwords, &haystacks);
}

#[tokio::test]
async fn received_after_copies_only_newer_mail_and_a_rerun_adds_nothing() {
    let pair = Pair::start(&[("recent@example.com", "recent-pw")]);
    pair.seed_all(&CorpusSpec {
        messages: 80,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();
    let cutoff = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    let args = ["--received-after", "2020-01-01"];

    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &args));
    assert_eq!(code, 0, "{stderr}");
    // The corpus spans 2015–2024; the server's SEARCH SINCE compares the dates it reports.
    let mut expected = pair.source_snapshot(0).await;
    for folder in expected.folders.values_mut() {
        folder
            .messages
            .retain(|m| m.internal_date.is_some_and(|d| d.date_naive() >= cutoff));
    }
    let older = pair.source_snapshot(0).await.message_count() - expected.message_count();
    assert!(
        older > 10 && expected.message_count() > 10,
        "the corpus straddles the cutoff"
    );
    assert_same_mail(&expected, &pair.target_snapshot(0).await, str::to_owned);
    let result = user_result(&json, "recent@example.com");
    assert_eq!(result["items_synced"], expected.message_count() as u64);
    assert_eq!(
        result["items_skipped"], 0,
        "out-of-range mail is not a skipped item"
    );

    let (code, json, _) = run(&mut pair.migrate_command(&csv, &args));
    assert_eq!(code, 0);
    assert_eq!(user_result(&json, "recent@example.com")["items_copied"], 0);
    assert_same_mail(&expected, &pair.target_snapshot(0).await, str::to_owned);
}

/// Dovecot's quota plugin refusing every message over 10 KB, as a target's size limit would.
const TARGET_REFUSES_OVER_10K: &str = "mail_plugins = $mail_plugins quota\n\
    plugin {\n  quota = count:User quota\n  quota_vsizes = yes\n  quota_max_mail_size = 10k\n}";
const TARGET_LIMIT: usize = 10 * 1024;

#[tokio::test]
async fn messages_the_target_refuses_are_reported_and_the_rest_arrive_once() {
    // Dovecot refuses these at the command line (NO instead of the literal's `+`).
    let user = ("refuse@example.com", "refuse-pw");
    let target = StartOptions::users(&[user]).with_config(TARGET_REFUSES_OVER_10K);
    let pair = Pair::from_servers(StartOptions::users(&[user]), target, &[user]);
    pair.seed_all(&CorpusSpec {
        messages: 200,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();

    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");

    // Refused messages sit between accepted ones in every folder; each accepted one must
    // arrive once, with its flags and date.
    let mut expected = pair.source_snapshot(0).await;
    let mut refused = 0;
    for folder in expected.folders.values_mut() {
        let before = folder.messages.len();
        folder.messages.retain(|m| m.bytes.len() <= TARGET_LIMIT);
        refused += before - folder.messages.len();
    }
    assert!(refused > 5, "the corpus must hold messages over the limit");
    assert_same_mail(&expected, &pair.target_snapshot(0).await, str::to_owned);

    let result = user_result(&json, user.0);
    assert_eq!(result["status"], "CompletedWithWarnings", "{result}");
    assert_eq!(result["items_skipped"], refused as u64);
    for item in result["skipped"].as_array().unwrap() {
        assert!(
            item["reason"]
                .as_str()
                .unwrap()
                .contains("target refused the message"),
            "{item}"
        );
        assert!(
            item["size"].as_u64().unwrap() > TARGET_LIMIT as u64,
            "{item}"
        );
    }

    // A re-run finds the accepted ones and tries the refused ones again, adding nothing.
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_eq!(user_result(&json, user.0)["items_copied"], 0);
    assert_same_mail(&expected, &pair.target_snapshot(0).await, str::to_owned);
}
