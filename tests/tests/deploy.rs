//! deploy/ checked offline: every overlay renders (`kubectl kustomize`) and validates
//! (`kubernetes-validate --strict`), the custom resources we ship are checked here, the alert
//! rules pass `promtool check rules` and `promtool test rules`, and the PrometheusRule holds
//! exactly the rules of `alerts.yaml`. `.ci/run` installs the tools; a missing tool fails.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shelfguard_events::topics;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("workspace root")
}

/// The path of `tool` on PATH; panics (fails the test) when it is missing.
fn tool(name: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    // `.ci/run` installs the Python tools into a venv of its own; find them there too, so that
    // `cargo test --workspace` works after one `.ci/run`.
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_default();
    std::env::split_paths(&path)
        .chain(std::iter::once(cache.join("shelfguard-ci-venv/bin")))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not on PATH: `.ci/run` installs it ({install}); run it once or install it yourself")
        })
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn overlays() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/overlays"))
        .expect("deploy/overlays")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("kustomization.yaml").is_file())
        .collect();
    v.sort();
    let names: Vec<_> = v
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    assert!(
        names.contains(&"local".to_owned()) && names.contains(&"production".to_owned()),
        "{names:?}"
    );
    v
}

/// One rendered document: its kind, name and text.
struct Doc {
    kind: String,
    name: String,
    text: String,
}

/// Splits `kubectl kustomize` output (sorted keys, two-space indents) into documents.
fn docs(yaml: &str) -> Vec<Doc> {
    yaml.split("\n---\n")
        .map(|text| {
            let field = |prefix: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(prefix))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            };
            Doc {
                kind: field("kind: "),
                name: field("  name: "),
                text: text.to_owned(),
            }
        })
        .collect()
}

fn int_field(doc: &Doc, prefix: &str) -> i64 {
    doc.text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{} {}: no `{prefix}`:\n{}", doc.kind, doc.name, doc.text))
}

/// Custom resources have no schema in kubernetes-validate: these kinds (and versions) may be
/// reported as unknown, and are checked by [`check_custom_resources`] instead.
const CUSTOM: &[(&str, &str)] = &[
    ("KafkaTopic", "kafka.strimzi.io/v1beta2"),
    ("ScaledObject", "keda.sh/v1alpha1"),
    ("ServiceMonitor", "monitoring.coreos.com/v1"),
    ("PrometheusRule", "monitoring.coreos.com/v1"),
];

#[test]
fn every_overlay_renders_and_validates_strictly() {
    let kubectl = tool("kubectl", "a pinned kubectl binary");
    let validate = tool("kubernetes-validate", "pip install kubernetes-validate");
    for overlay in overlays() {
        let out = run(Command::new(&kubectl).arg("kustomize").arg(&overlay));
        let yaml = String::from_utf8(out.stdout).expect("utf-8");
        let file = std::env::temp_dir().join(format!(
            "shelfguard-{}-{}.yaml",
            overlay.file_name().and_then(|n| n.to_str()).unwrap_or("x"),
            std::process::id()
        ));
        std::fs::write(&file, &yaml).expect("write rendered overlay");
        let out = run(Command::new(&validate)
            .args(["--strict", "--quiet"])
            .arg(&file));
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(&file);
        for line in report.lines().filter(|l| !l.trim().is_empty()) {
            let allowed = CUSTOM.iter().any(|(kind, api)| {
                line.contains(&format!(
                    "Couldn't find schema for kind {kind} with api version {api} "
                ))
            });
            assert!(
                allowed,
                "{}: kubernetes-validate: {line}",
                overlay.display()
            );
        }
        check_custom_resources(&overlay, &docs(&yaml));
        check_workloads(&overlay, &docs(&yaml));
    }
}

/// What kubernetes-validate cannot check: the custom resources agree with the catalogue and
/// with each other.
fn check_custom_resources(overlay: &Path, docs: &[Doc]) {
    let o = overlay.display();
    let topics_rendered: Vec<&Doc> = docs.iter().filter(|d| d.kind == "KafkaTopic").collect();
    let names: BTreeSet<&str> = topics_rendered
        .iter()
        .filter_map(|d| d.text.lines().find_map(|l| l.strip_prefix("  topicName: ")))
        .collect();
    let expected: BTreeSet<&str> = topics::ALL.iter().map(|t| t.name).collect();
    assert_eq!(names, expected, "{o}: KafkaTopics vs the catalogue");
    // One partition count for every store-partitioned topic (co-partitioning).
    let store_partitions: BTreeSet<i64> = topics_rendered
        .iter()
        .filter(|d| topics::spec(&d.name).is_some_and(|s| s.store_partitioned))
        .map(|d| int_field(d, "  partitions: "))
        .collect();
    assert_eq!(
        store_partitions.len(),
        1,
        "{o}: store-partitioned topics differ: {store_partitions:?}"
    );
    let partitions = store_partitions.into_iter().next().unwrap_or_default();
    for d in &topics_rendered {
        assert!(
            d.text.contains("strimzi.io/cluster: "),
            "{o}: {} lacks its cluster label",
            d.name
        );
    }
    // Autoscaling never beyond the partition count; every consumer service scales on its lag.
    for d in docs.iter().filter(|d| d.kind == "ScaledObject") {
        let max = int_field(d, "  maxReplicaCount: ");
        assert!(
            max <= partitions,
            "{o}: ScaledObject {} scales to {max} > {partitions} partitions",
            d.name
        );
        assert!(
            d.text.contains(&format!("service=\"{}\"", d.name)),
            "{o}: ScaledObject {} does not query its own service's lag:\n{}",
            d.name,
            d.text
        );
    }
    for kind in ["ServiceMonitor", "PrometheusRule"] {
        assert!(docs.iter().any(|d| d.kind == kind), "{o}: no {kind}");
    }
}

