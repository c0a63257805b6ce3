//! Layer extraction: any byte stream, applied to an empty directory, must fail cleanly or
//! succeed without panicking, and must write nothing beside that directory (the layer's own
//! directory is `ROOT/layer`; anything else appearing under ROOT escaped it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nook::layer::unpack::{UnpackOptions, unpack};

fuzz_target!(|data: &[u8]| {
    let root = tempfile::tempdir().expect("a temp dir");
    let dest = root.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    // No chown: the fuzzer runs outside any user namespace.
    let opts = UnpackOptions {
        max_id: 0,
        chown: false,
    };
    let _ = unpack(data, &dest, &opts);
    let beside: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(beside, ["layer"], "the layer wrote beside its directory");
    // The unpacker leaves directories it made read-only as the layer says; make the tree
    // removable again.
    make_writable(&dest);
});

fn make_writable(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&entry.path());
            }
        }
    }
}
