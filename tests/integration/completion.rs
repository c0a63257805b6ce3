//! Shell completion as a user gets it: `nook completion bash` sourced in a real bash, the
//! completion function called as readline calls it, COMPREPLY read back. Names of the user's
//! containers and images come from nook's store; subcommands and flags still complete.

use std::path::Path;

use crate::harness::context::nook_bin;
use crate::harness::context::require;
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

/// A second store, `~/other store`, with the container compl-other: completion must read the
/// one `--root` names as the shell will pass it, unquoted and with its `~` expanded.
const OTHER_STORE: &str = "~/'other store'";

fn add_other_store(ctx: &TestContext) {
    let root = ctx.home.join("other store");
    let root = root.to_str().unwrap();
    let archive = ctx.root().join("rootfs.tar");
    let archive = archive.to_str().unwrap();
    assert_success(&ctx.nook(&["--root", root, "import", archive, "compl-other-img:1"]));
    assert_success(&ctx.nook(&[
        "--root",
        root,
        "create",
        "--name",
        "compl-other",
        "compl-other-img:1",
        "sh",
    ]));
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
    // inspect takes both, unless told which, or in a management form.
    assert_has(
        &c(&["nook", "inspect", "compl-"]),
        &["compl-web", "compl-base:1"],
        &[],
    );
    for (words, wanted, absent) in [
        (
            &["nook", "container", "inspect", "compl-"][..],
            "compl-web",
            "compl-base:1",
        ),
        (
            &["nook", "inspect", "--type", "container", "compl-"],
            "compl-web",
            "compl-base:1",
        ),
        (
            &["nook", "image", "inspect", "compl-"],
            "compl-base:1",
            "compl-web",
        ),
        (
            &["nook", "inspect", "--type=image", "compl-"],
            "compl-base:1",
            "compl-web",
        ),
    ] {
        assert_has(&c(words), &[wanted], &[absent]);
    }
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
    add_other_store(&ctx);
    assert_has(
        &c(&["nook", "--root", OTHER_STORE, "rm", ""]),
        &["compl-other"],
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
        let path = shell_path(shell);
        if !require(
            Path::new(&path).exists(),
            &format!("{shell} is not installed (helpers/install-deps installs it)"),
        ) {
            continue;
        }
        let check = ctx
            .command_as_user(&path)
            .args(["-n", "-c", &script])
            .output()
            .unwrap();
        assert_success(&check);
    }
}

fn shell_path(shell: &str) -> String {
    format!("/usr/bin/{shell}")
}

/// What one TAB at the end of `line` gives in a real zsh: the matches (as zsh would insert
/// them), the lines the completion list shows, and the command line after the TAB.
struct ZshReply {
    matches: Vec<String>,
    listed: Vec<String>,
    buffer: String,
}

/// zsh only completes inside the line editor, and its completion builtins (compadd,
/// compdescribe) refuse to run outside a completion widget, so calling the completion function
/// from a script is not enough. The driver runs an interactive `zsh -f -i` on a pseudo-terminal
/// from zsh's own zpty module, types the line and a TAB, then a key bound to a widget that
/// writes the resulting $BUFFER and an end marker. Inside it, after compinit and the sourced
/// script, `compadd` is a function that asks the builtin which of its words match what is
/// typed (-O, with the display strings of -d filtered alongside by -D), records them, and then
/// adds them as usual. Calls that already use -O/-A/-D are completion helpers' own lookups and
/// pass straight through. auto_list is off so an ambiguous TAB never stops at zsh's "do you
/// wish to see all N possibilities?" prompt.
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty || { print -u2 "zsh has no zpty module"; exit 3 }
export NOOK_COMPLETION_OUT=$HOME/.nook-completion-out
rm -f $NOOK_COMPLETION_OUT
zpty nook_z zsh -f -i || exit 3
zpty -w nook_z 'eval "$NOOK_ZSH_SETUP"'
zpty -w -n nook_z "$1"$'\t\x14'
repeat 600; do
    while zpty -rt nook_z chunk 2>/dev/null; do :; done
    grep -qx -- '-- done --' $NOOK_COMPLETION_OUT 2>/dev/null && break
    sleep 0.05
