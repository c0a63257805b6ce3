//! `registries.toml`: unqualified-search registries and mirrors, against the loopback registry.

use crate::harness::fixtures;
use crate::harness::{TestContext, assert_failure, assert_success, registry};

fn write_config(ctx: &TestContext, text: &str) {
    let dir = ctx.config.join("nook");
    assert_success(&ctx.run_as_user("/bin/mkdir", &["-p", dir.to_str().unwrap()]));
    let file = dir.join("registries.toml");
    let out = ctx
        .command_as_user("/bin/sh")
        .args(["-c", &format!("cat > {}", file.display())])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert_success(&out);
}

#[test]
fn unqualified_names_use_the_search_registries() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer();
    write_config(
        &ctx,
        &format!(
            "unqualified-search-registries = [\"{}\"]\n",
            registry().addr
        ),
    );
    let out = assert_success(&ctx.nook(&["pull", "-q", "fixtures/single-layer"]));
    assert_eq!(out.trim(), image.reference);
    // The short name finds the local image too.
    let id =
        assert_success(&ctx.nook(&["inspect", "--format", "{{.Id}}", "fixtures/single-layer"]));
    assert_eq!(id.trim(), image.config_digest.to_string());
}

#[test]
fn a_mirror_serves_a_registry_that_cannot_be_reached() {
    let ctx = TestContext::new();
    let image = fixtures::single_layer();
    write_config(
        &ctx,
        &format!(
            "[[registry]]\nlocation = \"registry.invalid\"\n[[registry.mirror]]\nlocation = \"{}\"\n",
            registry().addr
        ),
    );
    let out = assert_success(&ctx.nook(&["pull", "-q", "registry.invalid/fixtures/single-layer"]));
    assert_eq!(out.trim(), "registry.invalid/fixtures/single-layer:latest");
    let id = assert_success(&ctx.nook(&["images", "-q", "--no-trunc"]));
    assert_eq!(id.trim(), image.config_digest.to_string());
}

#[test]
fn blocked_registries_and_unknown_keys_are_reported() {
    let ctx = TestContext::new();
    write_config(
        &ctx,
        &format!(
            "[[registry]]\nlocation = \"{}\"\nblocked = true\n",
            registry().addr
        ),
    );
    let err = assert_failure(
        &ctx.nook(&["pull", &fixtures::single_layer().reference]),
        125,
    );
    assert!(err.contains("blocked"), "{err}");
    write_config(&ctx, "unqualified-search-registries = []\nmirrors = 1\n");
    let err = assert_failure(&ctx.nook(&["pull", "busybox"]), 125);
    assert!(
        err.contains("registries.toml") && err.contains("mirrors"),
        "{err}"
    );
}
