//! Go `regexp` syntax, restated for the `regex` crate.
//!
//! Docker's pattern matcher turns each `.dockerignore` pattern into a Go regular expression and
//! compiles it with Go's `regexp` package. The text it produces is not always valid, or not
//! equivalent, as a Rust regex: inside a class Go takes `[` literally while Rust opens a nested
//! class, Go's `\d`, `\s`, `\w` and `\b` are ASCII-only while Rust's are Unicode, Go reads `\Q…\E`
//! and octal escapes, Rust reads `&&`, `--` and `~~` as class operators and `\<` as a word
//! boundary. So the Go text is parsed here with Go's rules (those of `regexp/syntax` with the
//! `Perl` flags that `regexp.Compile` uses) and written out again in a form that means the same
//! thing to Rust: every literal as a `\x{…}` escape, every class spelled out.
//!
//! Only the syntax that can reach this point is supported: the matcher escapes `.+()|{}$` in
//! patterns, so groups, alternation and counted repetition only ever come from the matcher's own
//! translation of `**`.

use std::fmt::Write as _;

/// Translates one Go regular expression into an equivalent `regex` crate expression.
///
/// The error text mirrors Go's `regexp/syntax` messages.
pub(crate) fn translate(go: &str) -> Result<String, String> {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                i += 1;
                let Some(&e) = chars.get(i) else {
                    return Err("trailing backslash at end of expression".into());
                };
                match e {
                    'A' => {
                        out.push_str(r"\A");
                        i += 1;
                    }
                    'z' => {
                        out.push_str(r"\z");
                        i += 1;
                    }
                    'b' => {
                        out.push_str(r"(?-u:\b)");
                        i += 1;
                    }
                    'B' => {
                        out.push_str(r"(?-u:\B)");
                        i += 1;
                    }
                    'C' => return Err(r"invalid escape sequence: `\C`".into()),
                    'Q' => {
                        // Literal text up to `\E` or the end.
                        i += 1;
                        while i < chars.len() {
                            if chars[i] == '\\' && chars.get(i + 1) == Some(&'E') {
                                i += 2;
                                break;
                            }
                            push_literal(&mut out, chars[i]);
                            i += 1;
                        }
                    }
                    'p' | 'P' => {
                        let (class, next) = unicode_class(&chars, i - 1)?;
                        out.push_str(&class);
                        i = next;
                    }
                    'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                        out.push_str(&perl_class(e));
                        i += 1;
                    }
                    _ => {
                        let (ch, next) = escape(&chars, i - 1)?;
                        push_literal(&mut out, ch);
                        i = next;
                    }
                }
            }
            '[' => {
                let (class, next) = class(&chars, i)?;
                out.push_str(&class);
                i = next;
            }
            // Go's `.` (without the `s` flag) and Rust's both stop at `\n`; `^` and `$` are
            // text anchors in both without the `m` flag.
            '.' | '^' | '$' | '(' | ')' | '|' | '*' | '+' | '?' => {
                out.push(c);
                i += 1;
            }
            '{' | '}' => {
                // Never produced unescaped by the matcher; keep them literal.
                push_literal(&mut out, c);
                i += 1;
            }
            _ => {
                push_literal(&mut out, c);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    }
}

fn push_class_char(out: &mut String, c: char) {
    push_literal(out, c);
}

/// Go's ASCII-only Perl classes.
fn perl_class(e: char) -> String {
    let body = match e.to_ascii_lowercase() {
        'd' => "0-9",
        's' => r"\t\n\x0C\r ",
        _ => "0-9A-Za-z_",
    };
    if e.is_ascii_uppercase() {
        format!("[^{body}]")
    } else {
        format!("[{body}]")
    }
}

/// `\p…` / `\P…` starting at `start` (the backslash). Returns the Rust text and the next index.
fn unicode_class(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let mut negate = chars[start + 1] == 'P';
    let mut i = start + 2;
    let name: String = match chars.get(i) {
        None => return Err("invalid character class range: `\\p`".into()),
        Some('{') => {
            let end = chars[i..]
                .iter()
                .position(|&c| c == '}')
                .ok_or_else(|| "invalid character class range".to_string())?;
            let n: String = chars[i + 1..i + end].iter().collect();
            i += end + 1;
            n
        }
        Some(&c) => {
            i += 1;
            c.to_string()
        }
    };
    let name = match name.strip_prefix('^') {
        Some(n) => {
            negate = !negate;
            n.to_string()
        }
        None => name,
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("invalid character class range: `\\p{{{name}}}`"));
    }
    let letter = if negate { 'P' } else { 'p' };
    Ok((format!("\\{letter}{{{name}}}"), i))
}

