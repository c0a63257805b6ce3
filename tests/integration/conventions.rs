//! Command-line conventions: colour only on a terminal and never with NO_COLOR.

use crate::harness::{TestContext, assert_failure, assert_success};

const ESC: &str = "\x1b[";

/// A failing command that prints `Warning:`, `Error:` and `Hint:` (a login to a port where
/// no registry listens, with the password on the command line).
const FAILING_LOGIN: &[&str] = &["login", "-u", "me", "-p", "pw", "127.0.0.1:1"];

#[test]
fn prefixes_are_coloured_on_a_terminal_only_and_never_with_no_color() {
    let ctx = TestContext::new();
    let (code, shown) = ctx.nook_on_terminal(FAILING_LOGIN, &[]);
    assert_eq!(code, 125, "{shown}");
    for prefix in ["Warning:", "Error:", "Hint:"] {
        let styled = shown
            .lines()
            .find(|l| l.contains(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {shown:?}"));
        assert!(
            styled.starts_with(ESC) && styled.contains(&format!("{prefix}{ESC}0m ")),
            "{prefix} not coloured: {shown:?}"
        );
    }
    // Only the prefix: the message itself is plain.
    assert_eq!(shown.matches(ESC).count(), 3 * 3, "{shown:?}");

    // NO_COLOR: any non-empty value turns colour off, even on a terminal.
    for value in ["1", "0", "yes"] {
        let (_, shown) = ctx.nook_on_terminal(FAILING_LOGIN, &[("NO_COLOR", value)]);
        assert!(shown.contains("Error:"), "{shown:?}");
        assert!(!shown.contains('\x1b'), "NO_COLOR={value}: {shown:?}");
    }
    // An empty NO_COLOR does not count.
    let (_, shown) = ctx.nook_on_terminal(FAILING_LOGIN, &[("NO_COLOR", "")]);
    assert!(shown.contains(ESC), "{shown:?}");

    // Piped: never, even without NO_COLOR and with a colour TERM.
    let out = ctx
        .nook_cmd()
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .args(FAILING_LOGIN)
        .output()
        .unwrap();
    let stderr = assert_failure(&out, 125);
    assert!(
        stderr.contains("Warning:") && stderr.contains("Hint:"),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

#[test]
fn doctor_statuses_are_coloured_on_a_terminal_only() {
    let ctx = TestContext::new();
    let (_, shown) = ctx.nook_on_terminal(&["system", "doctor"], &[]);
    assert!(shown.contains(&format!("OK{ESC}0m")), "{shown:?}");
    // Nothing but the status words: every escape opens or closes one.
    let opened = shown.matches("m\x1b[").count();
    let rows = shown.lines().filter(|l| l.starts_with(ESC)).count();
    assert!(
        rows >= 5 && opened == rows,
        "{rows} rows, {opened}: {shown:?}"
    );

    let (_, shown) = ctx.nook_on_terminal(&["system", "doctor"], &[("NO_COLOR", "1")]);
    assert!(shown.contains("OK") && !shown.contains('\x1b'), "{shown:?}");

    let out = ctx
        .nook_cmd()
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .args(["system", "doctor"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("STATUS") && !stdout.contains('\x1b'),
        "{stdout:?}"
    );
}

/// An image imported from the busybox base, and a directory the test user may write to.
fn imported(ctx: &TestContext, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let work = ctx.home.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).unwrap();
    let archive = work.join("rootfs.tar");
    std::fs::write(&archive, crate::harness::fixtures::base_tar()).unwrap();
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_success(&ctx.nook(&["import", archive.to_str().unwrap(), name]));
    work
}

/// Progress goes to stderr, a plain line per layer when it is not a terminal, nothing with
/// -q; stdout holds exactly what scripts read (nothing for save -o, the `Loaded image` lines
/// for load, the image ID for commit).
#[test]
fn progress_is_on_stderr_and_stdout_stays_exact() {
    let ctx = TestContext::new();
    let work = imported(&ctx, "prog:1");
    let tar = work.join("prog.tar");
    let tar = tar.to_str().unwrap();

    let out = ctx.nook(&["save", "-o", tar, "prog:1"]);
    assert_eq!(assert_success(&out), "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().count() == 1 && stderr.ends_with(": Saved\n"),
        "{stderr:?}"
    );
    let out = ctx.nook(&["save", "-q", "-o", tar, "prog:1"]);
    assert_eq!(assert_success(&out), "");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // To stdout: the archive and nothing else (it loads back).
    let out = ctx.nook(&["save", "prog:1"]);
    let archive = out.stdout.clone();
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stderr).ends_with(": Saved\n"));
    let piped = work.join("piped.tar");
    std::fs::write(&piped, &archive).unwrap();

    assert_success(&ctx.nook(&["rmi", "prog:1"]));
    let out = ctx.nook(&["load", "-i", piped.to_str().unwrap()]);
    assert_eq!(assert_success(&out), "Loaded image: prog:1\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.ends_with(": Loaded\n") && stderr.lines().count() == 1,
        "{stderr:?}"
    );
    let out = ctx.nook(&["load", "-q", "-i", tar]);
    assert_eq!(assert_success(&out), "Loaded image: prog:1\n");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_success(&ctx.nook(&[
        "run",
        "--name",
        "prog-c",
        "prog:1",
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1024 count=2048 2>/dev/null",
    ]));
    let out = ctx.nook(&["commit", "prog-c", "prog:2"]);
    let stdout = assert_success(&out);
    assert!(
        stdout.starts_with("sha256:") && stdout.len() == 7 + 64 + 1 && stdout.ends_with('\n'),
        "{stdout:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Committed container prog-c as docker.io/library/prog:2\n"
    );
    let out = ctx.nook(&["commit", "-q", "prog-c"]);
    assert!(assert_success(&out).starts_with("sha256:"));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// On a terminal the same commands draw live lines (escapes to redraw), which -q silences.
#[test]
fn progress_draws_on_a_terminal_and_q_silences_it() {
    let ctx = TestContext::new();
    let work = imported(&ctx, "tprog:1");
    let tar = work.join("t.tar");
    let tar = tar.to_str().unwrap();
    let (code, shown) = ctx.nook_on_terminal(&["save", "-o", tar, "tprog:1"], &[]);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("Saved"), "{shown:?}");
    let (code, shown) = ctx.nook_on_terminal(&["save", "-q", "-o", tar, "tprog:1"], &[]);
    assert_eq!((code, shown.as_str()), (0, ""));
    let (code, shown) = ctx.nook_on_terminal(&["load", "-i", tar], &[]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("Already exists") && shown.contains("Loaded image: tprog:1"),
        "{shown:?}"
    );
    let (_, shown) = ctx.nook_on_terminal(&["load", "-q", "-i", tar], &[]);
    assert_eq!(shown.trim_end(), "Loaded image: tprog:1");
}
