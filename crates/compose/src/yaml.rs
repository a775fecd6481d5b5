//! Reading compose YAML the way go-yaml v3 (compose's parser) reads it.
//!
//! serde_yaml_ng resolves plain scalars by the YAML 1.2 core schema and hides whether a scalar
//! was quoted, so it cannot tell `0755` (an int to go-yaml) from `"0755"`. This module works on
//! libyaml's event stream (which keeps scalar styles, tags, anchors and positions) and
//! ports what go-yaml and compose-go's `ResetProcessor` do with it, which no crate does:
//! go-yaml's scalar resolution, merge keys (`<<`), duplicate keys, alias limits, and the
//! `!reset` / `!override` tags.

use crate::value::{Map, Value};
use std::collections::HashMap;
use std::rc::Rc;

/// A YAML error with its position (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl YamlError {
    fn at(line: usize, column: usize, message: impl Into<String>) -> Self {
        YamlError {
            line: Some(line),
            column: Some(column),
            message: message.into(),
        }
    }

    fn bare(message: impl Into<String>) -> Self {
        YamlError {
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// One YAML document, as compose-go's `ResetProcessor` hands it on.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `None` for an empty document (go-yaml gives `nil`).
    pub value: Option<Value>,
    /// Paths tagged `!reset` or `!override` (segments; `*` would match any key).
    pub reset_paths: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Quoted,
}

/// Children are shared, not owned: an anchored node is referenced from its parent and from
/// the anchor table alike, so nested anchors (`&a [&b [&c …]]`) cost their size once rather
/// than once per enclosing anchor (a deep copy per anchor made them quadratic).
#[derive(Debug)]
enum Kind {
    Scalar(String, Style),
    Seq(Vec<Rc<Node>>),
    Map(Vec<(Rc<Node>, Rc<Node>)>),
    Alias(Rc<Node>),
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    tag: Option<String>,
    line: usize,
    column: usize,
}

/// go-yaml's nesting limit.
const MAX_DEPTH: usize = 10000;

/// Parses every document of a compose file.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, YamlError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let roots = build_nodes(text)?;
    let mut docs = Vec::with_capacity(roots.len());
    for root in roots {
        let mut decoder = Decoder::default();
        let mut path = Vec::new();
        let value = match &root {
            None => None,
            Some(node) => decoder.decode(node, &mut path, true)?,
        };
        docs.push(Document {
            value,
            reset_paths: decoder.reset_paths,
        });
    }
    Ok(docs)
}

/// Where the key at `path` sits in `text` (1-based line and column), for error messages.
/// Sequence items are addressed by their index.
pub fn locate(text: &str, path: &[String]) -> Option<(usize, usize)> {
    let roots = build_nodes(text).ok()?;
    for root in roots.iter().rev().flatten() {
        if let Some(pos) = locate_in(root, path) {
            return Some(pos);
        }
    }
    None
}

fn locate_in(node: &Node, path: &[String]) -> Option<(usize, usize)> {
    let node = deref(node);
    let (first, rest) = match path.split_first() {
        Some(split) => split,
        None => return Some((node.line, node.column)),
    };
    match &node.kind {
        Kind::Map(pairs) => {
            for (k, v) in pairs.iter().rev() {
                if let Kind::Scalar(key, _) = &deref(k).kind {
                    if key == first {
                        if rest.is_empty() {
                            return Some((k.line, k.column));
                        }
                        return locate_in(v, rest);
                    }
                    if key == "<<" {
                        if let Some(found) = locate_in_merge(v, path) {
                            return Some(found);
                        }
                    }
                }
            }
            None
        }
        Kind::Seq(items) => {
            let index: usize = first.parse().ok()?;
            let item = items.get(index)?;
            if rest.is_empty() {
                return Some((item.line, item.column));
            }
            locate_in(item, rest)
        }
        _ => None,
    }
}

fn locate_in_merge(node: &Node, path: &[String]) -> Option<(usize, usize)> {
    let node = deref(node);
    match &node.kind {
        Kind::Seq(items) => items.iter().find_map(|i| locate_in(i, path)),
        _ => locate_in(node, path),
    }
}

fn deref(node: &Node) -> &Node {
    let mut n = node;
    let mut hops = 0;
    while let Kind::Alias(target) = &n.kind {
        n = target;
        hops += 1;
        if hops > 1000 {
            break;
        }
    }
    n
}

