//! Issue 7's output conventions: every `--format` field of `ps`, `images`, `history`,
//! `system df` and `version`, some of `info` and `inspect`, `table` headers and alignment,
//! `json`, `-q`, `--no-trunc`, errors for unknown fields and functions, and Docker's
//! management forms (`nook container ls`, `nook image ls`…).

use nook::format::{human_size, human_size_precise};

use crate::harness::fixtures;
use crate::harness::{TestContext, assert_failure, assert_one_error_line, assert_success};

/// A store holding the single-layer image, the volume `cache` and two containers: `fresh`
/// (created, two labels, mounting `cache`) and `done` (ran `sh -c 'exit 3'`).
struct Setup {
    ctx: TestContext,
    image: &'static fixtures::Image,
    fresh: String,
    done: String,
}

fn setup() -> Setup {
    let image = fixtures::single_layer();
    let ctx = TestContext::new();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let fresh = assert_success(&ctx.nook(&[
        "create",
        "--name",
        "fresh",
        "--network",
        "none",
        "-l",
        "tier=front",
        "-l",
        "com.example.team=core",
        "-v",
        "cache:/cache",
        &image.reference,
        "sleep",
        "60",
    ]))
    .trim()
    .to_string();
    let out = ctx.nook(&[
        "run",
        "--name",
        "done",
        "--network",
        "none",
        &image.reference,
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // No start needed: as Docker's, `create` makes the named volume (`cache`, counted below).
    let done = assert_success(&ctx.nook(&["inspect", "-f", "{{.Id}}", "done"]))
        .trim()
        .to_string();
    Setup {
        ctx,
        image,
        fresh,
        done,
    }
}

impl Setup {
    fn out(&self, args: &[&str]) -> String {
        assert_success(&self.ctx.nook(args))
    }

    /// `ps -a --format FORMAT` for one container, found by name.
    fn ps_field(&self, name: &str, format: &str) -> String {
        let all = self.out(&["ps", "-a", "--format", &format!("{{{{.Names}}}}|{format}")]);
        all.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}|")))
            .unwrap_or_else(|| panic!("{name} not in:\n{all}"))
            .to_string()
    }

    fn image_size(&self) -> u64 {
        self.out(&[
            "inspect",
            "--type",
            "image",
            "-f",
            "{{.Size}}",
            &self.image.reference,
        ])
        .trim()
        .parse()
        .unwrap()
    }
}

#[test]
fn ps_format_fields() {
    let s = setup();
    assert_eq!(s.ps_field("fresh", "{{.ID}}"), &s.fresh[..12]);
    assert_eq!(s.ps_field("done", "{{.ID}}"), &s.done[..12]);
    assert_eq!(s.ps_field("fresh", "{{.Image}}"), s.image.reference);
    assert_eq!(s.ps_field("fresh", "{{.Command}}"), "\"sleep 60\"");
    assert_eq!(s.ps_field("done", "{{.Command}}"), "\"sh -c 'exit 3'\"");
    let created = s.out(&["inspect", "-f", "{{.Created}}", "fresh"]);
    let created_at = s.ps_field("fresh", "{{.CreatedAt}}");
    assert!(
        created_at.starts_with(&created[..10]) && created_at.ends_with(" +0000 UTC"),
        "{created_at} vs {created}"
    );
    let running_for = s.ps_field("fresh", "{{.RunningFor}}");
    assert!(
        running_for.ends_with(" ago")
            && (running_for.contains("second") || running_for.contains("minute")),
        "{running_for}"
    );
    assert_eq!(s.ps_field("fresh", "{{.Status}}"), "Created");
    let status = s.ps_field("done", "{{.Status}}");
    assert!(
        status.starts_with("Exited (3) ") && status.ends_with(" ago"),
        "{status}"
    );
    assert_eq!(s.ps_field("fresh", "{{.State}}"), "created");
    assert_eq!(s.ps_field("done", "{{.State}}"), "exited");
    assert_eq!(s.ps_field("fresh", "{{.Ports}}"), "");
    assert_eq!(s.ps_field("fresh", "{{.Names}}"), "fresh");
    let labels = s.ps_field("fresh", "{{.Labels}}");
    assert!(
        labels.contains("tier=front") && labels.contains("com.example.team=core"),
        "{labels}"
    );
    assert_eq!(s.ps_field("done", "{{.Labels}}"), "");
    assert_eq!(s.ps_field("fresh", "{{.Label \"tier\"}}"), "front");
    assert_eq!(
        s.ps_field("fresh", "{{.Label \"com.example.team\"}}"),
        "core"
    );
    assert_eq!(s.ps_field("fresh", "{{.Label \"absent\"}}"), "");
    assert_eq!(s.ps_field("fresh", "{{.LocalVolumes}}"), "1");
    assert_eq!(s.ps_field("done", "{{.LocalVolumes}}"), "0");
    assert_eq!(s.ps_field("fresh", "{{.Mounts}}"), "cache");
    assert_eq!(s.ps_field("fresh", "{{.Networks}}"), "none");
    // As Docker, a template showing the size computes it, with -s or without.
    let virtual_size = format!("(virtual {})", human_size(s.image_size()));
    for args in [&["ps", "-a", "-s"][..], &["ps", "-a"][..]] {
        let sized = s.out(&[args, &["--format", "{{.Names}} {{.Size}}"]].concat());
        assert_eq!(sized.lines().count(), 2, "{sized}");
        for line in sized.lines() {
            assert!(line.ends_with(&virtual_size), "{line} vs {virtual_size}");
        }
    }
    assert_eq!(
        s.ps_field("fresh", "{{json .Size}}"),
        format!("\"0B {virtual_size}\"")
    );
    // Functions and control structures over the rows.
    assert_eq!(s.ps_field("fresh", "{{upper .Names}}"), "FRESH");
    assert_eq!(s.ps_field("fresh", "{{.Names | title}}"), "Fresh");
    assert_eq!(s.ps_field("fresh", "{{truncate .ID 4}}"), &s.fresh[..4]);
    assert_eq!(
        s.ps_field(
            "done",
            "{{if eq .State \"exited\"}}stopped{{else}}up{{end}}"
        ),
        "stopped"
    );
    assert_eq!(
        s.ps_field("fresh", "{{printf \"%-8s|\" .State}}"),
        "created |"
    );
    assert_eq!(
        s.ps_field("fresh", "{{join (split .Labels \",\") \";\"}}")
            .split(';')
            .count(),
        2
    );
}

#[test]
fn ps_table_json_quiet_and_no_trunc() {
    let s = setup();
    let table = s.out(&[
        "ps",
        "-a",
        "--format",
        "table {{.Names}}\\t{{.State}}\\t{{.ID}}",
    ]);
    let lines: Vec<&str> = table.lines().collect();
    // Docker's tabwriter: columns at least 10 wide, 3 spaces of padding.
    assert_eq!(lines[0], "NAMES     STATE     CONTAINER ID");
    assert!(
        lines.contains(&format!("fresh     created   {}", &s.fresh[..12]).as_str()),
        "{table}"
    );
    assert!(
        lines.contains(&format!("done      exited    {}", &s.done[..12]).as_str()),
        "{table}"
    );
    // `table` alone is the default table.
    let default = s.out(&["ps", "-a", "--format", "table"]);
    assert_eq!(default, s.out(&["ps", "-a"]));
    assert!(default.starts_with("CONTAINER ID   IMAGE "), "{default}");
    // `json`: one object a line, every field.
    let json = s.out(&["ps", "-a", "--format", "json"]);
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "Command",
            "CreatedAt",
            "ID",
            "Image",
            "Labels",
            "LocalVolumes",
            "Mounts",
            "Names",
            "Networks",
            "Ports",
            "RunningFor",
            "Size",
            "State",
            "Status"
        ]
    );
    assert_eq!(s.out(&["ps", "-a", "--format", "{{json .}}"]), json);
    // -q and --no-trunc.
    let quiet = s.out(&["ps", "-a", "-q"]);
    let mut ids: Vec<&str> = quiet.lines().collect();
    ids.sort_unstable();
    let mut want = vec![&s.fresh[..12], &s.done[..12]];
    want.sort_unstable();
    assert_eq!(ids, want);
    let full = s.out(&["ps", "-a", "-q", "--no-trunc"]);
    assert!(
        full.lines().any(|l| l == s.fresh) && full.lines().any(|l| l == s.done),
        "{full}"
    );
    assert_eq!(s.ps_field("fresh", "{{.ID}}").len(), 12);
    let untruncated = s.out(&["ps", "-a", "--no-trunc", "--format", "{{.Names}} {{.ID}}"]);
    assert!(
        untruncated.contains(&format!("fresh {}", s.fresh)),
        "{untruncated}"
    );
    // -q with --format: the IDs, and Docker's warning.
    let both = s.ctx.nook(&["ps", "-a", "-q", "--format", "{{.Names}}"]);
    assert_eq!(assert_success(&both), quiet);
    assert!(
        String::from_utf8_lossy(&both.stderr).contains(
            "WARNING: Ignoring custom format, because both --format and --quiet are set."
        ),
        "{both:?}"
    );
    // Only running containers without -a: none here.
    assert_eq!(s.out(&["ps", "-q"]), "");
}

