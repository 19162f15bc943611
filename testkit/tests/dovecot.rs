//! The test kit itself against real Dovecot: servers start in parallel, seeding and snapshots
//! see the same mail, master users work, the Cyrus-like layout has its prefix, nothing survives
//! a drop.

use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{
    DovecotServer, Layout, StartOptions, assert_same_mail, connect_login, seed, snapshot,
};

#[tokio::test]
async fn two_servers_seeded_alike_have_the_same_mail() {
    let options =
        StartOptions::users(&[("kit1@example.com", "pw1")]).with_master("admin", "adminpw");
    let a = DovecotServer::start(options.clone()).unwrap();
    let b = DovecotServer::start(options).unwrap();
    assert_ne!(a.port(), b.port());
    let spec = CorpusSpec {
        messages: 30,
        ..Default::default()
    };
    let seeded = seed(a.port(), "kit1@example.com", "pw1", &spec)
        .await
        .unwrap();
    seed(b.port(), "kit1@example.com*admin", "adminpw", &spec)
        .await
        .unwrap();
    let snap_a = snapshot(a.port(), "kit1@example.com", "pw1").await.unwrap();
    let snap_b = snapshot(b.port(), "kit1@example.com", "pw1").await.unwrap();
    assert_eq!(snap_a.message_count(), seeded);
    assert_same_mail(&snap_a, &snap_b, str::to_owned);
    assert!(
        snap_a.folder("Deep").is_some(),
        "parent of Deep/a/b is listed"
    );
    assert!(snap_a.folder("Entw&APw-rfe").is_some());
    let keywords: Vec<_> = snap_a
        .folders
        .values()
        .flat_map(|f| &f.messages)
        .flat_map(|m| &m.flags)
        .collect();
    assert!(
        keywords
            .iter()
            .any(|k| k.as_str() == "$Label1" || k.as_str() == "ProjectX")
    );

    let other = CorpusSpec {
        seed: 2,
        messages: 30,
        ..Default::default()
    };
    let c = DovecotServer::start(StartOptions::users(&[("kit1@example.com", "pw1")])).unwrap();
    seed(c.port(), "kit1@example.com", "pw1", &other)
        .await
        .unwrap();
    let snap_c = snapshot(c.port(), "kit1@example.com", "pw1").await.unwrap();
    assert!(
        !mailfleet_testkit::client::mail_differences(&snap_a, &snap_c, str::to_owned).is_empty()
    );
}

#[tokio::test]
async fn cyrus_like_layout_lists_folders_under_inbox_prefix() {
    let server = DovecotServer::start(
        StartOptions::users(&[("kit2@example.com", "pw")]).with_layout(Layout::CyrusLike),
    )
    .unwrap();
    let mut session = connect_login(server.port(), "kit2@example.com", "pw")
        .await
        .unwrap();
    session.create("INBOX.Sent").await.unwrap();
    session.logout().await.unwrap();
    let snap = snapshot(server.port(), "kit2@example.com", "pw")
        .await
        .unwrap();
    assert!(
        snap.folder("INBOX.Sent").is_some(),
        "{:?}",
        snap.folders.keys()
    );
}

#[tokio::test]
async fn dropping_a_server_leaves_no_process() {
    let server = DovecotServer::start(StartOptions::users(&[("kit3@example.com", "pw")])).unwrap();
    let base = server.base_dir().to_path_buf();
    drop(server);
    let left = std::process::Command::new("pgrep")
        .arg("-f")
        .arg(&base)
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left behind: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}
