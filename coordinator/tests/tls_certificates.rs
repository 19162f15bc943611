//! Certificates that must not be trusted, each refused with its reason, and STARTTLS that must
//! not fall back to plaintext. A test CA made with the openssl command is trusted through
//! `SSL_CERT_FILE` (read by the system-roots loader), so an expired or wrong-host certificate
//! from that CA is refused for being expired or for the wrong host, not merely as unknown.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{ADMIN, Pair, run, user_result};
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{StartOptions, assert_same_mail};

/// Runs openssl in `dir`, panicking with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`NAME-ca.pem`, `NAME-ca.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (cert, key) = (format!("{name}-ca.pem"), format!("{name}-ca.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={name} test CA"),
            "-keyout",
            &key,
            "-out",
            &cert,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
}

/// A server certificate `NAME.pem`/`NAME.key` for `san`, signed by `ca`, valid from `start` to
/// `end` (`YYYYMMDDHHMMSSZ`). `openssl ca` is the 3.0 way to set dates in the past.
fn make_server_cert(dir: &Path, name: &str, ca: &str, san: &str, start: &str, end: &str) {
    let (csr, key) = (format!("{name}.csr"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=mail server",
            "-addext",
            &format!("subjectAltName={san}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
    );
    let db = dir.join(format!("{name}-db"));
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("index.txt"), "").unwrap();
    std::fs::write(db.join("serial"), "1000\n").unwrap();
    let config = format!(
        "[ca]\ndefault_ca = own\n[own]\ndatabase = {0}/index.txt\nnew_certs_dir = {0}\n\
         serial = {0}/serial\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\n\
         unique_subject = no\n[any]\ncommonName = supplied\n",
        db.display()
    );
    let config_path = dir.join(format!("{name}.cnf"));
    std::fs::write(&config_path, config).unwrap();
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            config_path.to_str().unwrap(),
            "-cert",
            &format!("{ca}-ca.pem"),
            "-keyfile",
            &format!("{ca}-ca.key"),
            "-in",
            &csr,
            "-out",
            &format!("{name}.pem"),
            "-startdate",
            start,
            "-enddate",
            end,
        ],
    );
    std::fs::set_permissions(
        dir.join(&key),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
}

/// A TLS Dovecot pair whose source serves `NAME.pem` from `dir`.
fn pair_serving(dir: &Path, name: &str, user: (&str, &str)) -> Pair {
    let serve = format!(
        "ssl_cert = <{0}/{name}.pem\nssl_key = <{0}/{name}.key",
        dir.display()
    );
    let options = StartOptions::users(&[user]).with_master(ADMIN.0, ADMIN.1);
    Pair::from_servers(
        options.clone().with_tls().with_config(&serve),
        options,
        &[user],
    )
}

/// `migrate` from `source_url`, trusting the roots in `trusted` when given.
fn migrate_from(
    pair: &Pair,
    source_url: &str,
    trusted: Option<&Path>,
) -> (i32, serde_json::Value, String) {
    let mut command = pair.migrate_command_from(source_url, &pair.write_csv(), &[]);
    if let Some(trusted) = trusted {
        command.env("SSL_CERT_FILE", trusted);
    }
    run(&mut command)
}

fn certificates() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    make_ca(path, "trusted");
    make_ca(path, "stranger");
    let (now, later) = ("20240101000000Z", "20991231000000Z");
    make_server_cert(path, "good", "trusted", "IP:127.0.0.1", now, later);
    make_server_cert(
        path,
        "expired",
        "trusted",
        "IP:127.0.0.1",
        "20200101000000Z",
        "20210101000000Z",
    );
    make_server_cert(
        path,
        "wrong-host",
        "trusted",
        "DNS:other.example.com",
        now,
        later,
    );
    make_server_cert(path, "unknown-ca", "stranger", "IP:127.0.0.1", now, later);
    let trusted = path.join("trusted-ca.pem");
    (dir, trusted)
}

#[tokio::test]
async fn bad_certificates_are_refused_with_their_reason_and_only_the_endpoint_can_accept_them() {
    let (dir, trusted) = certificates();
    let cases = [
        ("good", None),
        ("expired", Some("expired")),
        ("wrong-host", Some("not valid for name")),
        ("unknown-ca", Some("unknownissuer")),
    ];
    for (i, (name, reason)) in cases.into_iter().enumerate() {
        let user = format!("cert-{i}@example.com");
        let pair = pair_serving(dir.path(), name, (&user, "cert-pw"));
        pair.seed_all(&CorpusSpec {
            messages: 5,
            ..Default::default()
        })
        .await;
        let imaps = format!("imaps://127.0.0.1:{}", pair.source.tls_port().unwrap());
        let (code, json, stderr) = migrate_from(&pair, &imaps, Some(&trusted));
        let Some(reason) = reason else {
            assert_eq!(code, 0, "{name}: {stderr}\n{json}");
            continue;
        };
        assert_eq!(code, 1, "{name}: {stderr}\n{json}");
        let error = user_result(&json, &user)["errors"][0]
            .as_str()
            .unwrap()
            .to_lowercase();
        eprintln!("{name}: {error}");
        assert!(
            error.contains("tls") && error.replace(['_', '-'], " ").contains(reason),
            "{name}: {error}"
        );
        assert_eq!(pair.target_snapshot(0).await.message_count(), 0, "{name}");

        let accepting = format!("{imaps}?accept_untrusted_certs=true");
        let (code, json, stderr) = migrate_from(&pair, &accepting, Some(&trusted));
        assert_eq!(code, 0, "{name} accepted: {stderr}\n{json}");
        assert_same_mail(
            &pair.source_snapshot(0).await,
            &pair.target_snapshot(0).await,
            str::to_owned,
        );
    }
}

#[tokio::test]
async fn starttls_to_a_server_without_it_fails_and_never_sends_the_login_in_plaintext() {
    // A plain Dovecot: no TLS, so no STARTTLS in its capabilities.
    let user = ("no-starttls@example.com", "plain-pw");
    let pair = Pair::start(&[user]);
    pair.seed_all(&CorpusSpec {
        messages: 5,
        ..Default::default()
    })
    .await;
    let log_path = pair.source.base_dir().join("dovecot.log");
    let seeded_log = std::fs::read_to_string(&log_path).unwrap().len();
    let url = format!("imap+starttls://127.0.0.1:{}", pair.source.port());
    let (code, json, stderr) = migrate_from(&pair, &url, None);
    assert_eq!(code, 1, "{stderr}\n{json}");
    let error = user_result(&json, user.0)["errors"][0]
        .as_str()
        .unwrap()
        .to_owned();
    eprintln!("no STARTTLS: {error}");
    assert!(error.contains("STARTTLS"), "{error}");
    assert!(
        !error.contains("login rejected"),
        "the login went out in plaintext: {error}"
    );
    assert_eq!(pair.target_snapshot(0).await.message_count(), 0);
    // After seeding, the source saw no login at all: no password went out in plaintext.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let migration_log = &log[seeded_log..];
    assert!(!migration_log.contains("Login: user="), "{migration_log}");
}