done
zpty -d nook_z
grep -qx -- '-- done --' $NOOK_COMPLETION_OUT 2>/dev/null || {
    print -u2 "zsh did not finish completing within 30s"
    cat $NOOK_COMPLETION_OUT >&2 2>/dev/null
    exit 4
}
cat $NOOK_COMPLETION_OUT
"#;

/// Run in the interactive zsh (see [`ZSH_DRIVER`]). Lines written: `M<TAB>match<TAB>display`
/// for a match, `L<TAB><TAB>display` for a list line without one (zsh lists names sharing a
/// description together, the description on a display-only line), then
/// `BUFFER<TAB>…` and the end marker. (-E N adds N empty matches whose display lines are
/// the -d array; that is how the list shows one description for several names.)
const ZSH_SETUP: &str = r#"
PS1= RPS1=
unsetopt auto_list list_beep beep
if [[ $NOOK_ZSH_INSTALL == fpath ]]; then
    mkdir -p ~/.zfunc && "$NOOK" completion zsh > ~/.zfunc/_nook || exit 3
    fpath=(~/.zfunc $fpath)
fi
autoload -Uz compinit && compinit -u -D
if [[ $NOOK_ZSH_INSTALL == source ]]; then
    source <("$NOOK" completion zsh) 2>>$NOOK_COMPLETION_OUT.err || exit 3
