//! Tenants end to end with the real binary and real Dovecot servers (ARCHITECTURE.md,
//! "Tenants"): two tenants with a same-named endpoint and batch live side by side, each sees
//! only its own, each one's sealed passwords log in to the real servers (`verify`), a tenant's
//! user limit holds, tokens are created once, listed without their text and revoked, a tenant
//! is not removed while one of its batches may be syncing, and a removed tenant takes its
//! records, tokens and secrets with it.

mod common;

use common::Pair;
use common::service::ServiceCli;
use mailfleet_shared::tenancy::{ControlStore, token_hash, token_id};
use mailfleet_stores::sqlite_state::SqliteStateStore;
use mailfleet_testkit::corpus::CorpusSpec;
use serde_json::Value;

/// The commands of one tenant: every command gets `MAILFLEET_TENANT=NAME` (`--as-tenant NAME`).
fn as_tenant(pair: &Pair, tenant: &str) -> ServiceCli {
    ServiceCli::new(pair.state_dir()).with_env("MAILFLEET_TENANT", tenant)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_keep_same_named_endpoints_and_batches_apart() {
    let pair = Pair::start(&[
        ("tn-a@example.com", "tn-pw-a"),
        ("tn-b@example.com", "tn-pw-b"),
    ]);
    let seeded = pair
        .seed_all(&CorpusSpec {
            messages: 4,
            ..Default::default()
        })
        .await;
    let both = pair.write_csv();
    let one = pair.dir.path().join("one.csv");
    std::fs::write(
        &one,
        "EmailAddress,UserName,Password\ntn-a@example.com,tn-a@example.com,tn-pw-a\n",
    )
    .unwrap();
    let provider = ServiceCli::new(pair.state_dir());
    provider.ok(&["tenant", "create", "acme", "--max-users", "1"]);
    provider.ok(&["tenant", "create", "globex"]);
    let taken = provider.refused(&["tenant", "create", "acme"]);
    assert!(taken.contains("exists already"), "{taken}");
    assert!(
        provider
            .refused(&["tenant", "create", "Bad/Name"])
            .contains("invalid tenant name")
    );
    let nobody = as_tenant(&pair, "initech").refused(&["batch", "list"]);
    assert!(nobody.contains("no tenant named initech"), "{nobody}");

    let (acme, globex) = (as_tenant(&pair, "acme"), as_tenant(&pair, "globex"));
    for tenant in [&acme, &globex] {
        tenant.create_endpoints(&pair);
    }
    let over = acme.refused(
        &ServiceCli::batch_args("wave", &both, &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        over.contains("tenant acme may have at most 1 users; it has 0 and this adds 2"),
        "{over}"
    );
    acme.create_batch("wave", &one, &[]);
    globex.create_batch("wave", &both, &[]);

    let users = |cli: &ServiceCli| -> Vec<String> {
        let status = cli.status("wave");
        status["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(users(&acme), ["tn-a@example.com"]);
    assert_eq!(users(&globex), ["tn-a@example.com", "tn-b@example.com"]);
    assert!(
        !provider.ok(&["batch", "list"]).contains("wave"),
        "the default tenant has none"
    );
    assert!(provider.ok(&["endpoint", "list"]).trim().is_empty());

    // Each tenant's passwords, sealed under its own key, open and log in to the real servers.
    for (tenant, expected) in [(&acme, 1), (&globex, 2)] {
        let verified = json(&String::from_utf8_lossy(
            &tenant.cli(&["verify", "wave", "--json"]).stdout,
        ));
        let verified = verified["users"].as_array().unwrap();
        assert_eq!(verified.len(), expected, "{verified:?}");
        for (user, count) in verified.iter().zip(&seeded) {
            assert_eq!(
                user["source_messages"].as_u64(),
                Some(*count as u64),
                "{user}"
            );
            assert!(user["error"].is_null(), "{user}");
        }
    }

    // Tokens: the text once on stdout, its hash stored; listed per tenant; revoked.
    let text = acme.ok(&["token", "create", "--role", "admin", "--label", "ci"]);
    let text = text.trim();
    let id = token_id(text).expect("mf_{id}_{secret}");
    provider.ok(&["token", "create", "--provider"]);
    let listed = json(&acme.ok(&["token", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["role"], "admin");
    assert_eq!(
        json(&provider.ok(&["token", "list", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let all = provider.ok(&["token", "list"]);
    assert!(!all.contains(text), "a token's text is never shown again");
    let control = SqliteStateStore::open(&pair.state_dir()).unwrap();
    let (_, hash) = control.token(id).await.unwrap().unwrap();
    assert_eq!(hash, token_hash(text));
    provider.ok(&["token", "revoke", id]);
    let revoked = json(&acme.ok(&["token", "list", "--json"]));
    assert!(revoked[0]["revoked_at"].is_string(), "{revoked}");

    // Every change is in the tenant's audit log, by the CLI.
    let actions: Vec<String> = control
        .audit("acme", 20)
        .await
        .unwrap()
        .into_iter()
        .inspect(|entry| assert_eq!(entry.actor, "cli"))
        .map(|entry| entry.action)
        .collect();
    assert_eq!(
        actions,
        [
            "token.revoke",
            "token.create",
            "batch.create",
            "endpoint.create",
            "endpoint.create",
            "tenant.create"
        ]
    );

    // Not while one of its batches may be syncing: the pass would lose its passwords mid-way.
    acme.ok(&["batch", "start", "wave"]);
    let busy = provider.refused(&["tenant", "remove", "acme"]);
    assert!(
        busy.contains("tenant acme's batch wave is Starting: stop it"),
        "{busy}"
    );
    acme.ok(&["batch", "stop", "wave"]);

    // Removing a tenant removes its records, tokens and secrets; the other keeps its own.
    provider.ok(&["tenant", "remove", "acme"]);
    let gone = acme.refused(&["batch", "list"]);
    assert!(gone.contains("no tenant named acme"), "{gone}");
    assert!(control.token(id).await.unwrap().is_none());
    assert!(
        control
            .tenant_state("acme")
            .batches()
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(users(&globex), ["tn-a@example.com", "tn-b@example.com"]);
    let tenants = provider.ok(&["tenant", "list"]);
    assert!(
        tenants.contains("globex") && !tenants.contains("acme"),
        "{tenants}"
    );
    let refused = provider.refused(&["tenant", "remove", "default"]);
    assert!(
        refused.contains("the default tenant cannot be removed"),
        "{refused}"
    );
}
