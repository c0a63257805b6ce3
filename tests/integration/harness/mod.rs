//! The integration-test harness.
//!
//! - [`TestContext`]: private XDG dirs owned by the test user, and `nook` run with a clean
//!   environment as that user (through `setpriv` when the test process is root — nook never
//!   runs as real root in tests).
//! - [`registry()`]: Debian's `docker-registry` on 127.0.0.1, once per test process; also
//!   [`auth_registry`](registry::auth_registry) (htpasswd), [`tls_registry()`] (HTTPS with a
//!   self-signed certificate) and [`token_registry()`] (token auth, with the harness's own
//!   token server, [`token_server`]).
//! - [`fixtures`]: OCI images built from `busybox-static` and pushed with `skopeo`.
//! - [`scratch::Scratch`]: nook run as the test user in a mount namespace root made, where
//!   fake files, device nodes and small file systems break the set-up (doctor's tests).
//! - [`must_work`] / [`require`]: a prerequisite that is missing fails under `CI=true` or
//!   `NOOK_MUST_WORK=1`, and is reported as `SKIPPED: reason` otherwise.

// Test modules use different parts of the harness; not every helper is used by every build.
#![allow(dead_code, unused_imports)]

pub mod context;
pub mod fixtures;
pub mod hostile_peer;
pub mod registry;
pub mod scratch;
pub mod token_server;

pub use context::{
    TestContext, assert_failure, assert_one_error_line, assert_success, must_work, require,
};
pub use registry::{Registry, TokenRegistry, registry, tls_registry, token_registry};
