//! `nook diff`: a container's changes to its image, on each storage driver, for exited and
//! running containers.

use crate::harness::context::assert_one_error_line;
use crate::harness::fixtures;
use crate::harness::{TestContext, assert_failure, assert_success};

/// Adds a tree, changes /etc/passwd, deletes a file and a directory tree of the image, and
/// deletes and re-creates /opq (an opaque directory in the upper layer).
const SCRIPT: &str = "mkdir -p /new/dir && echo x > /new/dir/file && echo more >> /etc/passwd \
                      && rm /home/app/secret && rm -r /data/dir \
                      && rm -r /opq && mkdir /opq && echo y > /opq/fresh";

/// What [`SCRIPT`] changes in [`fixtures::multi_layer`] (whose /opq holds only `new`: its
/// own top layer hides `old1` and `old2`).
const EXPECTED: &str = "C /data\nD /data/dir\nC /etc\nC /etc/passwd\nC /home\nC /home/app\n\
                        D /home/app/secret\nA /new\nA /new/dir\nA /new/dir/file\nC /opq\n\
                        A /opq/fresh\nD /opq/new\n";

fn ctx_with_image() -> (TestContext, String) {
    let ctx = TestContext::new();
    let image = fixtures::multi_layer().reference.clone();
    assert_success(&ctx.nook(&["pull", "-q", &image]));
    (ctx, image)
}

fn diff_after_script(driver: &str) {
    let (ctx, image) = ctx_with_image();
    assert_success(&ctx.nook(&[
        "run",
        "--name",
        "changed",
        "--storage-driver",
        driver,
        &image,
        "sh",
        "-c",
        SCRIPT,
    ]));
    assert_eq!(
        assert_success(&ctx.nook(&["diff", "changed"])),
        EXPECTED,
        "storage driver {driver}"
    );
    assert_eq!(
        assert_success(&ctx.nook(&["container", "diff", "changed"])),
        EXPECTED
    );
    let json: serde_json::Value = serde_json::from_str(&assert_success(
        &ctx.nook(&["diff", "--format", "json", "changed"]),
    ))
    .unwrap();
    assert_eq!(json[0], serde_json::json!({"Path": "/data", "Kind": 0}));
    assert_eq!(json[1], serde_json::json!({"Path": "/data/dir", "Kind": 2}));
    assert_eq!(json[7], serde_json::json!({"Path": "/new", "Kind": 1}));
    assert_eq!(json.as_array().unwrap().len(), EXPECTED.lines().count());
}

#[test]
fn diff_lists_added_changed_and_deleted_paths_on_overlay() {
    diff_after_script("overlay");
}

#[test]
fn diff_lists_added_changed_and_deleted_paths_on_fuse_overlayfs() {
    diff_after_script("fuse-overlayfs");
}

#[test]
fn diff_compares_the_vfs_copy_with_the_image() {
    diff_after_script("vfs");
}

#[test]
fn diff_of_an_unchanged_container_is_empty() {
    let (ctx, image) = ctx_with_image();
    assert_success(&ctx.nook(&["run", "--name", "same", &image, "true"]));
    assert_eq!(assert_success(&ctx.nook(&["diff", "same"])), "");
    assert_eq!(
        assert_success(&ctx.nook(&["diff", "--format", "json", "same"])),
        "[]\n"
    );
    assert_success(&ctx.nook(&["create", "--name", "fresh", &image]));
    assert_eq!(assert_success(&ctx.nook(&["diff", "fresh"])), "");
}

#[test]
fn diff_reads_a_running_container() {
    let (ctx, image) = ctx_with_image();
    assert_success(&ctx.nook(&[
        "run",
        "-d",
        "--name",
        "busy",
        &image,
        "sh",
        "-c",
        "echo x > /tmp/made && rm /data/keep && sleep 30",
    ]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let expected = "C /data\nD /data/keep\nC /tmp\nA /tmp/made\n";
    loop {
        let out = assert_success(&ctx.nook(&["diff", "busy"]));
        if out == expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "diff of the running container: {out:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_success(&ctx.nook(&["rm", "-f", "busy"]));
}

#[test]
fn diff_of_an_unknown_container_fails_with_one_error_line() {
    let ctx = TestContext::new();
    let err = assert_failure(&ctx.nook(&["diff", "no-such-container"]), 125);
    assert_one_error_line(&err, "no-such-container");
    let err = assert_failure(&ctx.nook(&["diff", "--format", "yaml", "x"]), 125);
    assert_one_error_line(&err, "yaml");
}
