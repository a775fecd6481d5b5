//! The interpolation parser on arbitrary templates: any input gives a value or an error,
//! never a panic, a hang or an abort.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_compose::interpolate::interpolate;

fn lookup(name: &str) -> Option<String> {
    match name {
        "SET" => Some("value".into()),
        "EMPTY" => Some(String::new()),
        "TEMPLATE" => Some("${SET}".into()),
        "DOLLARS" => Some("$$".into()),
        _ => None,
    }
}

fuzz_target!(|template: &str| {
    let _ = interpolate(template, &lookup);
});
