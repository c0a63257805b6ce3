//! `helpers/subids USER`, the administrator's script that gives a user subordinate id ranges.
//!
//! Each case runs as root in a scratch mount namespace whose /etc is a temporary copy of the
//! real one, bind-mounted over it: usermod and useradd replace /etc/subuid, /etc/subgid and
//! /etc/passwd by renaming a new file over the old, which a bind mount of the single file
//! would refuse (EBUSY), so the whole directory is copied. The real files are never touched;
//! the throw-away users exist only in the copy.

use std::path::Path;
use std::process::Command;

use crate::harness::context::running_as_root;

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    /// /etc/subuid and /etc/subgid of the copy, after the runs.
    subuid: String,
    subgid: String,
}

/// In a scratch /etc: creates `users` (no home), writes `subuid` and `subgid` (`UID:` in them
/// stands for the first user's uid), then runs `helpers/subids ARGS` once per entry of `runs`.
/// Returns the last run's outcome (each earlier run must succeed).
fn scratch(users: &[&str], subuid: &str, subgid: &str, runs: &[&str]) -> Option<Outcome> {
    if !running_as_root() {
        eprintln!("SKIPPED: helpers/subids tests need root (a scratch mount namespace)");
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("nook-subids-")
        .tempdir_in("/tmp")
        .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("helpers/subids");
    let body = r#"
set -eu
d=$1 script=$2 subuid=$3 subgid=$4 users=$5; shift 5
cp -a /etc "$d/etc"
mount --bind "$d/etc" /etc
# Make sure this is the copy before changing anything.
touch /etc/.nook-scratch && [ -e "$d/etc/.nook-scratch" ] || exit 99
for u in $users; do useradd -M -s /usr/sbin/nologin "$u"; done
first=${users%% *}
uid=$( [ -n "$first" ] && id -u "$first" || echo none)
printf '%s' "$subuid" | sed "s/UID:/$uid:/" > /etc/subuid
printf '%s' "$subgid" | sed "s/UID:/$uid:/" > /etc/subgid
last=$#
i=0
for run in "$@"; do
    i=$((i + 1))
    if [ "$i" -lt "$last" ]; then
        "$script" $run >/dev/null || { echo "run $i failed" >&2; exit 98; }
    else
        set +e
        "$script" $run >"$d/out" 2>"$d/err"
        echo $? >"$d/code"
        set -e
    fi
done
cp /etc/subuid "$d/subuid.after"; cp /etc/subgid "$d/subgid.after"
"#;
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "bash",
            "-c",
            body,
            "bash",
        ])
        .arg(dir.path())
        .arg(&script)
        .args([subuid, subgid, &users.join(" ")])
        .args(runs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scratch namespace failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    Some(Outcome {
        code: read("code").trim().parse().unwrap(),
        stdout: read("out"),
        stderr: read("err"),
        subuid: read("subuid.after"),
        subgid: read("subgid.after"),
    })
}

const OTHERS: &str = "someone:100000:65536\n";

#[test]
fn a_new_user_gets_the_first_free_aligned_range_and_a_second_run_changes_nothing() {
    let Some(o) = scratch(&["zz-new"], OTHERS, OTHERS, &["zz-new"]) else {
        return;
    };
    assert_eq!(o.code, 0, "{}", o.stderr);
    // 131072 overlaps someone's 100000-165535; 196608 is the first aligned range clear of it.
    assert_eq!(o.subuid, format!("{OTHERS}zz-new:196608:65536\n"));
    assert_eq!(o.subgid, format!("{OTHERS}zz-new:196608:65536\n"));
    assert!(
        o.stdout
            .contains("gave zz-new --add-subuids 196608-262143 --add-subgids 196608-262143"),
        "{}",
        o.stdout
    );

    let Some(again) = scratch(&["zz-new"], OTHERS, OTHERS, &["zz-new", "zz-new"]) else {
        return;
    };
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!((again.subuid, again.subgid), (o.subuid, o.subgid));
    assert!(!again.stdout.contains("gave"), "{}", again.stdout);
    assert!(
        again.stdout.contains("/etc/subuid: zz-new:196608:65536"),
        "{}",
        again.stdout
    );
}

#[test]
fn ranges_by_uid_and_by_name_are_taken() {
    // uid 4242's range and the name `other`'s: both block 131072 and 196608.
    let subuid = "4242:131072:65536\n";
    let subgid = "other:196608:65536\n";
    let Some(o) = scratch(&["zz-taken"], subuid, subgid, &["zz-taken"]) else {
        return;
    };
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.subuid, format!("{subuid}zz-taken:262144:65536\n"));
    assert_eq!(o.subgid, format!("{subgid}zz-taken:262144:65536\n"));

    // The user's own range listed by uid is kept; only the missing gid range is added.
    let Some(o) = scratch(&["zz-byuid"], "UID:327680:65536\n", OTHERS, &["zz-byuid"]) else {
        return;
    };
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.subuid.ends_with(":327680:65536\n") && o.subuid.lines().count() == 1,
        "{}",
        o.subuid
    );
    assert_eq!(o.subgid, format!("{OTHERS}zz-byuid:196608:65536\n"));
    assert!(
        o.stdout
            .contains("gave zz-byuid --add-subgids 196608-262143\n"),
        "{}",
        o.stdout
    );
}

#[test]
fn an_overlapping_or_too_small_range_is_refused_with_the_fix() {
    let subuid = format!("{OTHERS}zz-over:150000:65536\n");
    let Some(o) = scratch(&["zz-over"], &subuid, OTHERS, &["zz-over"]) else {
        return;
    };
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains(
            "zz-over's range 150000:65536 in /etc/subuid overlaps someone's 100000:65536"
        ),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("usermod --del-subuids 150000-215535 zz-over"),
        "{}",
        o.stderr
    );
    assert_eq!(
        (o.subuid.as_str(), o.subgid.as_str()),
        (subuid.as_str(), OTHERS)
    );

    let Some(o) = scratch(
        &["zz-small"],
        OTHERS,
        "zz-small:131072:1000\n",
        &["zz-small"],
    ) else {
        return;
    };
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("(131072:1000) hold 1000 ids, fewer than 65536"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("usermod --del-subgids"), "{}", o.stderr);
    // Nothing was added to either file.
    assert_eq!(
        (o.subuid.as_str(), o.subgid.as_str()),
        (OTHERS, "zz-small:131072:1000\n")
    );
}

#[test]
fn a_missing_user_is_refused() {
    let Some(o) = scratch(&[], OTHERS, OTHERS, &["zz-nobody-here"]) else {
        return;
    };
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("no user `zz-nobody-here`"),
        "{}",
        o.stderr
    );
    assert_eq!((o.subuid.as_str(), o.subgid.as_str()), (OTHERS, OTHERS));
}
