//! `--format` templates: whatever a user types must parse or be refused, and render or be
//! refused, without a panic or a runaway (a template has no loops but `range` over the data).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nook::format::Template;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::parse(input) else {
        return;
    };
    // A `ps` row's shape: strings, a list, a map, numbers, a null and a nested object.
    let row = serde_json::json!({
        "ID": "0123456789ab",
        "Names": "sweet_keldysh",
        "Labels": {"tier": "front", "a.b": "c"},
        "Ports": ["127.0.0.1:8080->80/tcp", "53/udp"],
        "Size": 1234,
        "Ratio": 0.5,
        "Running": true,
        "Missing": null,
        "State": {"Status": "exited", "ExitCode": 3, "Env": ["A=1", "B=2"]},
    });
    let fields = ["ID", "Names", "Labels", "Ports", "Size", "State"];
    let _ = template.check_fields(&fields);
    let _ = template.render(&row);
    let headers = [("ID", "CONTAINER ID"), ("Names", "NAMES")];
    let _ = template.header(&fields, &headers);
    let _ = template.render_all(&[row.clone(), row], &fields, &headers);
});