fi
compadd() {
    if [[ " ${@[1,(i)--]} " == *\ -[OAD]\ * ]]; then
        builtin compadd "$@"
        return
    fi
    local -a __matches __displays
    local i=${@[(i)-d]}
    (( i < $# )) && __displays=("${(@P)${@[i+1]}}")
    if [[ " ${@[1,(i)--]} " == *\ -E* ]]; then
        for i in {1..$#__displays}; do
            print -r -- "L"$'\t\t'"$__displays[i]" >> $NOOK_COMPLETION_OUT
        done
        builtin compadd "$@"
        return
    fi
    builtin compadd -O __matches -D __displays "$@"
    for i in {1..$#__matches}; do
        print -r -- "M"$'\t'"$__matches[i]"$'\t'"$__displays[i]" >> $NOOK_COMPLETION_OUT
    done
    builtin compadd "$@"
}
_nook_test_report() {
    print -r -- "BUFFER"$'\t'"$BUFFER" >> $NOOK_COMPLETION_OUT
    print -r -- "-- done --" >> $NOOK_COMPLETION_OUT
}
zle -N _nook_test_report
bindkey '^I' complete-word '^T' _nook_test_report
"#;

/// How a user installs the zsh script: sourced from ~/.zshrc after compinit, or as `_nook`
/// in a directory of `$fpath` (before compinit), for zsh to autoload.
#[derive(Clone, Copy)]
enum ZshInstall {
    Source,
    Fpath,
}

fn zsh_complete(ctx: &TestContext, line: &str) -> ZshReply {
    zsh_complete_installed(ctx, line, ZshInstall::Source)
}

fn zsh_complete_installed(ctx: &TestContext, line: &str, install: ZshInstall) -> ZshReply {
    let install = match install {
        ZshInstall::Source => "source",
        ZshInstall::Fpath => "fpath",
    };
    let out = ctx
        .command_as_user(shell_path("zsh"))
        .env("NOOK", nook_bin())
        .env("NOOK_ZSH_SETUP", ZSH_SETUP)
        .env("NOOK_ZSH_INSTALL", install)
        .args(["-f", "-c", ZSH_DRIVER, "zsh", line])
        .output()
        .unwrap();
    let stdout = assert_success(&out);
    assert!(
        out.stderr.is_empty(),
        "zsh wrote to stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = ctx.home.join(".nook-completion-out.err");
    let errors = std::fs::read_to_string(&errors).unwrap_or_default();
    assert!(errors.is_empty(), "sourcing the zsh script: {errors}");
    let mut reply = ZshReply {
        matches: Vec::new(),
        listed: Vec::new(),
        buffer: String::new(),
    };
    for l in stdout.lines() {
        let mut fields = l.splitn(3, '\t');
        match (fields.next(), fields.next(), fields.next()) {
            (Some("M"), Some(m), display) => {
                reply.matches.push(m.to_string());
                reply.listed.push(display.unwrap_or_default().to_string());
            }
            (Some("L"), _, Some(display)) => reply.listed.push(display.to_string()),
            (Some("BUFFER"), Some(buffer), None) => reply.buffer = buffer.to_string(),
            _ => {}
        }
    }
    assert!(
        stdout.lines().any(|l| l == "-- done --"),
        "no end marker: {stdout}"
    );
    reply
}

/// `complete --do-complete LINE` in a non-interactive fish that sourced `nook completion
/// fish`: (candidate, description) pairs, as fish lists them.
fn fish_complete(ctx: &TestContext, line: &str) -> Vec<(String, String)> {
    let script = r#"
"$NOOK" completion fish | source; or exit 3
complete --do-complete $argv[1]
"#;
    let out = ctx
        .command_as_user(shell_path("fish"))
        .env("NOOK", nook_bin())
        .args(["--no-config", "-c", script, line])
        .output()
        .unwrap();
    let stdout = assert_success(&out);
    assert!(
        out.stderr.is_empty(),
        "fish wrote to stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('\t') {
            Some((value, description)) => (value.to_string(), description.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

#[test]
fn zsh_completes_container_and_image_names_subcommands_and_flags() {
    if !require(
        Path::new(&shell_path("zsh")).exists(),
        "zsh is not installed (helpers/install-deps installs it)",
    ) {
        return;
    }
    let (ctx, image_id, container_id) = populated();
    let c = |line: &str| zsh_complete(&ctx, line);
    let short_image = &image_id[..12];

    let rm = c("nook rm ");
    assert_has(&rm.matches, &["compl-web", "compl-job"], &["compl-base:1"]);
    // The description keeps its colon (zsh splits value from description at the first
    // unescaped one).
    assert!(
        rm.listed
            .iter()
            .any(|l| l.contains("-- container of compl-base:1")),
        "{:?}",
        rm.listed
    );
    assert_has(&c("nook container export ").matches, &["compl-job"], &[]);
    let stop = c(&format!("nook stop {}", &container_id[..4]));
    assert_has(&stop.matches, &[&container_id[..12]], &[]);
    assert_eq!(stop.buffer, format!("nook stop {} ", &container_id[..12]));

    let rmi = c("nook rmi ");
    assert_has(
        &rmi.matches,
        &["compl-base:1", "127.0.0.1:5000/team/compl-app:2"],
        &["compl-web", "compl-base\\:1", "compl-base", "127.0.0.1"],
    );
    assert!(
        rmi.listed
            .iter()
            .any(|l| l.contains(&format!("-- image {short_image}"))),
        "{:?}",
        rmi.listed
    );
    // A unique match is inserted whole, colons and all, and the word is finished.
    assert_eq!(c("nook rmi compl-base:").buffer, "nook rmi compl-base:1 ");
    assert_eq!(
        c("nook rmi 127.0.0.1:5000/t").buffer,
        "nook rmi 127.0.0.1:5000/team/compl-app:2 "
    );
    assert_eq!(
        c("nook run --rm compl-b").buffer,
        "nook run --rm compl-base:1 "
    );
    assert_has(
        &c("nook inspect compl-").matches,
        &["compl-web", "compl-base:1"],
        &[],
    );
    assert_has(
        &c("nook container inspect compl-").matches,
        &["compl-web", "compl-job"],
        &["compl-base:1"],
    );
    assert_eq!(
        c("nook image inspect compl-").buffer,
        "nook image inspect compl-base:1 "
    );
    assert_has(&c("nook pull ").matches, &[], &["compl-base:1"]);

    assert_has(
        &c("nook container ").matches,
        &["diff", "export", "prune"],
        &["compl-web"],
    );
    assert_has(&c("nook re").matches, &["restart", "rename"], &["rm"]);
    assert_eq!(c("nook ps --for").buffer, "nook ps --format ");
    assert_has(&c("nook rm --f").matches, &["--force"], &[]);
    assert_has(
        &c("nook save --format ").matches,
        &["docker-archive", "oci-dir"],
        &[],
    );

    // Installed in $fpath, the first TAB completes too (and the names come from nook).
    for (line, completed) in [
        ("nook rm compl-w", "nook rm compl-web "),
        ("nook rmi compl-b", "nook rmi compl-base:1 "),
        ("nook container pru", "nook container prune "),
    ] {
        assert_eq!(
            zsh_complete_installed(&ctx, line, ZshInstall::Fpath).buffer,
            completed
        );
    }

    add_other_store(&ctx);
    assert_eq!(
        c(&format!("nook --root {OTHER_STORE} rm compl-")).buffer,
        format!("nook --root {OTHER_STORE} rm compl-other ")
    );
}

#[test]
fn fish_completes_container_and_image_names_subcommands_and_flags() {
    if !require(
        Path::new(&shell_path("fish")).exists(),
        "fish is not installed (helpers/install-deps installs it)",
    ) {
        return;
    }
    let (ctx, image_id, container_id) = populated();
    let values = |line: &str| -> Vec<String> {
        fish_complete(&ctx, line)
            .into_iter()
            .map(|(value, _)| value)
            .collect()
    };
    let short_image = &image_id[..12];

    let rm = fish_complete(&ctx, "nook rm ");
    for name in ["compl-web", "compl-job"] {
        assert!(
            rm.contains(&(name.to_string(), "container of compl-base:1".to_string())),
            "{rm:?}"
        );
    }
    assert_has(&values("nook rm "), &[], &["compl-base:1"]);
    assert_has(
        &values("nook container diff compl-w"),
        &["compl-web"],
        &["compl-job"],
    );
    assert_has(
        &values(&format!("nook stop {}", &container_id[..4])),
        &[&container_id[..12]],
        &[],
    );

    let rmi = fish_complete(&ctx, "nook rmi ");
    for name in ["compl-base:1", "127.0.0.1:5000/team/compl-app:2"] {
        assert!(
            rmi.contains(&(name.to_string(), format!("image {short_image}"))),
            "{rmi:?}"
        );
    }
    assert_has(&values("nook rmi "), &[], &["compl-web"]);
    assert_has(&values("nook rmi compl-base:"), &["compl-base:1"], &[]);
    assert_has(
        &values("nook rmi 127.0.0.1:5000/t"),
        &["127.0.0.1:5000/team/compl-app:2"],
        &[],
    );
    assert_has(
        &values("nook run --rm -d "),
        &["compl-base:1", "127.0.0.1:5000/team/compl-app:2"],
        &[],
    );
    assert_has(
        &values("nook inspect compl-"),
        &["compl-web", "compl-base:1"],
        &[],
    );
    assert_has(
        &values("nook container inspect compl-"),
        &["compl-web"],
        &["compl-base:1"],
    );
    assert_has(
        &values("nook inspect --type image compl-"),
        &["compl-base:1"],
        &["compl-web"],
    );
    assert_has(&values("nook pull "), &[], &["compl-base:1"]);

    assert_has(
        &values("nook container "),
        &["diff", "export", "prune"],
        &["compl-web"],
    );
    assert_has(&values("nook re"), &["restart", "rename"], &["rm"]);
    assert_has(&values("nook ps --for"), &["--format"], &[]);
    assert_has(&values("nook rm --f"), &["--force"], &[]);
    assert_has(
        &values("nook save --format "),
        &["docker-archive", "oci-dir"],
        &[],
    );

    add_other_store(&ctx);
    assert_has(
        &values(&format!("nook --root {OTHER_STORE} rm ")),
        &["compl-other"],
        &["compl-web"],
    );
}