#[test]
fn images_format_fields() {
    let s = setup();
    let image = s.image;
    let field = |f: &str| {
        s.out(&["images", "--format", f])
            .trim_end_matches('\n')
            .to_string()
    };
    assert_eq!(field("{{.Repository}}"), image.repository);
    assert_eq!(field("{{.Tag}}"), "latest");
    assert_eq!(field("{{.ID}}"), image.config_digest.short());
    assert_eq!(field("{{.Digest}}"), image.manifest_digest.to_string());
    assert_eq!(field("{{.CreatedAt}}"), "2023-11-14 22:13:20 +0000 UTC");
    let since = field("{{.CreatedSince}}");
    assert!(since.ends_with(" years ago"), "{since}");
    let size = human_size(s.image_size());
    assert_eq!(field("{{.Size}}"), size);
    assert_eq!(field("{{.VirtualSize}}"), size);
    assert_eq!(field("{{.SharedSize}}"), "N/A");
    assert_eq!(field("{{.UniqueSize}}"), "N/A");
    assert_eq!(field("{{.Containers}}"), "N/A");
    let table = s.out(&[
        "images",
        "--format",
        "table {{.Tag}}\\t{{.Size}}\\t{{.VirtualSize}}",
    ]);
    assert_eq!(
        table,
        format!(
            "TAG       SIZE      VIRTUAL SIZE\nlatest    {size}{}{size}\n",
            " ".repeat(10usize.max(size.len() + 3) - size.len())
        )
    );
    let json: serde_json::Value = serde_json::from_str(&field("json")).unwrap();
    assert_eq!(json["Repository"], image.repository.as_str());
    assert_eq!(json["Size"], size.as_str());
    assert_eq!(field("{{.ID}}"), s.out(&["images", "-q"]).trim());
    assert_eq!(
        s.out(&["images", "--no-trunc", "--format", "{{.ID}}"])
            .trim(),
        image.config_digest.to_string()
    );
    assert_eq!(
        s.out(&["images", "-q", "--no-trunc"]).trim(),
        image.config_digest.to_string()
    );
}

