//! Token (Bearer) authentication against the real registry, with the harness's token server
//! (see `harness/token_server.rs`): anonymous tokens for public repositories, `nook login` for
//! private ones, refused passwords, and one token per scope for a whole pull.

use std::sync::OnceLock;

use crate::harness::fixtures;
use crate::harness::registry::{AUTH_PASSWORD, AUTH_USER};
use crate::harness::{
    TestContext, assert_failure, assert_one_error_line, assert_success, token_registry,
};

/// Copies `src` into the token registry as `REPOSITORY:latest` (skopeo speaks token auth).
fn seed(src: &str, repository: &str) -> String {
    let dest = format!("{}/{repository}:latest", token_registry().addr);
    let creds = format!("{AUTH_USER}:{AUTH_PASSWORD}");
    fixtures::skopeo_copy(src, &dest, &["--dest-creds", &creds]);
    dest
}

/// `public/busybox` and `private/busybox`: the single-layer fixture, once per process.
fn busybox(public: bool) -> &'static str {
    static PUBLIC: OnceLock<String> = OnceLock::new();
    static PRIVATE: OnceLock<String> = OnceLock::new();
    let (cell, repository) = if public {
        (&PUBLIC, "public/busybox")
    } else {
        (&PRIVATE, "private/busybox")
    };
    cell.get_or_init(|| seed(&fixtures::single_layer().reference, repository))
}

fn login(ctx: &TestContext, password: &str) -> std::process::Output {
    ctx.nook_with_stdin(
        &[
            "login",
            "-u",
            AUTH_USER,
            "--password-stdin",
            &token_registry().addr,
        ],
        format!("{password}\n").as_bytes(),
    )
}

/// The token server's requests as text, for failure messages.
fn requests() -> String {
    format!("{:#?}", *token_registry().server.requests())
}

#[test]
fn anonymous_clients_get_public_repositories_only() {
    let ctx = TestContext::new();
    let public = busybox(true);
    let private = busybox(false);

    let before = token_registry().token_requests_for("public/busybox");
    assert_success(&ctx.nook(&["pull", "-q", public]));
    let anonymous = token_registry()
        .server
        .requests()
        .iter()
        .filter(|r| r.scopes.iter().any(|s| s.contains("public/busybox")))
        .skip(before)
        .all(|r| r.account.is_none());
    assert!(
        anonymous,
        "nook sent credentials it does not have:\n{}",
        requests()
    );
    assert!(
        token_registry().token_requests_for("public/busybox") > before,
        "no token was fetched:\n{}",
        requests()
    );

    let err = assert_failure(&ctx.nook(&["pull", private]), 125);
    assert_one_error_line(&err, "nook login");
    assert_one_error_line(&err, "private/busybox");
    let listed = assert_success(&ctx.nook(&["images", "--format", "{{.Repository}}"]));
    assert_eq!(
        listed.trim(),
        format!("{}/public/busybox", token_registry().addr)
    );
}

#[test]
fn login_with_the_token_server_then_private_pulls_until_logout() {
    let ctx = TestContext::new();
    let private = busybox(false);
    let auth_file = ctx.runtime.join("containers/auth.json");

    let err = assert_failure(&login(&ctx, "wrong"), 125);
    assert_one_error_line(&err, "refused the username or password");
    assert!(!auth_file.exists());

    let out = assert_success(&login(&ctx, AUTH_PASSWORD));
    assert!(out.contains("Login Succeeded"), "{out}");
    assert!(auth_file.exists());
    assert_success(&ctx.nook(&["pull", "-q", private]));

    assert_success(&ctx.nook(&["logout", &token_registry().addr]));
    assert_success(&ctx.nook(&["rmi", private]));
    let err = assert_failure(&ctx.nook(&["pull", private]), 125);
    assert_one_error_line(&err, "nook login");
}

#[test]
fn a_pull_asks_for_one_token_per_scope() {
    let ctx = TestContext::new();
    let repository = "private/multi-layer";
    let image = seed(&fixtures::multi_layer().reference, repository);
    assert_success(&login(&ctx, AUTH_PASSWORD));

    let before = token_registry().token_requests_for(repository);
    assert_success(&ctx.nook(&["pull", "-q", &image]));
    let asked = token_registry().token_requests_for(repository) - before;
    // The manifest, the config and three layers share the token of `repository:NAME:pull`
    // (plus, at most, one anonymous attempt).
    assert!(
        (1..=2).contains(&asked),
        "{asked} token requests for one pull:\n{}",
        requests()
    );
    let rootfs = assert_success(&ctx.nook(&["inspect", "--format", "{{json .RootFS}}", &image]));
    let rootfs: serde_json::Value = serde_json::from_str(&rootfs).unwrap();
    assert_eq!(
        rootfs["Layers"].as_array().map(Vec::len),
        Some(3),
        "{rootfs}"
    );
}
