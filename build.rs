//! Build facts for `nook version`: the compiler, the commit and its date.

use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=NOOK_RUSTC_VERSION={rustc_version}");
    let commit =
        output("git", &["rev-parse", "--short=7", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=NOOK_GIT_COMMIT={commit}");
    // The commit's date rather than the build's, so that a build can be reproduced.
    let built = output(
        "git",
        &[
            "log",
            "-1",
            "--format=%cd",
            "--date=format-local:%a %b %e %H:%M:%S %Y",
        ],
    )
    .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=NOOK_BUILT={built}");
    for path in ["HEAD", "refs/heads", "packed-refs"] {
        if let Some(p) = output("git", &["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
