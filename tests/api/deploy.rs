//! What `deploy/` ships for operators: the Grafana dashboard and the Prometheus alert rules name only metrics a
//! running server exports, and the rules pass promtool's checks and their own unit tests; the Dockerfile, the
//! compose file and the Kubernetes manifests pass the checks that need no Docker daemon and no cluster.

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

/// A test tool the test command installs, named by `var`; `None` (the test skips) without it, unless the test
/// command requires every service.
fn tool(var: &str) -> Option<std::ffi::OsString> {
    let found = std::env::var_os(var);
    if found.is_none() {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "{var} is set by the test command");
        eprintln!("skipped: {var} is not set");
    }
    found
}

/// Runs `program` in the repository root; what it said, and whether it succeeded.
fn run(program: &std::ffi::OsStr, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(program).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("the tool runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The packages the Dockerfile's last stage (what runs) installs.
fn runtime_packages(dockerfile: &str) -> BTreeSet<String> {
    let last_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    let install = last_stage.split("--no-install-recommends").nth(1).expect("an apt-get install in the last stage");
    let install = install.split("&&").next().unwrap();
    install.split_whitespace().filter(|w| *w != "\\").map(str::to_string).collect()
}

/// The image builds where Docker runs; here, without a daemon, what can be checked is: hadolint passes, the
/// running stage installs the Debian package of every shared library the binary links and the programs it
/// runs, and what the stages copy from the repository exists.
#[test]
fn the_dockerfile_lints_clean_and_its_running_stage_has_every_library_the_binary_needs() {
    let dockerfile = deploy_file("Dockerfile");
    let packages = runtime_packages(&dockerfile);
    assert!(packages.contains("espeak-ng"), "the voice runs espeak-ng: {packages:?}");
    // In every Debian image: the C library, libgcc and libstdc++ (apt needs them).
    let base = ["libc6", "libgcc-s1", "libstdc++6"];
    let (ok, elf) = run("readelf".as_ref(), &["-d", env!("CARGO_BIN_EXE_candor")]);
    assert!(ok, "{elf}");
    let multiarch = format!("/{}-linux-gnu/", std::env::consts::ARCH);
    let needed: Vec<&str> = elf.lines().filter_map(|l| l.split("Shared library: [").nth(1)?.strip_suffix(']')).collect();
    assert!(needed.iter().any(|l| l.starts_with("libavcodec")), "{needed:?}");
    for library in needed {
        let (_, owners) = run("dpkg".as_ref(), &["-S", &format!("*/{library}")]);
        let package = owners
            .lines()
            // This machine's architecture, not a multilib copy (libc6-i386 also has a libm.so.6).
            .filter(|l| l.ends_with(&format!("/{library}")) && (l.contains(&multiarch) || l.contains("/lib64/")))
            .find_map(|l| l.split(':').next())
            .unwrap_or_else(|| panic!("no package has {library}: {owners}"));
        assert!(packages.contains(package) || base.contains(&package), "the image lacks {package} for {library}");
    }
    for copied in ["models/fetch.py", "models/manifest.toml", "Cargo.lock"] {
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(copied).exists(), "{copied}");
    }
    let Some(hadolint) = tool("CANDOR_TEST_HADOLINT") else { return };
    let (ok, said) = run(&hadolint, &["--config", "deploy/hadolint.yaml", "deploy/Dockerfile"]);
    assert!(ok, "hadolint: {said}");
}

/// The compose file against the Compose Specification's schema (check-jsonschema's copy), with every file it
/// mounts present.
#[test]
fn the_compose_file_follows_the_compose_specification() {
    let compose = deploy_file("compose.yaml");
    for mounted in compose.lines().filter_map(|l| l.trim().strip_prefix("- ./")).map(|m| m.split(':').next().unwrap()) {
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(mounted).exists(), "compose mounts {mounted}");
    }
    assert!(compose.contains("50000-50199:50000-50199/udp"), "the media ports are published");
    let Some(checker) = tool("CANDOR_TEST_CHECK_JSONSCHEMA") else { return };
    let (ok, said) = run(&checker, &["--builtin-schema", "vendor.compose-spec", "deploy/compose.yaml"]);
    assert!(ok, "{said}");
}

/// Each Kustomize overlay renders (with Debian's kubectl, whose Kustomize is old: the files keep to what it
/// knows) and every resource it makes validates strictly against Kubernetes' schemas (kubernetes-validate).
#[test]
fn the_kubernetes_overlays_render_and_validate_strictly() {
    let (Some(kubectl), Some(validate)) = (tool("CANDOR_TEST_KUBECTL"), tool("CANDOR_TEST_KUBERNETES_VALIDATE")) else { return };
    let dir = tempfile::tempdir().unwrap();
    for overlay in ["small", "production"] {
        let (ok, rendered) = run(&kubectl, &["kustomize", &format!("deploy/kubernetes/overlays/{overlay}")]);
        assert!(ok, "{overlay}: {rendered}");
        let kinds: BTreeSet<&str> = rendered.lines().filter_map(|l| l.strip_prefix("kind: ")).collect();
        for kind in ["StatefulSet", "Service", "Ingress", "PodDisruptionBudget", "ConfigMap"] {
            assert!(kinds.contains(kind), "{overlay} has a {kind}: {kinds:?}");
        }
        let file = dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(&file, &rendered).unwrap();
        let (ok, said) = run(&validate, &["--strict", "--quiet", file.to_str().unwrap()]);
        assert!(ok && !said.contains("ERROR"), "{overlay}: {said}");
    }
}