/// Go's `parseEscape` for a single character, starting at the backslash.
fn escape(chars: &[char], start: usize) -> Result<(char, usize), String> {
    let mut i = start + 1;
    let Some(&c) = chars.get(i) else {
        return Err("trailing backslash at end of expression".into());
    };
    i += 1;
    let invalid = || {
        Err(format!(
            "invalid escape sequence: `{}`",
            chars[start..(start + 2).min(chars.len())]
                .iter()
                .collect::<String>()
        ))
    };
    match c {
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c, i)),
        '1'..='7' | '0' => {
            if c != '0' && !matches!(chars.get(i), Some('0'..='7')) {
                // A lone non-zero digit is a backreference, which Go refuses.
                return invalid();
            }
            let mut r = c as u32 - '0' as u32;
            for _ in 1..3 {
                match chars.get(i) {
                    Some(&d @ '0'..='7') => {
                        r = r * 8 + (d as u32 - '0' as u32);
                        i += 1;
                    }
                    _ => break,
                }
            }
            Ok((char::from_u32(r).unwrap_or('\u{FFFD}'), i))
        }
        'x' => match chars.get(i) {
            Some('{') => {
                i += 1;
                let mut r: u32 = 0;
                let mut n = 0;
                loop {
                    let Some(&d) = chars.get(i) else {
                        return invalid();
                    };
                    i += 1;
                    if d == '}' {
                        break;
                    }
                    let Some(v) = d.to_digit(16) else {
                        return invalid();
                    };
                    r = r.saturating_mul(16).saturating_add(v);
                    n += 1;
                    if r > 0x10FFFF {
                        return invalid();
                    }
                }
                if n == 0 {
                    return invalid();
                }
                match char::from_u32(r) {
                    Some(ch) => Ok((ch, i)),
                    None => invalid(),
                }
            }
            Some(&h) => {
                let l = chars.get(i + 1).copied();
                match (h.to_digit(16), l.and_then(|l| l.to_digit(16))) {
                    (Some(a), Some(b)) => {
                        i += 2;
                        Ok((char::from_u32(a * 16 + b).unwrap_or('\u{FFFD}'), i))
                    }
                    _ => invalid(),
                }
            }
            None => invalid(),
        },
        'a' => Ok(('\x07', i)),
        'f' => Ok(('\x0C', i)),
        'n' => Ok(('\n', i)),
        'r' => Ok(('\r', i)),
        't' => Ok(('\t', i)),
        'v' => Ok(('\x0B', i)),
        _ => invalid(),
    }
}

const POSIX_CLASSES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Go's `parseClass`, starting at `[`. Returns the Rust class and the next index.
fn class(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let missing = || "missing closing ]".to_string();
    let mut i = start + 1;
    let mut out = String::from("[");
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut items = 0usize;
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(missing());
        };
        if c == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        // POSIX class `[:name:]`; Go looks for the closing `:]` anywhere further on.
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let rest: String = chars[i + 2..].iter().collect();
            if let Some(pos) = rest.find(":]") {
                let name = &rest[..pos];
                let bare = name.strip_prefix('^').unwrap_or(name);
                if !POSIX_CLASSES.contains(&bare) {
                    return Err(format!("invalid character class range: `[:{name}:]`"));
                }
                let _ = write!(out, "[:{name}:]");
                i += 2 + name.chars().count() + 2;
                items += 1;
                continue;
            }
        }
        if c == '\\' {
            match chars.get(i + 1) {
                Some('p' | 'P') => {
                    let (cls, next) = unicode_class(chars, i)?;
                    out.push_str(&cls);
                    i = next;
                    items += 1;
                    continue;
                }
                Some(&e @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                    out.push_str(&perl_class(e));
                    i += 2;
                    items += 1;
                    continue;
                }
                _ => {}
            }
        }
        let (lo, next) = class_char(chars, i)?;
        i = next;
        let mut hi = lo;
        // `[a-]` means `a` or `-`: a dash right before `]` is literal.
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
            let (h, next) = class_char(chars, i + 1)?;
            if h < lo {
                return Err(format!("invalid character class range: `{lo}-{h}`"));
            }
            hi = h;
            i = next;
        }
        push_class_char(&mut out, lo);
        if hi != lo {
            out.push('-');
            push_class_char(&mut out, hi);
        }
        items += 1;
    }
    debug_assert!(items > 0);
    out.push(']');
    Ok((out, i))
}

fn class_char(chars: &[char], i: usize) -> Result<(char, usize), String> {
    match chars.get(i) {
        None => Err("missing closing ]".into()),
        Some('\\') => escape(chars, i),
        Some(&c) => Ok((c, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::translate;
    use regex::Regex;

    fn m(go: &str, text: &str) -> bool {
        Regex::new(&translate(go).unwrap()).unwrap().is_match(text)
    }

    #[test]
    fn classes_take_open_bracket_literally() {
        // Go: `[[^/]` is the class {'[', '^', '/'}.
        assert!(m(r"^[[^/]*]$", "[^]"));
        assert!(!m(r"^[[^/]*]$", "a]"));
        assert!(m(r"^[]a]$", "]"));
        assert!(m(r"^[a-]$", "-"));
    }

    #[test]
    fn perl_classes_are_ascii() {
        assert!(m(r"^\d$", "7"));
        assert!(!m(r"^\d$", "٣"));
        assert!(!m(r"^\w$", "é"));
        assert!(m(r"^[\d]$", "3"));
    }

    #[test]
    fn escapes() {
        assert!(m(r"^a\*b$", "a*b"));
        assert!(m(r"^\x41$", "A"));
        assert!(m(r"^\101$", "A"));
        assert!(m(r"^\<$", "<"));
        assert!(m(r"^\Qa.b\E$", "a.b"));
        assert!(!m(r"^\Qa.b\E$", "axb"));
        assert!(translate(r"\1").is_err());
        assert!(translate(r"\y").is_err());
        assert!(translate(r"[z-a]").is_err());
        assert!(translate(r"[:foo:]").is_ok());
        assert!(translate(r"[[:foo:]]").is_err());
        assert!(m(r"^[[:alpha:]]$", "q"));
    }

    #[test]
    fn rust_class_operators_are_literal() {
        assert!(m(r"^[a&&b]$", "&"));
        assert!(m(r"^[a~~b]$", "~"));
    }
}
