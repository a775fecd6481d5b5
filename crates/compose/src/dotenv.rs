//! `.env` files as compose reads them: a port of compose-go's `dotenv` parser (itself a fork
//! of godotenv with compose's interpolation). No crate implements this dialect — `KEY: value`
//! YAML-style lines, inline comments only after a space, `\$` escapes, `${VAR}` expansion with
//! the process environment first, bare `KEY` lines inheriting from it — so it is written here.

use crate::interpolate::{substitute, InterpolateError};
use indexmap::IndexMap;

/// A parse error, with the line compose reports.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DotenvError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("{0}")]
    Interpolation(#[from] InterpolateError),
}

/// Parses `src` into `out`. `lookup` resolves variables (compose: the process environment, then
/// values read so far).
pub fn parse(
    src: &str,
    out: &mut IndexMap<String, String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), DotenvError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut p = DotenvParser { line: 1 };
    let mut cutset: &str = src;
    loop {
        cutset = p.statement_start(cutset);
        if cutset.is_empty() {
            break;
        }
        let (key, left, inherited) = p.locate_key_name(cutset)?;
        if key.contains(' ') {
            return Err(DotenvError::Syntax {
                line: p.line,
                message: "key cannot contain a space".into(),
            });
        }
        if inherited {
            if let Some(v) = lookup(&key) {
                out.insert(key, v);
            }
            cutset = left;
            continue;
        }
        let (value, left) = p.extract_value(left, out, lookup)?;
        out.insert(key, value);
        cutset = left;
    }
    Ok(())
}

struct DotenvParser {
    line: usize,
}

/// Go's `isSpace` in the dotenv parser: white space but not a line break.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

impl DotenvParser {
    fn statement_start<'a>(&mut self, mut src: &'a str) -> &'a str {
        loop {
            let mut pos = None;
            for (i, c) in src.char_indices() {
                if c == '\n' {
                    self.line += 1;
                }
                if !c.is_whitespace() {
                    pos = Some(i);
                    break;
                }
            }
            let Some(pos) = pos else { return "" };
            src = &src[pos..];
            if !src.starts_with('#') {
                return src;
            }
            match src.find('\n') {
                None => return "",
                Some(nl) => src = &src[nl..],
            }
        }
    }

    fn locate_key_name<'a>(
        &mut self,
        src: &'a str,
    ) -> Result<(String, &'a str, bool), DotenvError> {
        let mut src = src;
        if let Some(rest) = src.strip_prefix("export") {
            if rest.starts_with(|c: char| c.is_whitespace()) {
                src = rest.trim_start_matches(is_space);
            }
        }
        let mut key = "";
        let mut offset = 0;
        let mut inherited = false;
        for (i, c) in src.char_indices() {
            if is_space(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    key = &src[..i];
                    offset = i + 1;
                    inherited = c == '\n';
                    break;
                }
                '_' | '.' | '-' | '[' | ']' => {}
                _ => {
                    if c.is_alphabetic() || c.is_numeric() {
                        continue;
                    }
                    let first_line = src.split('\n').next().unwrap_or("");
                    return Err(DotenvError::Syntax {
                        line: self.line,
                        message: format!(
                            "unexpected character {:?} in variable name {:?}",
                            c.to_string(),
                            first_line
                        ),
                    });
                }
            }
        }
        if src.is_empty() {
            return Err(DotenvError::Syntax {
                line: self.line,
                message: "zero length string".into(),
            });
        }
        if inherited && !key.contains(' ') {
            self.line += 1;
        }
        let key = key.trim_end_matches(char::is_whitespace).to_string();
        let rest = src.get(offset..).unwrap_or("").trim_start_matches(is_space);
        Ok((key, rest, inherited))
    }

    fn extract_value<'a>(
        &mut self,
        src: &'a str,
        env: &IndexMap<String, String>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, &'a str), DotenvError> {
        let quote = match src.as_bytes().first() {
            Some(b'"') => b'"',
            Some(b'\'') => b'\'',
            _ => {
                let (value, rest) = match src.split_once('\n') {
                    Some((v, r)) => (v, r),
                    None => (src, ""),
                };
                self.line += 1;
                let value = match value.find(" #") {
                    Some(i) => &value[..i],
                    None => value,
                };
                let value = value.trim_end_matches(char::is_whitespace);
                let expanded = expand(value, env, lookup)?;
                return Ok((expanded, rest));
            }
        };
        let bytes = src.as_bytes();
        let mut chars: Vec<u8> = Vec::new();
        let mut escaped = false;
        let mut i = 1;
        while i < bytes.len() {
            let c = bytes[i];
            if c == b'\n' {
                self.line += 1;
            }
            if c != quote {
                if !escaped && c == b'\\' {
                    escaped = true;
                    i += 1;
                    continue;
                }
                if escaped {
                    escaped = false;
                    chars.push(b'\\');
                }
                chars.push(c);
                i += 1;
                continue;
            }
            if escaped {
                escaped = false;
                chars.push(c);
                i += 1;
                continue;
            }
            let mut value = String::from_utf8_lossy(&chars).into_owned();
            if quote == b'"' {
                value = expand(&expand_escapes(&value), env, lookup)?;
            }
            return Ok((value, src.get(i + 1..).unwrap_or("")));
        }
        let end = src.find('\n').unwrap_or(src.len());
        Err(DotenvError::Syntax {
            line: self.line,
            message: format!("unterminated quoted value {}", &src[..end]),
        })
    }
}

