//! The deployment files under `deploy/compose` and `deploy/k8s` parse, and reference only what
//! exists: every mailfleet command line is accepted by the real binary, every `MAILFLEET_*`
//! variable is a setting or a documented password variable, every mounted `mailfleet.toml`
//! passes `mailfleet config`, and every Secret, ConfigMap, Deployment and queue they name is
//! defined (the queue by the broker backend's own naming).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::mailfleet;
use mailfleet_stores::rabbitmq_queue::QueueNames;
use serde::Deserialize;
use serde_yaml_ng::Value;

/// `MAILFLEET_*` variables that are not settings: read where they are needed.
const OTHER_VARIABLES: [&str; 4] = [
    "MAILFLEET_CONFIG",
    "MAILFLEET_SOURCE_ADMIN_PASSWORD",
    "MAILFLEET_TARGET_ADMIN_PASSWORD",
    "MAILFLEET_USER_PASSWORD",
];

const TEST_KEY: &str = "ZGVwbG95LXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmctISE="; // 32 bytes, tests only

fn deploy_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(sub)
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| {
            let mut value =
                Value::deserialize(document).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            value.apply_merge().unwrap();
            value
        })
        .filter(|value| !value.is_null())
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .map(|item| item.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The binary parses `args` (as a container would pass them) without complaint.
fn assert_mailfleet_accepts(args: &[String], origin: &str) {
    let output = mailfleet().args(args).arg("--help").output().unwrap();
    assert!(
        output.status.success(),
        "{origin}: `mailfleet {}` is not a valid command line:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The environment variable names the settings read, from `mailfleet config` itself.
fn settings_variables() -> BTreeSet<String> {
    let empty = tempfile::tempdir().unwrap();
    let output = mailfleet()
        .env_remove("MAILFLEET_LOG")
        .current_dir(empty.path())
        .arg("config")
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let key = line
                .trim_start_matches("# ")
                .split([' ', '='])
                .next()
                .unwrap();
            format!("MAILFLEET_{}", key.to_ascii_uppercase())
        })
        .collect()
}

fn assert_known_variable(name: &str, origin: &str) {
    if name.starts_with("MAILFLEET_") {
        assert!(
            settings_variables().contains(name) || OTHER_VARIABLES.contains(&name),
            "{origin}: {name} is neither a setting nor a password variable"
        );
    }
}

/// `mailfleet --config FILE config` accepts the settings text.
fn assert_valid_settings(text: &str, origin: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mailfleet.toml");
    std::fs::write(&file, text).unwrap();
    let output = mailfleet()
        .env("MAILFLEET_SECRET_KEY", TEST_KEY)
        .arg("--config")
        .arg(&file)
        .arg("config")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{origin}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn compose_services_run_real_commands_with_real_settings() {
    let dir = deploy_dir("compose");
    let compose = yaml_documents(&dir.join("compose.yaml")).remove(0);
    let services = compose["services"].as_mapping().unwrap();
    let mut mailfleet_services = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        if service["image"].as_str() != Some("mailfleet:local") {
            continue;
        }
        mailfleet_services.insert(name.to_owned());
        let origin = format!("compose service {name}");
        assert_mailfleet_accepts(&strings(&service["command"]), &origin);
        let environment = service["environment"].as_mapping().unwrap();
        for (variable, _) in environment {
            assert_known_variable(variable.as_str().unwrap(), &origin);
        }
        let config_path = environment
            .get("MAILFLEET_CONFIG")
            .and_then(Value::as_str)
            .unwrap();
        let mount = strings(&service["volumes"])
            .into_iter()
            .find(|volume| volume.split(':').nth(1) == Some(config_path))
            .unwrap_or_else(|| panic!("{origin}: nothing mounted at {config_path}"));
        let host_file = dir.join(mount.split(':').next().unwrap());
        assert_valid_settings(&std::fs::read_to_string(&host_file).unwrap(), &origin);

        let dockerfile = dir
            .join(service["build"]["context"].as_str().unwrap())
            .join(service["build"]["dockerfile"].as_str().unwrap());
        let dockerfile = std::fs::read_to_string(&dockerfile).unwrap();
        assert!(dockerfile.contains("cargo build --release --locked -p mailfleet"));
        assert!(dockerfile.contains(r#"ENTRYPOINT ["mailfleet"]"#));
    }
    assert_eq!(
        mailfleet_services,
        BTreeSet::from(["coordinator".to_owned(), "worker".to_owned()])
    );
    for infrastructure in ["rabbitmq", "redis"] {
        assert!(
            services.contains_key(infrastructure),
            "no {infrastructure} service"
        );
    }
}

/// All Kubernetes objects under deploy/k8s, by kind.
struct Cluster {
    objects: Vec<Value>,
}

impl Cluster {
    fn load() -> Self {
        let mut objects = Vec::new();
        for entry in std::fs::read_dir(deploy_dir("k8s")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                objects.extend(yaml_documents(&path));
            }
        }
        Cluster { objects }
    }

    fn of_kind(&self, kind: &str) -> impl Iterator<Item = &Value> {
        self.objects
            .iter()
            .filter(move |o| o["kind"].as_str() == Some(kind))
    }

    fn named(&self, kind: &str, name: &str) -> &Value {
        self.of_kind(kind)
            .find(|o| o["metadata"]["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no {kind} {name} under deploy/k8s"))
    }

    fn assert_secret_key(&self, name: &str, key: &str, origin: &str) {
        let secret = self.named("Secret", name);
        assert!(
            secret["stringData"].get(key).is_some(),
            "{origin}: Secret {name} has no key {key}"
        );
    }
}

#[test]
fn kubernetes_objects_run_real_commands_and_reference_what_is_defined() {
    let cluster = Cluster::load();
    for object in &cluster.objects {
        assert!(object["apiVersion"].is_string() && object["metadata"]["name"].is_string());
        if object["kind"].as_str() != Some("Namespace") {
            assert_eq!(object["metadata"]["namespace"].as_str(), Some("mailfleet"));
        }
    }
    let config_map = cluster.named("ConfigMap", "mailfleet-config");
    assert_valid_settings(
        config_map["data"]["mailfleet.toml"].as_str().unwrap(),
        "ConfigMap mailfleet-config",
    );

    let workloads: Vec<&Value> = cluster
        .of_kind("Deployment")
        .chain(cluster.of_kind("Job"))
        .collect();
    let mut commands = BTreeSet::new();
    for workload in workloads {
        let name = workload["metadata"]["name"].as_str().unwrap();
        let pod = &workload["spec"]["template"]["spec"];
        for volume in pod["volumes"].as_sequence().unwrap() {
            if let Some(config) = volume["configMap"]["name"].as_str() {
                cluster.named("ConfigMap", config);
            }
        }
        for container in pod["containers"].as_sequence().unwrap() {
            let origin = format!("{name}/{}", container["name"].as_str().unwrap());
            let args = strings(&container["args"]);
            assert_mailfleet_accepts(&args, &origin);
            commands.insert(args[0].clone());
            for variable in container["env"].as_sequence().unwrap() {
                let variable_name = variable["name"].as_str().unwrap();
                assert_known_variable(variable_name, &origin);
                let secret = &variable["valueFrom"]["secretKeyRef"];
                if let Some(secret_name) = secret["name"].as_str() {
                    cluster.assert_secret_key(
                        secret_name,
                        secret["key"].as_str().unwrap(),
                        &origin,
                    );
                }
                if variable_name == "MAILFLEET_CONFIG" {
                    let path = Path::new(variable["value"].as_str().unwrap());
                    let mounted =
                        container["volumeMounts"]
                            .as_sequence()
                            .unwrap()
                            .iter()
                            .any(|m| {
                                Some(m["mountPath"].as_str().unwrap())
                                    == path.parent().and_then(Path::to_str)
                            });
                    assert!(mounted, "{origin}: {} is not mounted", path.display());
                }
            }
        }
    }
    assert_eq!(
        commands,
        BTreeSet::from(["coordinator".to_owned(), "worker".to_owned()])
    );

    let scaled = cluster.named("ScaledObject", "mailfleet-worker");
    let target = scaled["spec"]["scaleTargetRef"]["name"].as_str().unwrap();
    cluster.named("Deployment", target);
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["type"].as_str(), Some("rabbitmq"));
    assert_eq!(
        trigger["metadata"]["queueName"].as_str(),
        Some(QueueNames::with_prefix("mailfleet").tasks.as_str()),
        "KEDA must watch the queue workers take tasks from"
    );
    let authentication = cluster.named(
        "TriggerAuthentication",
        trigger["authenticationRef"]["name"].as_str().unwrap(),
    );
    for reference in authentication["spec"]["secretTargetRef"]
        .as_sequence()
        .unwrap()
    {
        cluster.assert_secret_key(
            reference["name"].as_str().unwrap(),
            reference["key"].as_str().unwrap(),
            "TriggerAuthentication",
        );
    }
}
