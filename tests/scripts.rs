//! The README's commands and the test environment's scripts: exit statuses a user relies
//! on, whichever of them ran first, and shellcheck over every script.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn status_of(script: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new("bash")
        .arg(repo().join(script))
        .args(args)
        .env("MORNINGCHECK_TESTENV", common::var("MC_ENV_DIR"))
        .output()
        .expect("run bash");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().expect("exited, not killed"), text)
}

/// With the environment already up (as after `./scripts/demo.sh`), the wrapper that
/// `./scripts/test.sh` runs the tests in exits with the tests' own status and leaves the
/// environment running for whoever started it. It once exited 1 after every test passed.
#[test]
fn with_env_exits_with_the_commands_status_when_the_environment_was_already_up() {
    let (up, text) = status_of("tests/env/status.sh", &[]);
    assert_eq!(up, 0, "this test runs inside the test environment: {text}");
    assert_eq!(status_of("tests/env/with-env.sh", &["true"]).0, 0);
    assert_eq!(status_of("tests/env/with-env.sh", &["false"]).0, 1);
    assert_eq!(status_of("tests/env/with-env.sh", &["sh", "-c", "exit 3"]).0, 3);
    let (still_up, text) = status_of("tests/env/status.sh", &[]);
    assert_eq!(still_up, 0, "the environment it did not start is still up: {text}");
}

/// scripts/test.sh hands over to the wrapper as its last step, so its own status is the
/// tests' status; the README's two commands and CI's entry point are the ones documented.
#[test]
fn the_readme_commands_are_the_scripts_ci_runs() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let quick_start = readme.split("```").nth(1).expect("a code block in the README");
    let commands: Vec<&str> = quick_start
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty() && *l != "sh")
        .collect();
    assert_eq!(commands, ["./scripts/demo.sh", "./scripts/test.sh"], "the README opens with the demo, then the tests");
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "exec ./scripts/test.sh"), "{ci}");
    let test = std::fs::read_to_string(repo().join("scripts/test.sh")).unwrap();
    let last = test.lines().rev().find(|l| !l.trim().is_empty() && !l.starts_with(' ')).unwrap();
    assert!(last.starts_with("exec bash tests/env/with-env.sh"), "{last}");
}

/// Every shell script passes shellcheck (installed by tests/env/install.sh).
#[test]
fn shellcheck_passes_on_every_script() {
    let mut scripts = Vec::new();
    for dir in ["scripts", "tests/env", "tools", "bench", ".ci"] {
        collect(&repo().join(dir), &mut scripts);
    }
    assert!(scripts.len() >= 8, "{scripts:?}");
    let out = Command::new("shellcheck")
        .args(["-x", "-S", "warning"])
        .args(&scripts)
        .current_dir(repo())
        .output()
        .expect("shellcheck on PATH");
    assert!(out.status.success(), "shellcheck:\n{}", String::from_utf8_lossy(&out.stdout));
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "sh") || p.file_name().is_some_and(|n| n == "run") {
            out.push(p);
        }
    }
}
