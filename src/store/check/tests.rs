use chrono::Utc;

use super::*;
use crate::runtime::userns::Namespace;
use crate::store::containers::{ContainerConfig, ContainerRecord};

fn unprivileged() -> Namespace {
    Namespace {
        max_id: 0,
        can_chown: false,
    }
}

fn tar_with(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An image of one layer holding `files`; its ID and layer.
fn image(store: &Store, name: &str, files: &[(&str, &[u8])]) -> (Digest, Digest) {
    let stream = tar_with(files);
    let layer = store
        .import_layer(&mut stream.as_slice(), None, unprivileged())
        .unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
    })
    .to_string();
    let record = store
        .add_local_image(config.as_bytes(), &[name.to_string()])
        .unwrap();
    (record.id, layer.diff_id)
}

fn options(repair: bool, force: bool) -> Options {
    Options {
        verify: Some(Verify::Full),
        repair,
        force,
    }
}

/// A PID no process has: one that just exited.
fn dead_pid() -> i32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    pid
}

fn subjects(report: &Report) -> Vec<String> {
    report.findings.iter().map(|f| f.subject.clone()).collect()
}

#[test]
fn a_sound_store_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    image(&store, "localhost/a:1", &[("a", b"aaa")]);
    for verify in [Verify::Full, Verify::Quick] {
        let report = run(
            &store,
            &Options {
                verify: Some(verify),
                repair: false,
                force: false,
            },
        )
        .unwrap();
        assert_eq!(report.findings, []);
        assert_eq!((report.images, report.layers), (1, 1));
        let (text, code) = report.render_check(false);
        assert_eq!(code, 0);
        assert!(text.starts_with("No problems in the store at "), "{text}");
        assert!(
            text.ends_with("(1 image, 1 layer, 0 containers checked).\n"),
            "{text}"
        );
    }
}

#[test]
fn damage_and_leftovers_are_found_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = Store::open(root).unwrap();
    let (intact, intact_layer) = image(&store, "localhost/intact:1", &[("a", b"aaa")]);
    let (damaged, damaged_layer) = image(&store, "localhost/damaged:1", &[("b", b"bbbb")]);
    // Same length, other bytes: only the full check sees it.
    fs::write(store.layer_diff_dir(&damaged_layer).join("b"), b"BBBB").unwrap();
    let quick = run(
        &store,
        &Options {
            verify: Some(Verify::Quick),
            repair: false,
            force: false,
        },
    )
    .unwrap();
    assert_eq!(quick.findings, []);

    let dead = dead_pid();
    // Another process, alive while the check runs.
    let mut other = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let me = other.id();
    let hex = |c: char| c.to_string().repeat(64);
    let plant_dir = |rel: &str| fs::create_dir_all(root.join(rel).join("diff")).unwrap();
    let plant_file = |rel: &str| fs::write(root.join(rel), b"x").unwrap();
    plant_dir(&format!("layers/.staging/{}", hex('a')));
    plant_dir(&format!("layers/.staging/new-{dead}-0"));
    plant_dir(&format!("layers/.staging/new-{me}-0"));
    plant_dir(&format!("layers/.trash/{}.{dead}.3", hex('b')));
    plant_dir(&format!("layers/.trash/{}.{me}.3", hex('b')));
    plant_file(&format!("tmp/images.json.{dead}.7"));
    plant_file(&format!("tmp/images.json.{me}.7"));
    plant_dir(&format!("layers/{}", hex('c')));
    fs::write(root.join("blobs/sha256").join(hex('d')), b"orphan").unwrap();
    plant_dir(&format!("containers/{}", hex('e')));

    let report = run(&store, &options(false, false)).unwrap();
    let found = subjects(&report);
    let expected = [
        "image ".to_string() + damaged.short() + " (localhost/damaged:1)",
        format!("containers/{}", hex('e')),
        format!("layers/.staging/{}", hex('a')),
        format!("layers/.staging/new-{dead}-0"),
        format!("layers/.trash/{}.{dead}.3", hex('b')),
        format!("tmp/images.json.{dead}.7"),
        format!("layers/{}", hex('c')),
        format!("blobs/sha256/{}", hex('d')),
    ];
    let mut sorted_found = found.clone();
    sorted_found.sort();
    let mut sorted_expected = expected.to_vec();
    sorted_expected.sort();
    assert_eq!(sorted_found, sorted_expected);
    let damage = &report.findings[0];
    assert_eq!(damage.group, Group::DamagedImages);
    assert!(
        damage
            .detail
            .contains(&format!("layer {}", damaged_layer.short()))
            && damage.detail.contains("not its diff id"),
        "{}",
        damage.detail
    );
    let (text, code) = report.render_check(false);
    assert_eq!(code, 1);
    assert!(text.contains("Damaged images:\n  image "), "{text}");
    assert!(text.contains("[--repair removes the image]"), "{text}");
    assert!(text.contains("\n8 problems in the store at "), "{text}");
    assert!(text.ends_with("fixes all of them.\n"), "{text}");

    let repaired = run(&store, &options(true, false)).unwrap();
    let (text, code) = repaired.render_repair();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("removed the damaged image "), "{text}");
    assert!(repaired.reclaimed > 0);
    // The intact image is whole; the damaged one and its layer are gone.
    let index = store.images().unwrap();
    assert_eq!(index.images.len(), 1);
    assert_eq!(index.images[0].id, intact);
    assert!(store.has_layer(&intact_layer));
    assert!(!store.has_layer(&damaged_layer));
    io::copy(
        &mut store.layer_tar(&intact_layer).unwrap(),
        &mut io::sink(),
    )
    .unwrap();
    // What live processes own stays.
    assert!(root.join(format!("layers/.staging/new-{me}-0")).exists());
    assert!(
        root.join(format!("layers/.trash/{}.{me}.3", hex('b')))
            .exists()
    );
    assert!(root.join(format!("tmp/images.json.{me}.7")).exists());

    let again = run(&store, &options(false, false)).unwrap();
    assert_eq!(again.findings, []);
    other.kill().unwrap();
    other.wait().unwrap();
    let gone = run(&store, &options(false, false)).unwrap();
    assert_eq!(gone.findings.len(), 3, "{:?}", subjects(&gone));
}

