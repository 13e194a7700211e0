//! The `candor` binary: configuration errors end it with one clear line; `user add` makes the first admin.

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