fn tag_name(tag: &str) -> String {
    match tag.strip_prefix("tag:yaml.org,2002:") {
        Some(suffix) => format!("!!{suffix}"),
        None => tag.to_string(),
    }
}

enum Frame {
    Seq(Node, Vec<Rc<Node>>, Option<String>),
    Map(
        Node,
        Vec<(Rc<Node>, Rc<Node>)>,
        Option<Rc<Node>>,
        Option<String>,
    ),
}

/// Builds the node trees of every document from libyaml's event stream.
fn build_nodes(text: &str) -> Result<Vec<Option<Rc<Node>>>, YamlError> {
    use libyaml_safer::{EventData, Parser, ScalarStyle};
    let mut input: &[u8] = text.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    let mut docs: Vec<Option<Rc<Node>>> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<String, Rc<Node>> = HashMap::new();
    let mut current: Option<Rc<Node>> = None;
    loop {
        let event = match parser.parse() {
            Ok(ev) => ev,
            Err(e) => {
                let mark = e.problem_mark();
                let mut message = e.problem().to_string();
                if let Some(context) = e.context() {
                    message = format!("{context}: {message}");
                }
                return Err(match mark {
                    Some(m) => YamlError::at(m.line as usize + 1, m.column as usize + 1, message),
                    None => YamlError::bare(message),
                });
            }
        };
        let line = event.start_mark.line as usize + 1;
        let column = event.start_mark.column as usize + 1;
        let finished: Option<(Node, Option<String>)> = match event.data {
            EventData::StreamStart { .. } => None,
            EventData::StreamEnd => break,
            EventData::DocumentStart { .. } => {
                current = None;
                anchors.clear();
                None
            }
            EventData::DocumentEnd { .. } => {
                docs.push(current.take());
                None
            }
            EventData::Alias { anchor } => match anchors.get(&anchor) {
                Some(target) => Some((
                    Node {
                        kind: Kind::Alias(Rc::clone(target)),
                        tag: None,
                        line,
                        column,
                    },
                    None,
                )),
                None => {
                    return Err(YamlError::at(
                        line,
                        column,
                        format!("unknown anchor '{anchor}' referenced"),
                    ))
                }
            },
            EventData::Scalar {
                anchor,
                tag,
                value,
                style,
                ..
            } => {
                let style = match style {
                    ScalarStyle::Plain | ScalarStyle::Any => Style::Plain,
                    _ => Style::Quoted,
                };
                Some((
                    Node {
                        kind: Kind::Scalar(value, style),
                        tag: tag.as_deref().map(tag_name),
                        line,
                        column,
                    },
                    anchor,
                ))
            }
            EventData::SequenceStart { anchor, tag, .. } => {
                if stack.len() > MAX_DEPTH {
                    return Err(YamlError::at(line, column, "exceeded max depth of 10000"));
                }
                let node = Node {
                    kind: Kind::Seq(Vec::new()),
                    tag: tag.as_deref().map(tag_name),
                    line,
                    column,
                };
                stack.push(Frame::Seq(node, Vec::new(), anchor));
                None
            }
            EventData::MappingStart { anchor, tag, .. } => {
                if stack.len() > MAX_DEPTH {
                    return Err(YamlError::at(line, column, "exceeded max depth of 10000"));
                }
                let node = Node {
                    kind: Kind::Map(Vec::new()),
                    tag: tag.as_deref().map(tag_name),
                    line,
                    column,
                };
                stack.push(Frame::Map(node, Vec::new(), None, anchor));
                None
            }
            EventData::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(mut node, items, anchor)) => {
                    node.kind = Kind::Seq(items);
                    Some((node, anchor))
                }
                _ => return Err(YamlError::at(line, column, "unbalanced sequence end")),
            },
            EventData::MappingEnd => match stack.pop() {
                Some(Frame::Map(mut node, pairs, pending, anchor)) => {
                    if pending.is_some() {
                        return Err(YamlError::at(line, column, "mapping key without a value"));
                    }
                    node.kind = Kind::Map(pairs);
                    Some((node, anchor))
                }
                _ => return Err(YamlError::at(line, column, "unbalanced mapping end")),
            },
        };
        if let Some((node, anchor)) = finished {
            let node = Rc::new(node);
            if let Some(anchor) = anchor {
                anchors.insert(anchor, Rc::clone(&node));
            }
            match stack.last_mut() {
                Some(Frame::Seq(_, items, _)) => items.push(node),
                Some(Frame::Map(_, pairs, pending, _)) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => pairs.push((key, node)),
                },
                None => current = Some(node),
            }
        }
    }
    Ok(docs)
}

