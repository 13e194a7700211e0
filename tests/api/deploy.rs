//! What `deploy/` ships for operators: the Grafana dashboard and the Prometheus alert rules name only metrics a
//! running server exports, and the rules pass promtool's checks and their own unit tests.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, spawn_app};

fn deploy_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(path)).unwrap()
}

/// Every `candor_…` series name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let name = regex::Regex::new(r"\bcandor_[a-z0-9_]+").unwrap();
    name.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

#[tokio::test]
async fn the_dashboard_and_the_alert_rules_name_only_metrics_a_running_server_exports() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    let scrape = app.get("/metrics", None).await.text;
    let exported: BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();

    let dashboard: Value = serde_json::from_str(&deploy_file("grafana/dashboards/candor.json")).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut queries = String::new();
    for panel in panels {
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "panel ids are unique: {}", panel["title"]);
        let grid = &panel["gridPos"];
        assert!(grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24, "{} fits the grid", panel["title"]);
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty() && !panel["description"].as_str().unwrap_or_default().is_empty(), "{}", panel["title"]);
        for target in targets {
            queries.push_str(target["expr"].as_str().unwrap());
            queries.push('\n');
        }
    }
    let rules = deploy_file("prometheus/alerts.yml");
    for (source, text) in [("dashboard", queries.as_str()), ("alert rules", rules.as_str())] {
        let named = metric_names(text);
        assert!(named.len() >= 10, "the {source} names few metrics: {named:?}");
        let missing: Vec<_> = named.iter().filter(|n| !exported.contains(*n)).collect();
        assert!(missing.is_empty(), "the {source} name metrics the server does not export: {missing:?}");
    }
    for alert in ["CandorNodeDown", "CandorVoiceToVoiceSlow", "CandorInferencePoolSaturated", "CandorAudioDropped", "CandorLlmFailing", "CandorHttpErrors"] {
        assert!(rules.contains(&format!("alert: {alert}")), "{alert}");
    }
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let Some(promtool) = std::env::var_os("CANDOR_TEST_PROMTOOL") else {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "promtool is unpacked by the test command");
        eprintln!("skipped: no promtool");
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    for args in [["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]] {
        let run = std::process::Command::new(&promtool).args(args).current_dir(&dir).output().expect("promtool runs");
        let said = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
        assert!(run.status.success() && said.contains("SUCCESS"), "promtool {}: {said}", args.join(" "));
    }
}