fn container(store: &Store, image: &Digest) -> String {
    let id = "f".repeat(64);
    store
        .create_container(&ContainerRecord {
            id: id.clone(),
            name: "web".into(),
            image: "localhost/damaged:1".into(),
            image_id: image.clone(),
            created: Utc::now(),
            config: ContainerConfig::default(),
        })
        .unwrap();
    id
}

#[test]
fn a_damaged_image_a_container_uses_goes_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (damaged, layer) = image(&store, "localhost/damaged:1", &[("b", b"bbbb")]);
    let id = container(&store, &damaged);
    fs::remove_file(store.layer_diff_dir(&layer).join("b")).unwrap();

    let report = run(&store, &options(true, false)).unwrap();
    let (text, code) = report.render_repair();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("Not repaired:\n  image ") && text.contains("used by container web"),
        "{text}"
    );
    assert_eq!(store.images().unwrap().images.len(), 1);

    let report = run(&store, &options(true, true)).unwrap();
    let (text, code) = report.render_repair();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("removed container web"), "{text}");
    assert!(store.images().unwrap().images.is_empty());
    assert!(store.containers().unwrap().is_empty());
    assert!(!store.container_dir(&id).exists());
    assert!(!store.has_layer(&layer));
}

#[test]
fn containers_without_directory_or_image_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (img, _) = image(&store, "localhost/a:1", &[("a", b"a")]);
    let id = container(&store, &img);
    // The image goes behind the container's back (as a damaged index would have it).
    store
        .update_images(|i| -> Result<()> {
            i.images.clear();
            Ok(())
        })
        .unwrap();
    let report = run(&store, &options(false, false)).unwrap();
    let gone = report
        .findings
        .iter()
        .find(|f| f.group == Group::Containers)
        .unwrap();
    assert!(
        gone.detail.contains("is no longer in the store"),
        "{}",
        gone.detail
    );
    assert_eq!(
        gone.fix.remedy(false).unwrap_err(),
        "remove it with `nook rm`, or use --repair --force"
    );
    remove_tree(&store.container_dir(&id)).unwrap();
    let report = run(&store, &options(true, false)).unwrap();
    assert!(
        report
            .repaired
            .iter()
            .any(|l| l.starts_with("removed the record of container fffff")),
        "{:?}",
        report.repaired
    );
    assert!(store.containers().unwrap().is_empty());
}

#[test]
fn a_layer_being_extracted_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let d = Digest::of(b"layer");
    let _extracting = store.lock_layer(&d).unwrap();
    let staged = dir.path().join("layers/.staging").join(d.hex());
    fs::create_dir_all(&staged).unwrap();
    let report = run(&store, &options(true, false)).unwrap();
    assert_eq!(report.findings, []);
    assert!(staged.exists());
}

