//! Image configs as registries and archives send them, and the Dockerfile instructions of
//! `--change`/`-c` applied to them: neither may panic. Input: a config, then optionally a
//! NUL and one instruction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nook::image::config::{ConfigSummary, apply_change};

fuzz_target!(|data: &[u8]| {
    let (config, change) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    if let Ok(summary) = ConfigSummary::parse(config) {
        for id in &summary.diff_ids {
            let again = id.to_string().parse::<nook::image::digest::Digest>();
            assert!(
                again.is_ok_and(|d| &d == id),
                "diff id {id} does not parse back"
            );
        }
    }
    if let Some(change) = change.and_then(|c| std::str::from_utf8(c).ok()) {
        let mut value = serde_json::from_slice(config).unwrap_or_else(|_| serde_json::json!({}));
        if value.is_object() {
            let _ = apply_change(&mut value, change);
        }
    }
});