#[test]
fn history_format_fields() {
    let image = fixtures::multi_layer();
    let ctx = TestContext::new();
    assert_success(&ctx.nook(&["pull", "-q", &image.reference]));
    let field = |f: &str| assert_success(&ctx.nook(&["history", "--format", f, &image.reference]));
    let short = image.config_digest.short().to_string();
    assert_eq!(field("{{.ID}}"), format!("{short}\n<missing>\n<missing>\n"));
    assert_eq!(
        field("{{.CreatedBy}}"),
        "nook test fixture, layer 3\nnook test fixture, layer 2\nnook test fixture, layer 1\n"
    );
    assert_eq!(field("{{.CreatedAt}}"), "2023-11-14T22:13:20Z\n".repeat(3));
    assert!(
        field("{{.CreatedSince}}")
            .lines()
            .all(|l| l.ends_with(" years ago"))
    );
    assert_eq!(field("{{.Comment}}"), "\n\n\n");
    let sizes = field("{{.Size}}");
    let sizes: Vec<&str> = sizes.lines().collect();
    assert_eq!(sizes.len(), 3);
    assert!(sizes.iter().all(|s| s.ends_with('B')), "{sizes:?}");
    let raw = assert_success(&ctx.nook(&[
        "history",
        "-H=false",
        "--format",
        "{{.Size}}",
        &image.reference,
    ]));
    let raw: Vec<u64> = raw.lines().map(|l| l.parse().unwrap()).collect();
    let human: Vec<String> = raw.iter().map(|b| human_size(*b)).collect();
    assert_eq!(human, sizes);
    let total: u64 = raw.iter().sum();
    let inspected = assert_success(&ctx.nook(&["inspect", "-f", "{{.Size}}", &image.reference]));
    assert_eq!(total, inspected.trim().parse::<u64>().unwrap());
    let table = field("table {{.ID}}\\t{{.CreatedBy}}");
    assert_eq!(
        table.lines().next().unwrap(),
        format!("IMAGE{}CREATED BY", " ".repeat(15 - 5))
    );
    assert_eq!(
        assert_success(&ctx.nook(&["history", "-q", &image.reference])),
        format!("{short}\n<missing>\n<missing>\n")
    );
    assert_eq!(
        assert_success(&ctx.nook(&["history", "-q", "--no-trunc", &image.reference])),
        format!("{}\n<missing>\n<missing>\n", image.config_digest)
    );
    let json = field("json");
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["CreatedBy"], "nook test fixture, layer 3");
    // The management form.
    assert_eq!(
        assert_success(&ctx.nook(&["image", "history", "--format", "{{.ID}}", &image.reference])),
        field("{{.ID}}")
    );
}

