//! Image references (`nook pull ARG`, names in archives, registries.toml): parsing any text
//! must not panic, and what it accepts must print as a reference that parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nook::image::reference::{Reference, normalise_registry};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let _ = normalise_registry(input);
    if let Ok(reference) = Reference::parse(input) {
        let printed = reference.to_string();
        let again = Reference::parse(&printed)
            .unwrap_or_else(|e| panic!("{input:?} printed as {printed:?}, which fails: {e}"));
        // Printed references are always qualified, so `qualified` may differ.
        let parts = |r: &Reference| {
            (
                r.registry.clone(),
                r.repository.clone(),
                r.tag.clone(),
                r.digest.clone(),
            )
        };
        assert!(
            parts(&again) == parts(&reference),
            "{input:?} printed as {printed:?} parses differently"
        );
        let _ = reference.familiar_name();
        let _ = reference.reference_for_registry();
    }
});
