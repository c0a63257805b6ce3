//! A registry serving HTTPS with a self-signed certificate for 127.0.0.1: loopback registries
//! are insecure by default (HTTPS without verification first), `--tls-verify=false` allows the
//! same, and `--tls-verify=true` refuses the certificate with advice.

use std::sync::OnceLock;

use crate::harness::fixtures;
use crate::harness::registry::{certificate_der, v2_status, v2_status_tls};
use crate::harness::{
    TestContext, assert_failure, assert_one_error_line, assert_success, tls_registry,
};

/// The single-layer fixture, copied once into the TLS registry as `fixtures/busybox:latest`.
fn tls_image() -> &'static str {
    static REFERENCE: OnceLock<String> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dest = format!("{}/fixtures/busybox:latest", tls_registry().addr);
        fixtures::skopeo_copy(&fixtures::single_layer().reference, &dest, &[]);
        dest
    })
}

#[track_caller]
fn assert_pulled(ctx: &TestContext, reference: &str) {
    let listed = assert_success(&ctx.nook(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(
        listed.lines().any(|l| l == reference),
        "{reference} not in `nook images`:\n{listed}"
    );
}

#[test]
fn a_loopback_registry_with_a_self_signed_certificate_is_pulled_over_https() {
    let ctx = TestContext::new();
    let image = tls_image();
    assert_success(&ctx.nook(&["pull", "-q", image]));
    assert_pulled(&ctx, image);
    // So it went over HTTPS: the registry speaks nothing else (to plain HTTP it answers 400,
    // "Client sent an HTTP request to an HTTPS server", or resets the connection).
    let reg = tls_registry();
    let der = certificate_der(reg.certificate.as_deref().unwrap());
    assert_eq!(v2_status_tls(&reg.addr, &der).as_deref(), Some("200"));
    assert_ne!(v2_status(&reg.addr).as_deref(), Some("200"));
}

#[test]
fn tls_verify_false_pulls_from_the_self_signed_registry() {
    let ctx = TestContext::new();
    let image = tls_image();
    assert_success(&ctx.nook(&["pull", "-q", "--tls-verify=false", image]));
    assert_pulled(&ctx, image);
}

#[test]
fn tls_verify_true_refuses_the_self_signed_certificate() {
    let ctx = TestContext::new();
    let image = tls_image();
    let err = assert_failure(&ctx.nook(&["pull", "--tls-verify=true", image]), 125);
    assert_one_error_line(&err, "--tls-verify=false");
    assert_one_error_line(&err, &format!("TLS connection to {}", tls_registry().addr));
    assert_one_error_line(&err, "certificate");
    assert_eq!(assert_success(&ctx.nook(&["images", "-q"])), "");

    let err = assert_failure(
        &ctx.nook_with_stdin(
            &[
                "login",
                "--tls-verify=true",
                "-u",
                "someone",
                "--password-stdin",
                &tls_registry().addr,
            ],
            b"whatever\n",
        ),
        125,
    );
    assert_one_error_line(&err, "--tls-verify=false");
    assert_one_error_line(&err, &format!("TLS connection to {}", tls_registry().addr));
    assert!(!ctx.runtime.join("containers/auth.json").exists());
}