#[test]
fn system_df_format_fields() {
    let s = setup();
    let df = |f: &str| s.out(&["system", "df", "--format", f]);
    assert_eq!(df("{{.Type}}"), "Images\nContainers\nLocal Volumes\n");
    assert_eq!(df("{{.TotalCount}}"), "1\n2\n1\n");
    assert_eq!(df("{{.Active}}"), "1\n0\n1\n");
    let sizes = df("{{.Size}}");
    let sizes: Vec<&str> = sizes.lines().collect();
    assert_eq!(sizes[0], human_size_precise(s.image_size()));
    let reclaimable = df("{{.Reclaimable}}");
    let reclaimable: Vec<&str> = reclaimable.lines().collect();
    // The image is used, the volume is mounted; the stopped containers can all go.
    assert_eq!(reclaimable[0], "0B (0%)");
    if sizes[1] == "0B" {
        assert_eq!(reclaimable[1], "0B");
    } else {
        assert_eq!(reclaimable[1], format!("{} (100%)", sizes[1]));
    }
    let table = df("table {{.Type}}\\t{{.TotalCount}}");
    assert_eq!(
        table,
        "TYPE            TOTAL\nImages          1\nContainers      2\nLocal Volumes   1\n"
    );
    assert_eq!(df("table"), s.out(&["system", "df"]));
    let json = df("json");
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["Type"], "Images");
    assert_eq!(rows[1]["TotalCount"], "2");
    // -v: one value holding the lists.
    let verbose = s.out(&[
        "system",
        "df",
        "-v",
        "--format",
        "{{range .Images}}{{.Tag}} {{.Containers}}{{end}}|{{range .Containers}}{{.Names}},{{end}}|{{range .Volumes}}{{.Name}} {{.Links}}{{end}}",
    ]);
    let parts: Vec<&str> = verbose.trim_end().split('|').collect();
    assert_eq!(parts[0], "latest 2");
    assert!(
        parts[1].contains("fresh,") && parts[1].contains("done,"),
        "{verbose}"
    );
    assert_eq!(parts[2], "cache 1");
    let verbose_json: serde_json::Value =
        serde_json::from_str(&s.out(&["system", "df", "-v", "--format", "json"])).unwrap();
    assert_eq!(
        verbose_json["Images"][0]["ID"],
        s.image.config_digest.short()
    );
    let err = assert_failure(
        &s.ctx.nook(&["system", "df", "--format", "{{.Total}}"]),
        125,
    );
    assert_one_error_line(
        &err,
        "unknown field `.Total` (fields: .Active, .Reclaimable, .Size, .TotalCount, .Type)",
    );
}

