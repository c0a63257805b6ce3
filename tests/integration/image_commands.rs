//! `images`, `tag`, `rmi`, `inspect`, `history`, `completion` and the man pages, as users see
//! them.

use crate::harness::fixtures;
use crate::harness::{TestContext, assert_failure, assert_success};

fn pulled(image: &str) -> TestContext {
    let ctx = TestContext::new();
    assert_success(&ctx.nook(&["pull", "-q", image]));
    ctx
}

#[test]
fn images_prints_dockers_table() {
    let image = fixtures::single_layer();
    let ctx = pulled(&image.reference);
    let out = assert_success(&ctx.nook(&["images"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let repo = &image.repository;
    let pad = |s: &str, w: usize| format!("{s:<w$}");
    let width = repo.len() + 3;
    assert_eq!(
        lines[0],
        format!(
            "{}TAG       IMAGE ID       CREATED       SIZE",
            pad("REPOSITORY", width)
        )
    );
    let row = lines[1];
    assert!(
        row.starts_with(&format!(
            "{}latest    {}   ",
            pad(repo, width),
            image.config_digest.short()
        )),
        "{row}"
    );
    assert!(
        row.contains(" years ago ") || row.contains(" months ago "),
        "{row}"
    );
    assert!(row.trim_end().ends_with("MB"), "{row}");

    let quiet = assert_success(&ctx.nook(&["images", "-q"]));
    assert_eq!(quiet, format!("{}\n", image.config_digest.short()));
    let full = assert_success(&ctx.nook(&["images", "-q", "--no-trunc"]));
    assert_eq!(full, format!("{}\n", image.config_digest));
    let formatted = assert_success(&ctx.nook(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert_eq!(formatted, format!("{}\n", image.reference));
    let json = assert_success(&ctx.nook(&["images", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["Tag"], "latest");
    assert_eq!(v["ID"], image.config_digest.short());
    let digests = assert_success(&ctx.nook(&["images", "--digests"]));
    assert!(digests.lines().next().unwrap().contains("DIGEST"));
    assert!(
        digests.contains(&image.manifest_digest.to_string()),
        "{digests}"
    );
    let table = assert_success(&ctx.nook(&["images", "--format", "table {{.ID}}\\t{{.Tag}}"]));
    assert_eq!(
        table,
        format!(
            "IMAGE ID       TAG\n{}   latest\n",
            image.config_digest.short()
        )
    );
    // A filter that matches nothing prints only the header.
    let none = assert_success(&ctx.nook(&["images", "no-such-repo"]));
    assert_eq!(none.lines().count(), 1);
}

#[test]
fn tag_and_rmi_untag_then_delete() {
    let image = fixtures::single_layer();
    let ctx = pulled(&image.reference);
    assert_success(&ctx.nook(&["tag", &image.reference, "mine:1"]));
    assert_success(&ctx.nook(&[
        "tag",
        image.config_digest.short(),
        "localhost:5000/team/mine",
    ]));
    let names = assert_success(&ctx.nook(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    for expected in [
        "mine:1",
        "localhost:5000/team/mine:latest",
        image.reference.as_str(),
    ] {
        assert!(
            names.lines().any(|l| l == expected),
            "{expected} missing from {names}"
        );
    }
    // By ID while it has several names: refused without -f.
    let err = assert_failure(&ctx.nook(&["rmi", image.config_digest.short()]), 125);
    assert!(err.contains("multiple repositories"), "{err}");
    assert_eq!(err.lines().count(), 1, "one error line: {err}");

    let out = assert_success(&ctx.nook(&["rmi", "mine:1"]));
    assert_eq!(out, "Untagged: mine:1\n");
    assert_success(&ctx.nook(&["rmi", "localhost:5000/team/mine"]));
    let out = assert_success(&ctx.nook(&["rmi", &image.reference]));
    assert!(
        out.contains(&format!("Deleted: {}", image.config_digest)),
        "{out}"
    );
    assert_eq!(assert_success(&ctx.nook(&["images", "-q"])), "");
    let layers: Vec<_> = std::fs::read_dir(ctx.data.join("nook/layers"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(layers.is_empty(), "layers left behind: {layers:?}");
    assert_eq!(
        std::fs::read_dir(ctx.data.join("nook/layers/.trash"))
            .unwrap()
            .count(),
        0
    );

    let err = assert_failure(&ctx.nook(&["rmi", "nothing-here"]), 125);
    assert!(
        err.starts_with("Error: ") && err.contains("no such image: nothing-here"),
        "{err}"
    );
}

#[test]
fn rmi_force_removes_every_name_and_keeps_shared_layers() {
    let single = fixtures::single_layer();
    let multi = fixtures::multi_layer();
    let ctx = pulled(&single.reference);
    assert_success(&ctx.nook(&["pull", "-q", &multi.reference]));
    assert_success(&ctx.nook(&["tag", &multi.reference, "other:2"]));
    let out = assert_success(&ctx.nook(&["rmi", "-f", multi.config_digest.short()]));
    assert!(out.contains("Untagged: other:2"), "{out}");
    assert!(out.contains("Deleted:"), "{out}");
    // The single-layer image still has its (shared) layer.
    let dirs = crate::pull::layer_dirs(&ctx, &single.reference);
    assert!(dirs[0].join("bin/busybox").is_file());
}

#[test]
fn inspect_and_history() {
    let image = fixtures::multi_layer();
    let ctx = pulled(&image.reference);
    let out = assert_success(&ctx.nook(&["inspect", &image.reference]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let first = &v[0];
    assert_eq!(first["Id"], image.config_digest.to_string());
    assert_eq!(first["RepoTags"][0], image.reference);
    assert_eq!(
        first["RepoDigests"][0],
        format!("{}@{}", image.repository, image.manifest_digest)
    );
    assert_eq!(first["Architecture"], image.architecture);
    assert_eq!(first["Os"], "linux");
    assert_eq!(first["Config"]["Cmd"][0], "sh");
    let layers = first["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[0], image.layers[0].diff_id.to_string());
    let id = assert_success(&ctx.nook(&[
        "inspect",
        "--format",
        "{{.Id}}",
        image.config_digest.short(),
    ]));
    assert_eq!(id.trim(), image.config_digest.to_string());
    let err = assert_failure(&ctx.nook(&["inspect", "nope"]), 125);
    assert!(err.contains("no such object: nope"), "{err}");

    let history = assert_success(&ctx.nook(&["history", &image.reference]));
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 4, "{history}");
    assert!(lines[0].starts_with("IMAGE          CREATED"), "{history}");
    assert!(
        lines[1].starts_with(image.config_digest.short()),
        "{history}"
    );
    assert!(lines[1].contains("nook test fixture, layer 3"), "{history}");
    assert!(lines[3].starts_with("<missing>"), "{history}");
    let quiet = assert_success(&ctx.nook(&["history", "-q", &image.reference]));
    assert_eq!(quiet.lines().count(), 3);
}

#[test]
fn completion_scripts_name_the_commands() {
    let ctx = TestContext::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = assert_success(&ctx.nook(&["completion", shell]));
        // The script registers completion for `nook` and calls nook back for the words
        // (tests/integration/completion.rs drives it).
        assert!(
            out.contains("nook") && out.contains("NOOK_COMPLETE"),
            "{shell}"
        );
    }
    let err = assert_failure(&ctx.nook(&["completion", "tcsh"]), 125);
    assert!(err.contains("tcsh"), "{err}");
}

#[test]
fn help_has_examples_and_bad_flags_exit_125() {
    let ctx = TestContext::new();
    let help = assert_success(&ctx.nook(&["pull", "--help"]));
    assert!(help.contains("Examples:"), "{help}");
    assert_failure(&ctx.nook(&["images", "--no-such-flag"]), 125);
}