#[test]
fn a_corrupt_index_stops_the_collection() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    image(&store, "localhost/a:1", &[("a", b"a")]);
    fs::write(dir.path().join("images.json"), b"{ broken").unwrap();
    let report = run(&store, &options(true, false)).unwrap();
    assert_eq!(subjects(&report), ["images.json"]);
    assert_eq!(report.findings[0].group, Group::StoreFiles);
    let (text, code) = report.render_repair();
    assert_eq!(code, 1);
    assert!(text.contains("nook system reset"), "{text}");
    // Without an index, every layer would look unused: none may go.
    assert_eq!(fs::read_dir(dir.path().join("layers")).unwrap().count(), 3);
}

#[test]
fn names_tell_whose_leftover_it_is() {
    assert_eq!(owner_pid("images.json.1234.5"), Some(1234));
    assert_eq!(owner_pid(&format!("{}.77.0", "a".repeat(64))), Some(77));
    assert_eq!(owner_pid("load.9.0"), Some(9));
    assert_eq!(owner_pid("overlay-probe-4321"), Some(4321));
    assert_eq!(owner_pid("my.volume.12.3"), Some(12));
    assert_eq!(owner_pid("notes.txt"), None);
    assert_eq!(owner_pid("x.y.z"), None);
    assert_eq!(staged_pid("new-42-0"), Some(42));
    assert_eq!(staged_pid("new-42"), None);
    assert_eq!(staged_pid("old-42-0"), None);
}

#[test]
fn a_report_is_grouped_in_a_fixed_order() {
    let finding = |group, subject: &str, fix| Finding {
        group,
        subject: subject.into(),
        detail: "why".into(),
        fix,
    };
    let report = Report {
        root: PathBuf::from("/s"),
        findings: vec![
            finding(
                Group::Unused,
                "blobs/sha256/x",
                Fix::RemoveBlob(Digest::of(b"x")),
            ),
            finding(
                Group::Leftovers,
                "tmp/a.1.0",
                Fix::Remove("/s/tmp/a.1.0".into()),
            ),
            finding(
                Group::DamagedImages,
                "image abc",
                Fix::RemoveImage(
                    Digest::of(b"i"),
                    vec![ContainerRef {
                        id: "c".repeat(64),
                        name: "web".into(),
                        running: false,
                    }],
                ),
            ),
            finding(
                Group::Leftovers,
                "tmp/b.1.0",
                Fix::Remove("/s/tmp/b.1.0".into()),
            ),
        ],
        ..Report::default()
    };
    let groups: Vec<(Group, usize)> = report
        .grouped()
        .iter()
        .map(|(g, l)| (*g, l.len()))
        .collect();
    assert_eq!(
        groups,
        [
            (Group::DamagedImages, 1),
            (Group::Leftovers, 2),
            (Group::Unused, 1)
        ]
    );
    let (text, code) = report.render_check(false);
    assert_eq!(code, 1);
    assert_eq!(
        text,
        "Damaged images:\n  image abc: why [not repaired: used by container web: --repair --force removes the image and its containers]\n\
         Leftovers of interrupted commands:\n  tmp/a.1.0: why [--repair removes it]\n  tmp/b.1.0: why [--repair removes it]\n\
         Data no image uses:\n  blobs/sha256/x: why [--repair removes it]\n\
         \n4 problems in the store at /s; `nook system check --repair` fixes 3 of them.\n"
    );
    let (forced, _) = report.render_check(true);
    assert!(
        forced.contains("[--repair --force removes the image and container web]")
            && forced.ends_with("`nook system check --repair --force` fixes all of them.\n"),
        "{forced}"
    );
}

#[test]
fn the_collector_waits_for_commands_that_are_adding() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // A pull that has stored a layer but not yet the image record naming it.
    let adding = store.hold_additions().unwrap();
    let layer = dir.path().join("layers").join("ab".repeat(32));
    fs::create_dir_all(layer.join("diff")).unwrap();
    let collector = {
        let store = store.clone();
        std::thread::spawn(move || run(&store, &options(true, false)).unwrap())
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!collector.is_finished(), "the collector did not wait");
    assert!(layer.exists());
    // Another command may start adding meanwhile: shared with the first.
    drop(store.hold_additions().unwrap());
    drop(adding);
    let report = collector.join().unwrap();
    assert_eq!(subjects(&report), [format!("layers/{}", "ab".repeat(32))]);
    assert!(!layer.exists());
}