/// Every Deployment: probes, resources, a locked-down security context, and its Service, PDB and
/// NetworkPolicy.
fn check_workloads(overlay: &Path, docs: &[Doc]) {
    let o = overlay.display();
    let deployments: Vec<&Doc> = docs.iter().filter(|d| d.kind == "Deployment").collect();
    let names: BTreeSet<&str> = deployments.iter().map(|d| d.name.as_str()).collect();
    for svc in [
        "inventory",
        "stockout-detector",
        "offer-generator",
        "floor-channel",
    ] {
        assert!(names.contains(svc), "{o}: no Deployment {svc}");
    }
    for d in deployments {
        for needle in [
            "path: /readyz",
            "path: /healthz",
            "readOnlyRootFilesystem: true",
            "runAsNonRoot: true",
            "allowPrivilegeEscalation: false",
            "limits:",
            "requests:",
            "terminationGracePeriodSeconds: ",
            "name: KAFKA_OPTIONS",
        ] {
            assert!(
                d.text.contains(needle),
                "{o}: Deployment {} lacks `{needle}`",
                d.name
            );
        }
        for kind in ["Service", "PodDisruptionBudget", "NetworkPolicy"] {
            assert!(
                docs.iter().any(|x| x.kind == kind && x.name == d.name),
                "{o}: Deployment {} has no {kind}",
                d.name
            );
        }
    }
}

#[test]
fn alert_rules_pass_promtool_checks_and_unit_tests() {
    let promtool = tool("promtool", "apt-get install prometheus");
    let dir = root().join("deploy/monitoring");
    run(Command::new(&promtool)
        .args(["check", "rules", "alerts.yaml"])
        .current_dir(&dir));
    run(Command::new(&promtool)
        .args(["test", "rules", "alerts.test.yaml"])
        .current_dir(&dir));
}

/// The dashboard's offer funnel counts a store's first event (its series exist at zero first):
/// `dashboard.test.yaml` runs the dashboard's own expressions in promtool.
#[test]
fn the_dashboard_funnel_counts_the_first_event() {
    let promtool = tool("promtool", "apt-get install prometheus");
    let dir = root().join("deploy/monitoring");
    let dashboard = std::fs::read_to_string(dir.join("dashboard.json")).expect("dashboard.json");
    let tests =
        std::fs::read_to_string(dir.join("dashboard.test.yaml")).expect("dashboard.test.yaml");
    for (in_dashboard, in_test) in [
        (
            "sum by (store, event) (increase(shelfguard_offer_events_total[1h]))",
            "sum by (store, event) (increase(shelfguard_offer_events_total[1h]))",
        ),
        (
            "sum by (event) (increase(shelfguard_offer_events_total[$__range]))",
            "sum by (event) (increase(shelfguard_offer_events_total[30m]))",
        ),
    ] {
        assert!(
            dashboard.contains(in_dashboard),
            "the dashboard no longer has {in_dashboard}"
        );
        assert!(
            tests.contains(&format!("- expr: {in_test}\n")),
            "dashboard.test.yaml lacks {in_test}"
        );
    }
    run(Command::new(&promtool)
        .args(["test", "rules", "dashboard.test.yaml"])
        .current_dir(&dir));
}

#[test]
fn every_alert_has_a_unit_test_and_a_runbook() {
    let dir = root().join("deploy/monitoring");
    let rules = std::fs::read_to_string(dir.join("alerts.yaml")).expect("alerts.yaml");
    let tests = std::fs::read_to_string(dir.join("alerts.test.yaml")).expect("alerts.test.yaml");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 5, "{alerts:?}");
    for a in &alerts {
        assert!(
            tests.contains(&format!(
                "alertname: {a}\n    exp_alerts:\n    - exp_labels"
            )),
            "{a} has no firing test in alerts.test.yaml"
        );
    }
    assert_eq!(
        rules.matches("runbook: ").count(),
        alerts.len(),
        "every alert needs a runbook line"
    );
}

#[test]
fn prometheus_rule_matches_alerts_yaml() {
    let dir = root().join("deploy/monitoring");
    let rules = std::fs::read_to_string(dir.join("alerts.yaml")).expect("alerts.yaml");
    let committed = std::fs::read_to_string(dir.join("prometheusrule.yaml")).unwrap_or_default();
    let header_end = committed
        .find("\nspec:\n")
        .map(|i| i + "\nspec:\n".len())
        .unwrap_or(0);
    let mut expected = committed[..header_end].to_owned();
    for line in rules.lines() {
        expected.push_str("  ");
        expected.push_str(line);
        expected.push('\n');
    }
    assert!(
        header_end > 0 && expected.contains("kind: PrometheusRule"),
        "prometheusrule.yaml lost its header"
    );
    assert!(
        committed == expected,
        "deploy/monitoring/prometheusrule.yaml is out of date with alerts.yaml; it must be:\n{expected}"
    );
}

#[test]
fn the_dashboard_is_valid_json_with_the_panels_the_issue_asks_for() {
    let text = std::fs::read_to_string(root().join("deploy/monitoring/dashboard.json"))
        .expect("dashboard.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("dashboard.json is JSON");
    let exprs: Vec<String> = v["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    for metric in [
        "shelfguard_events_consumed_total",
        "shelfguard_consumer_lag",
        "shelfguard_processing_seconds_bucket",
        "shelfguard_dead_letters_total",
        "shelfguard_offer_events_total",
        "shelfguard_stockouts_open",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(metric)),
            "no panel queries {metric}"
        );
    }
}