#[test]
fn version_format_fields() {
    let ctx = TestContext::new();
    let v = |f: &str| assert_success(&ctx.nook(&["version", "--format", f]));
    assert_eq!(
        v("{{.Client.Version}}"),
        format!("{}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(v("{{.Client.ApiVersion}}"), "n/a\n");
    assert_eq!(
        v("{{.Client.Os}}/{{.Client.Arch}}"),
        format!("linux/{}\n", fixtures::host_arch())
    );
    let rust = v("{{.Client.RustVersion}}");
    assert!(
        rust.trim().split('.').all(|p| p.parse::<u32>().is_ok()),
        "{rust}"
    );
    let commit = v("{{.Client.GitCommit}}");
    assert!(!commit.trim().is_empty());
    assert!(!v("{{.Client.BuildTime}}").trim().is_empty());
    let json: serde_json::Value = serde_json::from_str(&v("json")).unwrap();
    assert_eq!(json["Client"]["Version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["Client"]["GitCommit"], commit.trim());
    let text = assert_success(&ctx.nook(&["version"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Client:");
    assert_eq!(
        lines[1],
        format!(" Version:           {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(lines[2], " API version:       n/a");
    assert_eq!(lines[3], format!(" Rust version:      {}", rust.trim()));
    assert_eq!(lines[4], format!(" Git commit:        {}", commit.trim()));
    assert_eq!(
        lines[6],
        format!(" OS/Arch:           linux/{}", fixtures::host_arch())
    );
    assert_eq!(
        assert_success(&ctx.nook(&["--version"])),
        format!("nook {}\n", env!("CARGO_PKG_VERSION"))
    );
    let err = assert_failure(&ctx.nook(&["version", "--format", "{{.Client.Nope}}"]), 125);
    assert_one_error_line(&err, "unknown field `.Nope`");
}

#[test]
fn info_and_inspect_templates() {
    let s = setup();
    let info = |f: &str| s.out(&["info", "--format", f]);
    assert_eq!(
        info("{{.Store.Root}}"),
        format!("{}\n", s.ctx.data.join("nook").display())
    );
    assert_eq!(info("{{.Store.Images}} {{.Store.Containers}}"), "1 2\n");
    assert_eq!(
        info("{{.Host.Arch}}"),
        format!("{}\n", fixtures::host_arch())
    );
    assert_eq!(
        info("{{.Version.Nook}}"),
        format!("{}\n", env!("CARGO_PKG_VERSION"))
    );
    let host: serde_json::Value = serde_json::from_str(&info("{{json .Host}}")).unwrap();
    assert_eq!(host["arch"], fixtures::host_arch());
    let full: serde_json::Value = serde_json::from_str(&info("json")).unwrap();
    assert_eq!(full["store"]["images"], 1);
    let err = assert_failure(&s.ctx.nook(&["info", "--format", "{{.Store.Nope}}"]), 125);
    assert_one_error_line(&err, "unknown field `.Nope` (fields: ");
    assert!(err.contains(".root"), "{err}");

    let inspect = |f: &str, name: &str| s.out(&["inspect", "--format", f, name]);
    assert_eq!(
        inspect("{{.State.Status}} {{.State.ExitCode}}", "done"),
        "exited 3\n"
    );
    assert_eq!(inspect("{{.Config.Cmd}}", "done"), "[sh -c exit 3]\n");
    assert_eq!(
        inspect("{{json .Config.Cmd}}", "done"),
        "[\"sh\",\"-c\",\"exit 3\"]\n"
    );
    assert_eq!(inspect("{{.Name}}", "fresh"), "/fresh\n");
    assert_eq!(
        inspect("{{index .Config.Labels \"tier\"}}", "fresh"),
        "front\n"
    );
    assert_eq!(
        inspect("{{.Config.Labels.absent}}", "fresh"),
        "<no value>\n"
    );
    assert_eq!(
        inspect(
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
            "fresh"
        ),
        "com.example.team=core;tier=front;\n"
    );
    assert_eq!(
        inspect(
            "{{range .Mounts}}{{.Type}}:{{.Name}}:{{.Destination}}{{end}}",
            "fresh"
        ),
        "volume:cache:/cache\n"
    );
    assert_eq!(
        inspect("{{.Id}}", &s.image.reference),
        format!("{}\n", s.image.config_digest)
    );
    assert_eq!(
        inspect("{{.Config.Entrypoint}}", &s.image.reference),
        "[]\n"
    );
    assert_eq!(inspect("{{len .RootFS.Layers}}", &s.image.reference), "1\n");
    // Both at once: one line each.
    assert_eq!(
        s.out(&["inspect", "-f", "{{.Name}}", "fresh", "done"]),
        "/fresh\n/done\n"
    );
    // As `docker inspect`, which falls back to the raw JSON: an unknown field is no value.
    assert_eq!(inspect("{{.State.Nope}}", "done"), "<no value>\n");
    let err = assert_failure(&s.ctx.nook(&["inspect", "-f", "{{nope .Id}}", "done"]), 125);
    assert_one_error_line(&err, "unknown function `nope`");
}

#[test]
fn unknown_fields_and_functions_are_one_error_line() {
    let s = setup();
    let err = assert_failure(&s.ctx.nook(&["ps", "-a", "--format", "{{.Nope}}"]), 125);
    assert_one_error_line(
        &err,
        "unknown field `.Nope` (fields: .Command, .CreatedAt, .ID, .Image, .Labels",
    );
    assert!(err.contains(".Names"), "{err}");
    // Even with no row to print.
    let err = assert_failure(&s.ctx.nook(&["ps", "--format", "{{.Nope}}"]), 125);
    assert_one_error_line(&err, "unknown field `.Nope`");
    let err = assert_failure(&s.ctx.nook(&["images", "--format", "{{frob .ID}}"]), 125);
    assert_one_error_line(&err, "unknown function `frob`");
    let err = assert_failure(
        &s.ctx
            .nook(&["history", "--format", "{{.Bogus}}", &s.image.reference]),
        125,
    );
    assert_one_error_line(
        &err,
        "unknown field `.Bogus` (fields: .Comment, .CreatedAt, .CreatedBy, .CreatedSince, .ID, .Size)",
    );
    let err = assert_failure(&s.ctx.nook(&["images", "--format", "yaml"]), 125);
    assert_one_error_line(&err, "no {{…}} action: use `json`");
    let err = assert_failure(&s.ctx.nook(&["images", "--format", "{{.ID"]), 125);
    assert_one_error_line(&err, "unclosed action");
    let err = assert_failure(
        &s.ctx.nook(&["ps", "-a", "--format", "{{range .Names}}"]),
        125,
    );
    assert_one_error_line(&err, "without {{end}}");
    let err = assert_failure(
        &s.ctx.nook(&["system", "doctor", "--format", "{{.Nope}}"]),
        125,
    );
    assert_one_error_line(
        &err,
        "unknown field `.Nope` (fields: .Check, .Detail, .Fix, .NeedsAdmin, .Status)",
    );
}

#[test]
fn doctor_templates() {
    let ctx = TestContext::new();
    let out = ctx.nook(&["system", "doctor", "--format", "{{.Status}}|{{.Check}}"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.is_empty());
    for line in text.lines() {
        let (status, check) = line.split_once('|').unwrap();
        assert!(["OK", "WARN", "FAIL"].contains(&status), "{line}");
        assert!(!check.is_empty(), "{line}");
    }
    let json = ctx.nook(&["system", "doctor", "--format", "json"]);
    let findings: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(findings.as_array().unwrap().len(), text.lines().count());
    let table = ctx.nook(&[
        "system",
        "doctor",
        "--format",
        "table {{.Status}}\\t{{.Check}}",
    ]);
    assert!(String::from_utf8_lossy(&table.stdout).starts_with("STATUS    CHECK\n"));
}

#[test]
fn management_forms_are_the_verbs() {
    let s = setup();
    let names = s.out(&["ps", "-a", "--format", "{{.Names}}"]);
    for form in ["ls", "list", "ps"] {
        assert_eq!(
            s.out(&["container", form, "-a", "--format", "{{.Names}}"]),
            names,
            "{form}"
        );
    }
    assert_eq!(s.out(&["container", "ls", "-aq"]), s.out(&["ps", "-aq"]));
    for form in ["ls", "list"] {
        assert_eq!(
            s.out(&["image", form, "-q"]),
            s.out(&["images", "-q"]),
            "{form}"
        );
    }
    assert_eq!(
        s.out(&["container", "inspect", "-f", "{{.State.ExitCode}}", "done"]),
        "3\n"
    );
    // `container inspect` looks for containers only, `image inspect` for images only.
    let err = assert_failure(
        &s.ctx.nook(&["container", "inspect", &s.image.reference]),
        125,
    );
    assert_one_error_line(&err, "no such container");
    assert_eq!(
        s.out(&["image", "inspect", "-f", "{{.Id}}", &s.image.reference]),
        format!("{}\n", s.image.config_digest)
    );
    let err = assert_failure(&s.ctx.nook(&["image", "inspect", "done"]), 125);
    assert_one_error_line(&err, "no such image");
    assert_eq!(s.out(&["container", "wait", "done"]), "3\n");
    assert_eq!(s.out(&["container", "logs", "done"]), "");
    assert_eq!(s.out(&["container", "port", "done"]), "");
    s.out(&["container", "rename", "done", "finished"]);
    assert_eq!(s.ps_field("finished", "{{.State}}"), "exited");
    s.out(&["image", "tag", &s.image.reference, "mine:1"]);
    assert!(
        s.out(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
            .contains("mine:1\n")
    );
    s.out(&["image", "rm", "mine:1"]);
    s.out(&["container", "rm", "finished"]);
    s.out(&["container", "remove", "fresh"]);
    assert_eq!(s.out(&["container", "ls", "-aq"]), "");
    let created = s.out(&[
        "container",
        "create",
        "--name",
        "again",
        "--network",
        "none",
        &s.image.reference,
        "true",
    ]);
    assert_eq!(s.out(&["ps", "-aq", "--no-trunc"]), created);
    // `run -q` pulls without a word: only the container's output.
    let quiet = s.ctx.nook(&[
        "container",
        "run",
        "-q",
        "--rm",
        "--network",
        "none",
        "--pull",
        "always",
        &s.image.reference,
        "echo",
        "hi",
    ]);
    assert_eq!(assert_success(&quiet), "hi\n");
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    let help = s.out(&["container", "--help"]);
    assert!(
        help.contains(
            "ls       List containers (as `nook ps`; also `container list`, `container ps`)"
        ),
        "{help}"
    );
}