/// go-yaml's limit on alias expansion ("document contains excessive aliasing").
fn allowed_alias_ratio(decode_count: usize) -> f64 {
    const LOW: f64 = 400_000.0;
    const HIGH: f64 = 4_000_000.0;
    let d = decode_count as f64;
    if d <= LOW {
        0.99
    } else if d >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((d - LOW) / (HIGH - LOW))
    }
}

#[derive(Default)]
struct Decoder {
    reset_paths: Vec<Vec<String>>,
    decode_count: usize,
    alias_count: usize,
    alias_depth: usize,
    active_aliases: Vec<*const Node>,
}

impl Decoder {
    /// Decodes `node` at `path`; `None` when it is tagged `!reset` (the key disappears).
    fn decode(
        &mut self,
        node: &Node,
        path: &mut Vec<String>,
        top: bool,
    ) -> Result<Option<Value>, YamlError> {
        self.decode_count += 1;
        if self.alias_depth > 0 {
            self.alias_count += 1;
        }
        if self.alias_count > 100
            && self.decode_count > 1000
            && (self.alias_count as f64 / self.decode_count as f64)
                > allowed_alias_ratio(self.decode_count)
        {
            return Err(YamlError::bare("document contains excessive aliasing"));
        }
        if path.len() > MAX_DEPTH {
            return Err(YamlError::at(
                node.line,
                node.column,
                "exceeded max depth of 10000",
            ));
        }
        if let Kind::Alias(target) = &node.kind {
            let ptr = Rc::as_ptr(target);
            if self.active_aliases.contains(&ptr) {
                return Err(YamlError::at(
                    node.line,
                    node.column,
                    "anchor value contains itself",
                ));
            }
            self.active_aliases.push(ptr);
            self.alias_depth += 1;
            let result = self.decode(target, path, top);
            self.alias_depth -= 1;
            self.active_aliases.pop();
            return result;
        }
        match node.tag.as_deref() {
            Some("!reset") if !top => {
                self.reset_paths.push(path.clone());
                return Ok(None);
            }
            Some("!override") if !top => self.reset_paths.push(path.clone()),
            _ => {}
        }
        match &node.kind {
            Kind::Scalar(text, style) => {
                resolve_scalar(text, *style, node.tag.as_deref(), node.line, node.column).map(Some)
            }
            Kind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    let v = self.decode(item, path, false);
                    path.pop();
                    if let Some(v) = v? {
                        out.push(v);
                    }
                }
                Ok(Some(Value::Seq(out)))
            }
            Kind::Map(pairs) => self.decode_map(pairs, path).map(|m| Some(Value::Map(m))),
            Kind::Alias(_) => Ok(None),
        }
    }

    fn decode_map(
        &mut self,
        pairs: &[(Rc<Node>, Rc<Node>)],
        path: &mut Vec<String>,
    ) -> Result<Map, YamlError> {
        // compose-go's ResetProcessor refuses duplicate keys before go-yaml sees them.
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (k, _) in pairs {
            let k = deref(k);
            if let Kind::Scalar(text, _) = &k.kind {
                if let Some(first) = seen.get(text.as_str()) {
                    return Err(YamlError::at(
                        k.line,
                        k.column,
                        format!("mapping key {:?} already defined at line {}", text, first),
                    ));
                }
                seen.insert(text, k.line);
            }
        }
        let mut out = Map::with_capacity(pairs.len());
        let mut merges: Vec<Value> = Vec::new();
        for (k, v) in pairs {
            let key_node = deref(k);
            let key_value = match &key_node.kind {
                Kind::Scalar(text, style) => {
                    if is_merge_key(text, *style, key_node.tag.as_deref()) {
                        // Paths under `<<` lose that segment (compose-go's ResetProcessor).
                        if let Some(merged) = self.decode(v, path, false)? {
                            check_merge_source(v, &merged)?;
                            merges.push(merged);
                        }
                        continue;
                    }
                    resolve_scalar(
                        text,
                        *style,
                        key_node.tag.as_deref(),
                        key_node.line,
                        key_node.column,
                    )?
                }
                Kind::Seq(_) | Kind::Map(_) => {
                    return Err(YamlError::at(
                        key_node.line,
                        key_node.column,
                        "invalid map key: a mapping or sequence cannot be a key",
                    ))
                }
                Kind::Alias(_) => Value::Null,
            };
            let key = match key_value {
                Value::Str(s) => s,
                other => {
                    return Err(YamlError::at(
                        key_node.line,
                        key_node.column,
                        format!(
                            "non-string key {}: {}",
                            key_location(path),
                            go_key_repr(&other)
                        ),
                    ))
                }
            };
            path.push(key);
            let decoded = self.decode(v, path, false);
            let key = path.pop().unwrap_or_default();
            if let Some(value) = decoded? {
                out.insert(key, value);
            }
        }
        // Explicit keys win over merged ones; among merged mappings the first wins.
        for merged in merges {
            let sources: Vec<Value> = match merged {
                Value::Seq(items) => items,
                other => vec![other],
            };
            for source in sources {
                if let Value::Map(m) = source {
                    for (k, v) in m {
                        out.entry(k).or_insert(v);
                    }
                }
            }
        }
        Ok(out)
    }
}