fn expand(
    value: &str,
    env: &IndexMap<String, String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let resolve = |k: &str| lookup(k).or_else(|| env.get(k).cloned());
    substitute(value, &resolve, &mut |_| {})
}

/// The escapes compose expands in double-quoted values: `\a \b \c \f \n \r \t \v \$ \" \\` and
/// octal `\0NNN` (`\$` stays a literal dollar).
fn expand_escapes(s: &str) -> String {
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let c = b[i + 1];
            let simple = match c {
                b'a' => Some(0x07u8),
                b'b' => Some(0x08),
                b'f' => Some(0x0c),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'v' => Some(0x0b),
                b'"' => Some(b'"'),
                b'\\' => Some(b'\\'),
                _ => None,
            };
            if let Some(v) = simple {
                out.push(v);
                i += 2;
                continue;
            }
            if c == b'$' {
                out.extend_from_slice(b"$$");
                i += 2;
                continue;
            }
            if c == b'c' {
                // Go's UnquoteChar rejects `\c`: the match stays as written.
                out.extend_from_slice(b"\\c");
                i += 2;
                continue;
            }
            if c == b'0' {
                // `\0` followed by up to three digits; Go reads them as an octal `\NNN`.
                let mut j = i + 2;
                while j < b.len() && j < i + 5 && b[j].is_ascii_digit() {
                    j += 1;
                }
                let digits = &s[i + 2..j];
                if digits.len() == 3 && digits.bytes().all(|d| (b'0'..=b'7').contains(&d)) {
                    if let Ok(v) = u32::from_str_radix(digits, 8) {
                        if v <= 255 {
                            let ch = char::from_u32(v).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            i = j;
                            continue;
                        }
                    }
                }
                out.extend_from_slice(&b[i..j]);
                i = j;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(src: &str) -> Result<IndexMap<String, String>, DotenvError> {
        let mut out = IndexMap::new();
        parse(src, &mut out, &|k| {
            if k == "HOST" {
                Some("h".into())
            } else {
                None
            }
        })?;
        Ok(out)
    }

    #[test]
    fn syntax() {
        let m = parse_str(
            "# comment\nexport A=1\nB = two words # comment\nC='single $A'\nD=\"double ${A}\\n\"\nE: yaml\nF=x#y\nG=${HOST}-${A}\nHOST\nH=\"multi\nline\"\nI=\\$A\nJ=\"\\$A\"\n",
        )
        .unwrap();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "single $A");
        assert_eq!(m["D"], "double 1\n");
        assert_eq!(m["E"], "yaml");
        assert_eq!(m["F"], "x#y");
        assert_eq!(m["G"], "h-1");
        assert_eq!(m["HOST"], "h");
        assert_eq!(m["H"], "multi\nline");
        assert_eq!(m["J"], "$A");
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse_str("A B=1\n"),
            Err(DotenvError::Syntax { line: 1, .. })
        ));
        assert!(matches!(
            parse_str("A=1\nB=\"open\n"),
            Err(DotenvError::Syntax { .. })
        ));
        assert!(parse_str("A$=1\n").is_err());
    }
}
