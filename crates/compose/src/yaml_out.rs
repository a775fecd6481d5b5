//! `config --format yaml` output in go-yaml's style (what docker compose prints): two-space
//! indentation with sequences indented under their key, and strings quoted exactly when a YAML
//! reader would otherwise take them for something else — including YAML 1.1 booleans such as
//! `on`/`off`/`yes`, which go-yaml quotes and serde_yaml_ng (YAML 1.2 only) leaves plain. No
//! crate emits this dialect, so this small emitter is written here.

use crate::value::Value;
use crate::yaml::resolve_plain;
use serde_json::Value as J;

/// Renders a JSON document as go-yaml would.
pub fn to_yaml(doc: &J) -> String {
    let mut out = String::new();
    match doc {
        J::Object(m) if !m.is_empty() => write_map(m, 0, &mut out),
        other => {
            write_inline(other, &mut out);
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn write_map(m: &serde_json::Map<String, J>, level: usize, out: &mut String) {
    for (k, v) in m {
        indent(out, level);
        write_string(k, out);
        out.push(':');
        write_value_after_key(v, level, out);
    }
}

/// `v` after its key's `:` (and, but for a non-empty map, after a sequence item's `-`), the
/// key at `level`.
fn write_value_after_key(v: &J, level: usize, out: &mut String) {
    match v {
        J::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(m, level + 2, out);
        }
        J::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(a, level + 2, out);
        }
        J::String(s) if s.contains('\n') => {
            out.push(' ');
            write_literal(s, level + 2, out);
        }
        other => {
            out.push(' ');
            write_inline(other, out);
            out.push('\n');
        }
    }
}

fn write_seq(a: &[J], level: usize, out: &mut String) {
    for v in a {
        indent(out, level);
        out.push('-');
        match v {
            J::Object(m) if !m.is_empty() => {
                // The first key goes on the dash line, the others under it.
                let mut first = true;
                for (k, val) in m {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        indent(out, level + 2);
                    }
                    write_string(k, out);
                    out.push(':');
                    write_value_after_key(val, level + 2, out);
                }
            }
            // Anything else stands after the dash as it stands after a key's colon.
            other => write_value_after_key(other, level, out),
        }
    }
}

fn write_literal(s: &str, level: usize, out: &mut String) {
    if s.split('\n').any(|l| l.starts_with([' ', '\t'])) || !printable(s) {
        write_double(s, out);
        out.push('\n');
        return;
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let (indicator, body) = match trailing {
        0 => ("|-", s),
        1 => ("|", &s[..s.len() - 1]),
        _ => ("|+", &s[..s.len() - 1]),
    };
    out.push_str(indicator);
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() {
            indent(out, level);
            out.push_str(line);
        }
        out.push('\n');
    }
}

fn write_inline(v: &J, out: &mut String) {
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => out.push_str(&n.to_string()),
        J::String(s) => write_string(s, out),
        J::Array(_) => out.push_str("[]"),
        J::Object(_) => out.push_str("{}"),
    }
}

fn printable(s: &str) -> bool {
    s.chars()
        .all(|c| c == '\n' || c == '\t' || !(c.is_control() || c == '\u{feff}'))
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

fn is_base60_float(s: &str) -> bool {
    // go-yaml: ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let b = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int_part, rest) = match b.split_once(':') {
        Some(p) => p,
        None => return false,
    };
    if int_part.is_empty()
        || !int_part.as_bytes()[0].is_ascii_digit()
        || !int_part.bytes().all(|c| c.is_ascii_digit() || c == b'_')
    {
        return false;
    }
    let (sexagesimal, frac) = match rest.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (rest, None),
    };
    let parts_ok = sexagesimal.split(':').all(|p| {
        !p.is_empty()
            && p.len() <= 2
            && p.bytes().all(|c| c.is_ascii_digit())
            && (p.len() == 1 || p.as_bytes()[0] <= b'5')
    });
    parts_ok && frac.is_none_or(|f| f.bytes().all(|c| c.is_ascii_digit() || c == b'_'))
}

/// Whether libyaml's emitter may write `s` as a plain scalar in block context.
fn plain_allowed(s: &str) -> bool {
    if s.is_empty() || s.starts_with([' ', '\t']) || s.ends_with([' ', '\t']) {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    let second = s.chars().nth(1);
    if matches!(
        first,
        '#' | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) {
        return false;
    }
    if matches!(first, '-' | '?' | ':') && second.is_none_or(|c| c == ' ' || c == '\t') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.contains(":\t") {
        return false;
    }
    printable(s) && !s.contains('\n') && !s.contains('\t')
}

fn write_string(s: &str, out: &mut String) {
    let resolves_to_string = matches!(resolve_plain(s, true), Value::Str(_));
    let needs_quotes =
        !resolves_to_string || is_old_bool(s) || is_base60_float(s) || !plain_allowed(s);
    if !needs_quotes {
        out.push_str(s);
    } else if printable(s) && !s.contains('\n') && !s.contains('\t') {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    } else {
        write_double(s, out);
    }
}

fn write_double(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quoting_like_go_yaml() {
        let doc = json!({"name": "p", "services": {"on": {"image": "off", "build": {
            "args": {"A": "1", "B": "yes", "C": "a: b", "D": "", "E": "plain text", "F": null},
            "ssh": ["default", "k: /x"], "ulimits": {"core": {"soft": 0, "hard": 0}},
            "extra_hosts": [], "labels": {}}}}});
        let y = to_yaml(&doc);
        let expected = "name: p\nservices:\n  'on':\n    image: 'off'\n    build:\n      args:\n        A: '1'\n        B: 'yes'\n        C: 'a: b'\n        D: ''\n        E: plain text\n        F: null\n      ssh:\n        - default\n        - 'k: /x'\n      ulimits:\n        core:\n          soft: 0\n          hard: 0\n      extra_hosts: []\n      labels: {}\n";
        assert_eq!(y, expected);
    }

    #[test]
    fn multi_line_strings_use_literal_blocks() {
        let y = to_yaml(&json!({"a": "FROM x\nRUN y\n"}));
        assert_eq!(y, "a: |\n  FROM x\n  RUN y\n");
    }
}