fn key_location(path: &[String]) -> String {
    if path.is_empty() {
        "at top level".to_string()
    } else {
        format!("in {}", path.join("."))
    }
}

fn go_key_repr(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => other.go_sprint(),
    }
}

fn check_merge_source(node: &Node, merged: &Value) -> Result<(), YamlError> {
    let ok = match merged {
        Value::Map(_) => true,
        Value::Seq(items) => {
            let n = deref(node);
            match &n.kind {
                Kind::Seq(nodes) => {
                    nodes.iter().all(|i| matches!(deref(i).kind, Kind::Map(_)))
                        && items.iter().all(|i| matches!(i, Value::Map(_)))
                }
                _ => false,
            }
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(YamlError::at(
            node.line,
            node.column,
            "map merge requires map or sequence of maps as the value",
        ))
    }
}

fn is_merge_key(text: &str, style: Style, tag: Option<&str>) -> bool {
    text == "<<" && style == Style::Plain && matches!(tag, None | Some("!") | Some("!!merge"))
}

/// go-yaml v3's `resolve` for one scalar.
fn resolve_scalar(
    text: &str,
    style: Style,
    tag: Option<&str>,
    line: usize,
    column: usize,
) -> Result<Value, YamlError> {
    let tag = match tag {
        Some("!") => None,
        other => other,
    };
    if style == Style::Quoted && tag.is_none() {
        return Ok(Value::Str(text.to_string()));
    }
    match tag {
        None => Ok(resolve_plain(text, true)),
        Some("!!str") => Ok(Value::Str(text.to_string())),
        Some("!!binary") => decode_base64(text).map(Value::Str).ok_or_else(|| {
            YamlError::at(line, column, "!!binary value contains invalid base64 data")
        }),
        Some(t @ ("!!int" | "!!float" | "!!bool" | "!!null" | "!!timestamp")) => {
            let resolved = resolve_plain(text, t == "!!timestamp");
            let ok = matches!(
                (t, &resolved),
                ("!!int", Value::Int(_) | Value::Uint(_))
                    | ("!!float", Value::Float(_))
                    | ("!!bool", Value::Bool(_))
                    | ("!!null", Value::Null)
                    | ("!!timestamp", Value::Time(_))
            );
            if ok {
                return Ok(resolved);
            }
            if t == "!!float" {
                match resolved {
                    Value::Int(i) => return Ok(Value::Float(i as f64)),
                    Value::Uint(u) => return Ok(Value::Float(u as f64)),
                    _ => {}
                }
            }
            let rtag = match resolved {
                Value::Null => "!!null",
                Value::Bool(_) => "!!bool",
                Value::Int(_) | Value::Uint(_) => "!!int",
                Value::Float(_) => "!!float",
                Value::Time(_) => "!!timestamp",
                _ => "!!str",
            };
            Err(YamlError::at(
                line,
                column,
                format!("cannot decode {rtag} `{text}` as a {t}"),
            ))
        }
        // Any other tag (`!reset`, `!override`, custom ones): go-yaml keeps the text.
        Some(_) => Ok(Value::Str(text.to_string())),
    }
}

/// Resolution of an untagged plain scalar, exactly as go-yaml v3 does it.
pub(crate) fn resolve_plain(text: &str, try_timestamp: bool) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = text.as_bytes()[0];
    match first {
        b'.' => {
            if let Some(f) = go_parse_float(text) {
                return Value::Float(f);
            }
        }
        b'0'..=b'9' | b'+' | b'-' => {
            if try_timestamp && looks_like_timestamp(text) {
                return Value::Time(text.to_string());
            }
            let plain: String = text.chars().filter(|c| *c != '_').collect();
            if let Some(i) = go_parse_int(&plain) {
                return Value::Int(i);
            }
            if let Some(u) = go_parse_uint(&plain) {
                return Value::Uint(u);
            }
            if is_yaml_style_float(&plain) {
                if let Some(f) = go_parse_float(&plain) {
                    return Value::Float(f);
                }
            }
        }
        _ => {}
    }
    Value::Str(text.to_string())
}

