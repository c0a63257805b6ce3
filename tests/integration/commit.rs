//! `nook commit`: a container's changes become an image that runs, keeps owners, modes and
//! links, carries the container's config and `--change`, and never sees what the container
//! does afterwards.

use crate::harness::context::assert_one_error_line;
use crate::harness::fixtures;
use crate::harness::{TestContext, assert_failure, assert_success};

/// Adds files with owners, modes and links, changes /etc/passwd, deletes a file and a
/// directory tree of the image, and replaces /opq (an opaque directory).
const SCRIPT: &str = "mkdir -p /new/dir && echo x > /new/dir/file && chown 1234:5678 /new/dir/file \
                      && chmod 640 /new/dir/file && ln -s dir/file /new/link && ln /new/dir/file /new/hard \
                      && echo more >> /etc/passwd && rm /home/app/secret && rm -r /data/dir \
                      && rm -r /opq && mkdir /opq && echo y > /opq/fresh";

const CHECK: &str = "stat -c '%u %g %a %h' /new/dir/file; readlink /new/link; \
                     [ /new/hard -ef /new/dir/file ] && echo hard; tail -n 1 /etc/passwd; \
                     [ -e /home/app/secret ] || echo secret-gone; ls /data; ls /opq; echo $GREETING";

fn ctx_with_image() -> (TestContext, String) {
    let ctx = TestContext::new();
    let image = fixtures::multi_layer().reference.clone();
    assert_success(&ctx.nook(&["pull", "-q", &image]));
    (ctx, image)
}

fn commit_round_trip(driver: &str) {
    let (ctx, image) = ctx_with_image();
    assert_success(&ctx.nook(&[
        "run",
        "--name",
        "changed",
        "--storage-driver",
        driver,
        "-e",
        "GREETING=hi",
        &image,
        "sh",
        "-c",
        SCRIPT,
    ]));
    let id = assert_success(&ctx.nook(&[
        "commit",
        "-m",
        "the changes",
        "-a",
        "Ada <ada@example.org>",
        "-c",
        "LABEL stage=test",
        "changed",
        "committed:1",
    ]));
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let images = assert_success(&ctx.nook(&["images"]));
    assert!(
        images
            .lines()
            .any(|l| l.contains("committed") && l.contains(&id[7..19])),
        "{images}"
    );
    // Checked on overlay: the vfs driver copies each hard link as a file of its own.
    let out = assert_success(&ctx.nook(&[
        "run",
        "--rm",
        "--storage-driver",
        "overlay",
        "committed:1",
        "sh",
        "-c",
        CHECK,
    ]));
    assert_eq!(
        out, "1234 5678 640 2\ndir/file\nhard\nmore\nsecret-gone\nkeep\nfresh\nhi\n",
        "storage driver {driver}"
    );
    // The container's config and --change, the message and author in the image.
    let inspect: serde_json::Value =
        serde_json::from_str(&assert_success(&ctx.nook(&["inspect", "committed:1"]))).unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["Labels"]["stage"], "test", "{inspect}");
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING=hi"),
        "{inspect}"
    );
    assert_eq!(inspect[0]["Author"], "Ada <ada@example.org>", "{inspect}");
    let history = assert_success(&ctx.nook(&["history", "--no-trunc", "committed:1"]));
    assert!(history.contains("the changes"), "{history}");
    // A container of the new image starts with nothing changed.
    assert_success(&ctx.nook(&[
        "run",
        "--name",
        "fresh",
        "--storage-driver",
        driver,
        "committed:1",
        "true",
    ]));
    assert_eq!(assert_success(&ctx.nook(&["diff", "fresh"])), "");
}

#[test]
fn commit_keeps_files_owners_links_and_config_on_overlay() {
    commit_round_trip("overlay");
}

#[test]
fn commit_on_fuse_overlayfs() {
    commit_round_trip("fuse-overlayfs");
}

#[test]
fn commit_on_vfs() {
    commit_round_trip("vfs");
}

#[test]
fn a_running_container_commits_what_it_has_so_far() {
    let (ctx, image) = ctx_with_image();
    assert_success(&ctx.nook(&[
        "run",
        "-d",
        "--name",
        "busy",
        &image,
        "sh",
        "-c",
        "echo one > /before; sleep 600",
    ]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !assert_success(&ctx.nook(&["diff", "busy"])).contains("/before") {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never wrote /before"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Untagged, and with the container paused meanwhile.
    let id = assert_success(&ctx.nook(&["commit", "-q", "-p", "busy"]));
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_success(&ctx.nook(&["exec", "busy", "sh", "-c", "echo two > /after"]));
    let images = assert_success(&ctx.nook(&["images"]));
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("<none>") && l.contains(&id.trim()[7..19])),
        "{images}"
    );
    // Still running, not left stopped by the pause.
    assert_success(&ctx.nook(&["exec", "busy", "true"]));
    let out = assert_success(&ctx.nook(&[
        "run",
        "--rm",
        id.trim(),
        "sh",
        "-c",
        "cat /before; [ -e /after ] || echo no-after",
    ]));
    assert_eq!(out, "one\nno-after\n");
    assert_success(&ctx.nook(&["rm", "-f", "busy"]));
}

#[test]
fn commit_refusals_leave_the_store_as_it_was() {
    let (ctx, image) = ctx_with_image();
    assert_success(&ctx.nook(&["run", "--name", "c", &image, "true"]));
    let before = assert_success(&ctx.nook(&["images", "-q"]));
    let err = assert_failure(&ctx.nook(&["commit", "nosuch", "x:1"]), 125);
    assert_one_error_line(&err, "nosuch");
    let err = assert_failure(&ctx.nook(&["commit", "-c", "RUN make", "c", "x:1"]), 125);
    assert_one_error_line(&err, "RUN make");
    let err = assert_failure(&ctx.nook(&["commit", "c", "Bad:Name:1"]), 125);
    assert_one_error_line(&err, "invalid reference");
    assert_eq!(assert_success(&ctx.nook(&["images", "-q"])), before);
    let staging = ctx.data.join("nook/layers/.staging");
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
}
