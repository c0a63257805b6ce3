//! Shell completion as a user gets it: `nook completion bash` sourced in a real bash, the
//! completion function called as readline calls it, COMPREPLY read back. Names of the user's
//! containers and images come from nook's store; subcommands and flags still complete.

use std::path::Path;

use crate::harness::context::nook_bin;
use crate::harness::fixtures;
use crate::harness::{TestContext, assert_success};

/// The store's contents: two images (one by import, one tagged) and two containers.
fn populated() -> (TestContext, String, String) {
    let ctx = TestContext::new();
    let archive = ctx.root().join("rootfs.tar");
    std::fs::write(&archive, fixtures::base_tar()).unwrap();
    std::fs::set_permissions(
        &archive,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let id = assert_success(&ctx.nook(&["import", archive.to_str().unwrap(), "compl-base:1"]));
    let id = id.trim().trim_start_matches("sha256:").to_string();
    assert_success(&ctx.nook(&["tag", "compl-base:1", "127.0.0.1:5000/team/compl-app:2"]));
    let web = assert_success(&ctx.nook(&["create", "--name", "compl-web", "compl-base:1", "sh"]));
    assert_success(&ctx.nook(&["create", "--name", "compl-job", "compl-base:1", "true"]));
    (ctx, id, web.trim().to_string())
}

/// COMPREPLY for the command line `words` (the last word is the one being completed), from
/// the script `nook completion bash` printed, in a non-interactive bash as the test user.
fn complete(ctx: &TestContext, words: &[&str]) -> Vec<String> {
    let script = r#"
source <("$NOOK" completion bash) || exit 3
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
COMPREPLY=()
fn=$(complete -p nook | sed -n 's/.*-F \([^ ]*\) nook$/\1/p')
[ -n "$fn" ] || { echo "no completion function registered" >&2; exit 4; }
prev=""
[ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD-1]}
"$fn" nook "${COMP_WORDS[COMP_CWORD]}" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = ctx
        .command_as_user("/bin/bash")
        .env("NOOK", nook_bin())
        .args(["-c", script, "bash"])
        .args(words)
        .output()
        .unwrap();
    let stdout = assert_success(&out);
    assert!(
        out.stderr.is_empty(),
        "completion wrote to stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[track_caller]
fn assert_has(reply: &[String], wanted: &[&str], absent: &[&str]) {
    for w in wanted {
        assert!(reply.iter().any(|r| r == w), "{w} not in {reply:?}");
    }
    for a in absent {
        assert!(!reply.iter().any(|r| r == a), "{a} in {reply:?}");
    }
}

#[test]
fn bash_completes_container_and_image_names_subcommands_and_flags() {
    let (ctx, image_id, container_id) = populated();
    let c = |words: &[&str]| complete(&ctx, words);

    // Containers, for every command that takes one.
    for verb in [
        "rm", "start", "stop", "kill", "restart", "wait", "logs", "exec", "attach", "port",
        "rename", "diff", "commit", "export",
    ] {
        let reply = c(&["nook", verb, ""]);
        assert_has(&reply, &["compl-web", "compl-job"], &["compl-base:1"]);
    }
    assert_has(
        &c(&["nook", "container", "diff", "compl-w"]),
        &["compl-web"],
        &["compl-job"],
    );
    assert_has(
        &c(&["nook", "container", "export", ""]),
        &["compl-job"],
        &[],
    );
    // After a flag and for a second container too.
    assert_has(
        &c(&["nook", "rm", "-f", "compl-web", "compl-j"]),
        &["compl-job"],
        &[],
    );
    // An ID once its start is typed, names only on a bare TAB.
    let short = &container_id[..12];
    assert_has(&c(&["nook", "stop", &container_id[..4]]), &[short], &[]);
    assert!(!c(&["nook", "stop", ""]).iter().any(|r| r == short));

    // Images.
    for words in [
        &["nook", "rmi", ""][..],
        &["nook", "tag", ""],
        &["nook", "push", ""],
        &["nook", "save", ""],
        &["nook", "history", ""],
        &["nook", "run", ""],
        &["nook", "run", "--rm", "-d", ""],
        &["nook", "create", "--name", "x", ""],
    ] {
        assert_has(
            &c(words),
            &["compl-base:1", "127.0.0.1:5000/team/compl-app:2"],
            &["compl-web"],
        );
    }
    assert_has(
        &c(&["nook", "rmi", &image_id[..5]]),
        &[&image_id[..12]],
        &[],
    );
    // inspect takes both.
    assert_has(
        &c(&["nook", "inspect", "compl-"]),
        &["compl-web", "compl-base:1"],
        &[],
    );
    // Not the image of a pull (the registry's), nor tag's new name.
    assert_has(&c(&["nook", "pull", ""]), &[], &["compl-base:1"]);
    assert_has(
        &c(&["nook", "tag", "compl-base:1", ""]),
        &[],
        &["compl-base:1"],
    );

    // Subcommands and flags as before.
    assert_has(&c(&["nook", "re"]), &["restart", "rename"], &["rm"]);
    assert_has(&c(&["nook", "system", "d"]), &["df", "doctor"], &[]);
    assert_has(
        &c(&["nook", "container", ""]),
        &["diff", "export", "prune"],
        &[],
    );
    assert_has(&c(&["nook", "rm", "--f"]), &["--force"], &[]);
    assert_has(&c(&["nook", "run", "--netw"]), &["--network"], &[]);
    assert_has(
        &c(&["nook", "completion", ""]),
        &["bash", "zsh", "fish"],
        &[],
    );
    assert_has(
        &c(&["nook", "save", "--format", ""]),
        &["docker-archive", "oci-dir"],
        &[],
    );

    // --root on the command line is the store asked about: an empty one has no names.
    let empty = ctx.root().join("empty-store");
    let empty = empty.to_str().unwrap();
    assert_has(
        &c(&["nook", "--root", empty, "rm", ""]),
        &[],
        &["compl-web"],
    );
}

#[test]
fn completion_is_silent_and_empty_without_a_store() {
    let ctx = TestContext::new();
    // Only rm's flags are left to offer.
    let flags_only = |reply: Vec<String>| reply.iter().all(|r| r.starts_with('-'));
    assert!(flags_only(complete(&ctx, &["nook", "rm", ""])));
    // An unreadable index completes nothing, quietly, and never repairs or locks anything.
    std::fs::create_dir_all(ctx.data.join("nook")).unwrap();
    std::fs::write(ctx.data.join("nook/containers.json"), b"{ not json").unwrap();
    assert!(flags_only(complete(&ctx, &["nook", "rm", ""])));
    assert!(!Path::new(&ctx.data.join("nook/locks")).exists());
}

/// zsh and fish get the same mechanism: their scripts call nook back with NOOK_COMPLETE.
/// (Neither shell is installed on the test machine; where one is, it is run too.)
#[test]
fn zsh_and_fish_scripts_call_nook_back() {
    let ctx = TestContext::new();
    for shell in ["zsh", "fish"] {
        let script = assert_success(&ctx.nook(&["completion", shell]));
        assert!(
            script.contains(&format!("NOOK_COMPLETE=\"{shell}\""))
                || script.contains(&format!("NOOK_COMPLETE={shell}")),
            "{shell}: {script}"
        );
        assert!(
            script.contains(nook_bin().to_str().unwrap()),
            "{shell}: {script}"
        );
        let path = format!("/usr/bin/{shell}");
        if Path::new(&path).exists() {
            let check = ctx
                .command_as_user(&path)
                .args(["-n", "-c", &script])
                .output()
                .unwrap();
            assert_success(&check);
        }
    }
}
