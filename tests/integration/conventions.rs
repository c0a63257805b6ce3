//! Command-line conventions: colour only on a terminal and never with NO_COLOR.

use crate::harness::{TestContext, assert_failure};

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
