//! Credentials in URLs never reach output: a remote build context
//! (`https://user:token@git.example.com/app.git`) or any URL a daemon or registry puts into a
//! message is shown with its userinfo replaced.

use std::borrow::Cow;

/// What replaces the userinfo of a URL.
pub const REDACTED: &str = "***";

/// `text` — a URL, or any text holding URLs — with the userinfo of every `scheme://user@host`
/// replaced by `***` (`https://***@git.example.com/app.git`). Text without one is returned as
/// it is, uncopied.
pub fn userinfo(text: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let authority_start = from + found + 3;
        let authority_end = text[authority_start..]
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | ')' | ']' | ','
                ) || c.is_whitespace()
            })
            .map_or(text.len(), |i| authority_start + i);
        let authority = &text[authority_start..authority_end];
        let scheme_start = text[..from + found]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let scheme = &text[scheme_start..from + found];
        if let (Some(at), false) = (authority.rfind('@'), names_an_image(scheme)) {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..authority_start]);
            o.push_str(REDACTED);
            copied = authority_start + at;
        }
        from = authority_end.max(authority_start);
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// Schemes followed by an image reference, where `@` starts a digest (`alpine@sha256:…`).
fn names_an_image(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("docker-image") || scheme.eq_ignore_ascii_case("oci-layout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_replaced_in_urls_and_in_text() {
        let cases = [
            (
                "https://user:t0ken@git.example.com/app.git#main:sub",
                "https://***@git.example.com/app.git#main:sub",
            ),
            (
                "https://t0ken@github.com/o/r.git",
                "https://***@github.com/o/r.git",
            ),
            ("ssh://git@github.com/o/r", "ssh://***@github.com/o/r"),
            (
                "fetching http://a:b@h:8080 failed; see https://c:d@e/x?q=@",
                "fetching http://***@h:8080 failed; see https://***@e/x?q=@",
            ),
            ("\"https://u:p@h/x\"", "\"https://***@h/x\""),
            ("https://p@ss:w@rd@h/x", "https://***@h/x"),
            ("é→git+ssh://u:p@h/x", "é→git+ssh://***@h/x"),
        ];
        for (given, expected) in cases {
            assert_eq!(userinfo(given), expected, "{given}");
        }
    }

    #[test]
    fn text_without_userinfo_is_not_copied() {
        for text in [
            "https://github.com/o/r.git#v1",
            "no url here, just a@b",
            "git@github.com:o/r.git",
            "docker-image://alpine@sha256:0123abcd",
            "context base=docker-image://busybox@sha256:00 and oci-layout://./l@sha256:11",
            "://",
            "a://",
            "",
        ] {
            assert!(
                matches!(userinfo(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }
}
