//! `nook system doctor` as the unprivileged test user: a set-up machine has no FAIL, and the
//! conditions a test can break without harming the machine (the environment) are found.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{TestContext, assert_success};

fn findings(out: &std::process::Output) -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str::<Vec<serde_json::Value>>(&text)
        .unwrap_or_else(|e| panic!("doctor's JSON does not parse ({e}):\n{text}"))
}

fn finding<'a>(all: &'a [serde_json::Value], check: &str) -> &'a serde_json::Value {
    all.iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no finding {check} in {all:?}"))
}

#[test]
fn doctor_on_a_set_up_machine_finds_no_failure() {
    let ctx = TestContext::new();
    let out = ctx.nook(&["system", "doctor"]);
    let table = assert_success(&out);
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("STATUS    CHECK"), "{table}");
    assert!(!table.lines().any(|l| l.starts_with("FAIL")), "{table}");
    for check in [
        "user namespaces",
        "newuidmap",
        "newgidmap",
        "subuid",
        "subgid",
        "XDG_RUNTIME_DIR",
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("OK") && l.contains(&format!(" {check} "))),
            "{check} is not OK:\n{table}"
        );
    }
    assert!(table.contains("\n0 FAIL, "), "{table}");
}

#[test]
fn doctor_json_is_an_array_of_findings() {
    let ctx = TestContext::new();
    let out = ctx.nook(&["system", "doctor", "--format", "json"]);
    assert_success(&out);
    let all = findings(&out);
    assert_eq!(all.len(), 16);
    for f in &all {
        let mut keys: Vec<&String> = f.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["check", "detail", "fix", "needs_admin", "status"],
            "{f}"
        );
        assert!(
            ["OK", "WARN", "FAIL"].contains(&f["status"].as_str().unwrap()),
            "{f}"
        );
        assert_eq!(f["fix"] == "", f["status"] == "OK", "{f}");
    }
    assert_eq!(finding(&all, "user namespaces")["status"], "OK");
    // The store is where TestContext puts it, on a local file system here.
    let store = finding(&all, "store file system");
    assert_eq!(store["status"], "OK", "{store}");
    assert!(
        store["detail"]
            .as_str()
            .unwrap()
            .contains(ctx.data.to_str().unwrap())
    );
    let bad = ctx.nook(&["system", "doctor", "--format", "yaml"]);
    assert_eq!(bad.status.code(), Some(125));
}

#[test]
fn doctor_finds_a_missing_or_open_runtime_dir() {
    let ctx = TestContext::new();
    let out = ctx
        .nook_cmd()
        .args(["system", "doctor", "--format", "json"])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "a WARN is no failure");
    let all = findings(&out);
    let f = finding(&all, "XDG_RUNTIME_DIR");
    assert_eq!(f["status"], "WARN", "{f}");
    assert!(f["detail"].as_str().unwrap().contains("not set"), "{f}");
    assert_eq!(f["fix"], "export XDG_RUNTIME_DIR=/run/user/$(id -u)");
    assert_eq!(f["needs_admin"], false);

    std::fs::set_permissions(&ctx.runtime, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = ctx.nook(&["system", "doctor", "--format", "json"]);
    let all = findings(&out);
    let f = finding(&all, "XDG_RUNTIME_DIR");
    assert_eq!(f["status"], "WARN", "{f}");
    assert!(f["detail"].as_str().unwrap().contains("mode 0755"), "{f}");
    assert_eq!(f["fix"], format!("chmod 0700 {}", ctx.runtime.display()));
}

#[test]
fn doctor_finds_newuidmap_missing_from_path() {
    let ctx = TestContext::new();
    // A PATH with the network helpers but not newuidmap/newgidmap (which live in /usr/bin).
    let bin = ctx.root().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for program in ["pasta", "slirp4netns", "fuse-overlayfs"] {
        let target = std::path::Path::new("/usr/bin").join(program);
        if target.exists() {
            std::os::unix::fs::symlink(&target, bin.join(program)).unwrap();
        }
    }
    let out = ctx
        .nook_cmd()
        .args(["system", "doctor"])
        .env("PATH", &bin)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    for helper in ["newuidmap", "newgidmap"] {
        let line = table
            .lines()
            .find(|l| l.contains(&format!(" {helper} ")))
            .unwrap_or_else(|| panic!("no {helper} line:\n{table}"));
        assert!(line.starts_with("WARN"), "{line}");
        assert!(line.contains("is not on PATH"), "{line}");
        assert!(line.ends_with("sudo apt-get install uidmap"), "{line}");
    }
    assert!(
        table.contains("fixes using sudo need an administrator"),
        "{table}"
    );
}

#[test]
fn without_newuidmap_commands_warn_with_the_fix_doctor_names() {
    let ctx = TestContext::new();
    let bin = ctx.root().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // `system df` enters nook's user namespace, falling back to a single-id one.
    let out = ctx
        .nook_cmd()
        .args(["system", "df"])
        .env("PATH", &bin)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("single-id user namespace")
            && stderr.contains("sudo apt-get install uidmap"),
        "{stderr}"
    );
}
