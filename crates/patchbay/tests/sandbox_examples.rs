//! The sandbox's test helpers in examples/ (docs/sandbox.md), run as a team
//! would run them: the pytest fixture with the official OpenInt SDK (2.8.0 and
//! 2.9.0: two 429s retried, then the seeded connection, and three calls in the
//! journal) and the Node helper under `node --test`, each starting this build's
//! binary on a free port with its own seed. CI installs pytest into
//! `target/python/pytest` and the SDKs beside it (`.ci/run`); elsewhere the test
//! skips with a notice when one is missing (and fails when `CI` is set). The
//! helpers start their own SQLite servers, so the PostgreSQL run skips them.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn available(pythonpath: &str, module: &str) -> bool {
    Command::new("python3")
        .env("PYTHONPATH", pythonpath)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success())
}

fn on_postgres() -> bool {
    std::env::var("PATCHBAY_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty())
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("the command runs");
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn pytest_fixture_with_the_openint_sdk() {
    if on_postgres() {
        return;
    }
    let python = root().join("target/python");
    for version in ["2.8.0", "2.9.0"] {
        let path =
            format!("{}:{}", python.join("pytest").display(), python.join(format!("openint-{version}")).display());
        if !available(&path, "pytest") || !available(&path, "openint") {
            assert!(
                std::env::var("CI").is_err(),
                "CI must install pytest and openint {version} into {}",
                python.display()
            );
            eprintln!(
                "skipping the pytest example: pip install --target target/python/pytest pytest (and openint {version})"
            );
            return;
        }
        let (ok, text) = run(Command::new("python3")
            .current_dir(root())
            .env("PYTHONPATH", &path)
            .env("PATCHBAY_BIN", env!("CARGO_BIN_EXE_patchbay"))
            .args(["-m", "pytest", "-p", "no:cacheprovider", "-rs", "-v", "examples/python"]));
        assert!(ok, "pytest with openint {version} failed:\n{text}");
        assert!(text.contains("3 passed"), "{text}");
        assert!(!text.contains("SKIPPED"), "nothing may skip: {text}");
        println!("examples/python with openint {version}: 3 passed");
    }
}

#[test]
fn node_helper() {
    if on_postgres() {
        return;
    }
    if Command::new("node").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "CI must have node");
        eprintln!("skipping the Node example: no node");
        return;
    }
    let (ok, text) = run(Command::new("node")
        .current_dir(root())
        .env("PATCHBAY_BIN", env!("CARGO_BIN_EXE_patchbay"))
        .args(["--test", "examples/node/"]));
    assert!(ok, "node --test examples/node/ failed:\n{text}");
    assert!(text.contains("# pass 3") && text.contains("# fail 0") && text.contains("# skipped 0"), "{text}");
}