/// `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_base0_magnitude(body)?;
    if neg {
        if magnitude <= (i64::MAX as u64) + 1 {
            Some((magnitude as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else if magnitude <= i64::MAX as u64 {
        Some(magnitude as i64)
    } else {
        None
    }
}

/// `strconv.ParseUint(s, 0, 64)` (no sign allowed).
pub(crate) fn go_parse_uint(s: &str) -> Option<u64> {
    if s.starts_with(['+', '-']) {
        return None;
    }
    parse_base0_magnitude(s)
}

fn parse_base0_magnitude(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let lower = s.as_bytes();
    let (radix, digits) = if lower.len() >= 2 && lower[0] == b'0' {
        match lower[1] {
            b'x' | b'X' => (16, &s[2..]),
            b'o' | b'O' => (8, &s[2..]),
            b'b' | b'B' => (2, &s[2..]),
            _ => (8, &s[1..]),
        }
    } else {
        (10, s)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// go-yaml's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// `strconv.ParseFloat(s, 64)` for the decimal forms go-yaml hands it (an out-of-range value
/// is an error, as in Go).
pub(crate) fn go_parse_float(s: &str) -> Option<f64> {
    if s.contains('_') {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if body.starts_with("inf") || body.starts_with("nan") {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    if f.is_finite() {
        Some(f)
    } else {
        None
    }
}

/// go-yaml's timestamp check: `YYYY-` then one of its accepted layouts.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let year_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if year_digits != 4 || b.len() == 4 || b[4] != b'-' {
        return false;
    }
    parse_timestamp(s)
}

fn parse_timestamp(s: &str) -> bool {
    let mut p = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let year = match p.fixed(4) {
        Some(y) => y,
        None => return false,
    };
    if !p.eat(b'-') {
        return false;
    }
    let month = match p.one_or_two() {
        Some(m) => m,
        None => return false,
    };
    if !p.eat(b'-') {
        return false;
    }
    let day = match p.one_or_two() {
        Some(d) => d,
        None => return false,
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in(month, year) {
        return false;
    }
    if p.done() {
        return true;
    }
    let sep = p.b[p.i];
    let zone_required = match sep {
        b'T' | b't' => true,
        b' ' => false,
        _ => return false,
    };
    p.i += 1;
    let hour = p.one_or_two();
    if hour.is_none() || !p.eat(b':') {
        return false;
    }
    let minute = p.one_or_two();
    if minute.is_none() || !p.eat(b':') {
        return false;
    }
    let second = p.one_or_two();
    match (hour, minute, second) {
        (Some(h), Some(m), Some(sec)) if h < 24 && m < 60 && sec < 60 => {}
        _ => return false,
    }
    if p.peek() == Some(b'.') {
        p.i += 1;
        let start = p.i;
        while p.peek().is_some_and(|c| c.is_ascii_digit()) {
            p.i += 1;
        }
        if p.i == start || p.i - start > 9 {
            return false;
        }
    }
    if !zone_required {
        return p.done();
    }
    match p.peek() {
        Some(b'Z') => {
            p.i += 1;
            p.done()
        }
        Some(b'+') | Some(b'-') => {
            p.i += 1;
            let hh = p.fixed(2);
            if hh.is_none() || !p.eat(b':') {
                return false;
            }
            let mm = p.fixed(2);
            matches!((hh, mm), (Some(h), Some(m)) if h < 24 && m < 60) && p.done()
        }
        _ => false,
    }
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn fixed(&mut self, n: usize) -> Option<u32> {
        let end = self.i + n;
        let part = self.b.get(self.i..end)?;
        if !part.iter().all(|c| c.is_ascii_digit()) {
            return None;
        }
        self.i = end;
        std::str::from_utf8(part).ok()?.parse().ok()
    }
    fn one_or_two(&mut self) -> Option<u32> {
        let start = self.i;
        while self.i < self.b.len() && self.i - start < 2 && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
}

fn decode_base64(text: &str) -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let clean: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if clean.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n: u32 = 0;
        let mut pad = 0;
        for &c in chunk {
            n <<= 6;
            if c == b'=' {
                pad += 1;
            } else {
                n |= ALPHABET.iter().position(|a| *a == c)? as u32;
            }
        }
        out.push((n >> 16) as u8);
        if pad < 2 {
            out.push((n >> 8) as u8);
        }
        if pad < 1 {
            out.push(n as u8);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Value {
        let docs = parse_documents(text).expect("parses");
        docs[0].value.clone().expect("a value")
    }

    fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
        v.as_map().and_then(|m| m.get(key)).expect("key")
    }

    #[test]
    fn scalars_resolve_like_go_yaml() {
        let v = one("a: 0755\nb: '0755'\nc: 1_000\nd: 09\ne: yes\nf: ~\ng: 0x1F\nh: 2001-12-14\ni: .5\nj: +3\nk: 0o17\nl: 1e3\n");
        assert_eq!(get(&v, "a"), &Value::Int(493));
        assert_eq!(get(&v, "b"), &Value::Str("0755".into()));
        assert_eq!(get(&v, "c"), &Value::Int(1000));
        assert_eq!(get(&v, "d"), &Value::Float(9.0));
        assert_eq!(get(&v, "e"), &Value::Str("yes".into()));
        assert_eq!(get(&v, "f"), &Value::Null);
        assert_eq!(get(&v, "g"), &Value::Int(31));
        assert_eq!(get(&v, "h"), &Value::Time("2001-12-14".into()));
        assert_eq!(get(&v, "i"), &Value::Float(0.5));
        assert_eq!(get(&v, "j"), &Value::Int(3));
        assert_eq!(get(&v, "k"), &Value::Int(15));
        assert_eq!(get(&v, "l"), &Value::Float(1000.0));
    }

    #[test]
    fn merge_keys_keep_explicit_keys_first() {
        let v = one("base: &b {x: 1, y: 2}\nother: &o {y: 3, z: 4}\nm:\n  <<: [*b, *o]\n  x: 9\n");
        let m = get(&v, "m");
        assert_eq!(get(m, "x"), &Value::Int(9));
        assert_eq!(get(m, "y"), &Value::Int(2));
        assert_eq!(get(m, "z"), &Value::Int(4));
    }

    #[test]
    fn reset_and_override_are_recorded() {
        let docs = parse_documents(
            "services:\n  a:\n    ports: !reset []\n    build: !override {context: x}\n",
        )
        .unwrap();
        let d = &docs[0];
        assert_eq!(d.reset_paths.len(), 2);
        let a = get(get(d.value.as_ref().unwrap(), "services"), "a");
        assert!(a.as_map().unwrap().get("ports").is_none());
        assert!(a.as_map().unwrap().get("build").is_some());
    }

    #[test]
    fn duplicate_keys_and_non_string_keys_are_refused() {
        let e = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("already defined at line 1"), "{e:?}");
        assert_eq!(e.line, Some(2));
        let e = parse_documents("services:\n  1: x\n").unwrap_err();
        assert!(e.message.contains("non-string key in services: 1"), "{e:?}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse_documents(&text).unwrap_err();
        assert!(e.message.contains("excessive aliasing"));
    }

    #[test]
    fn locate_finds_keys() {
        let text = "services:\n  api:\n    build:\n      args:\n        TAG: x\n";
        let path: Vec<String> = ["services", "api", "build", "args", "TAG"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(locate(text, &path), Some((5, 9)));
    }
}
