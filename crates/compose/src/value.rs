//! The untyped compose model: what go-yaml hands compose-go (`map[string]any` trees), before
//! anything is typed.
//!
//! Scalars keep go-yaml's types (int, uint64 beyond int64, float64, bool, nil, string, and
//! `time.Time` for unquoted timestamps), because compose's later steps (schema validation,
//! `fmt.Sprint` of build args and labels, type casts) behave differently for each.

use indexmap::IndexMap;

/// A mapping with string keys, in document order (compose-go's are unordered Go maps; every
/// place where order would show, compose sorts).
pub type Map = IndexMap<String, Value>;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX` (go-yaml's `uint64`).
    Uint(u64),
    Float(f64),
    Str(String),
    /// An unquoted timestamp (go-yaml decodes it as `time.Time`): kept as written.
    Time(String),
    Seq(Vec<Value>),
    Map(Map),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Go's type name, as compose's `%T` error messages print it.
    pub fn go_type(&self) -> &'static str {
        match self {
            Value::Null => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Time(_) => "time.Time",
            Value::Seq(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
        }
    }

    /// `fmt.Sprint(v)` as Go prints it: how compose turns numbers and booleans in build args,
    /// labels and extra hosts into strings.
    pub fn go_sprint(&self) -> String {
        let mut out = String::new();
        self.write_sprint(&mut out);
        out
    }

    fn write_sprint(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Uint(u) => out.push_str(&u.to_string()),
            Value::Float(f) => out.push_str(&go_float(*f)),
            Value::Str(s) | Value::Time(s) => out.push_str(s),
            Value::Seq(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    item.write_sprint(out);
                }
                out.push(']');
            }
            Value::Map(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push_str("map[");
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    if let Some(v) = map.get(*k) {
                        v.write_sprint(out);
                    }
                }
                out.push(']');
            }
        }
    }

    /// The JSON form (for schema validation and output). A timestamp becomes an object no
    /// compose schema accepts where a type is required, as `time.Time` fails the reference's
    /// validation.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Uint(u) => J::from(*u),
            Value::Float(f) => {
                if f.is_finite() {
                    serde_json::Number::from_f64(*f)
                        .map(J::Number)
                        .unwrap_or(J::Null)
                } else if f.is_nan() {
                    J::from(0)
                } else if *f > 0.0 {
                    J::from(f64::MAX)
                } else {
                    J::from(f64::MIN)
                }
            }
            Value::Str(s) => J::String(s.clone()),
            Value::Time(s) => {
                let mut m = serde_json::Map::new();
                m.insert(TIME_MARKER.to_string(), J::String(s.clone()));
                J::Object(m)
            }
            Value::Seq(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(map) => {
                J::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// The JSON form for output: timestamps print as Go prints a `time.Time` (RFC 3339).
    pub fn to_output_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Time(s) => J::String(rfc3339(s)),
            Value::Seq(items) => J::Array(items.iter().map(Value::to_output_json).collect()),
            Value::Map(map) => J::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), v.to_output_json()))
                    .collect(),
            ),
            other => other.to_json(),
        }
    }
}

/// The JSON form of a mapping (see [`Value::to_json`]).
pub fn map_to_json(map: &Map) -> serde_json::Value {
    serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// A YAML timestamp as Go's `time.Time` marshals to JSON (`2001-12-14T00:00:00Z`).
fn rfc3339(s: &str) -> String {
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (
        parts.next().unwrap_or("0"),
        parts.next().unwrap_or("1"),
        parts.next().unwrap_or("1"),
    );
    let two = |p: &str| format!("{:0>2}", p);
    if rest.is_empty() {
        return format!("{y}-{}-{}T00:00:00Z", two(m), two(d));
    }
    let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    let (clock, frac) = match time.split_once('.') {
        Some((c, f)) => (c, f.trim_end_matches('0')),
        None => (time, ""),
    };
    let mut hms = clock.splitn(3, ':');
    let (h, mi, se) = (
        hms.next().unwrap_or("0"),
        hms.next().unwrap_or("0"),
        hms.next().unwrap_or("0"),
    );
    let zone = match zone {
        "" | "Z" | "+00:00" | "-00:00" => "Z",
        z => z,
    };
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    format!(
        "{y}-{}-{}T{}:{}:{}{frac}{zone}",
        two(m),
        two(d),
        two(h),
        two(mi),
        two(se)
    )
}

/// The key standing for a `time.Time` in the JSON handed to schema validation.
pub(crate) const TIME_MARKER: &str = "\u{0}time.Time";

/// `strconv.FormatFloat(f, 'g', -1, 64)`, which is what `fmt.Sprint` prints for a float64.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like Go's shortest formatting.
    let e = format!("{:e}", f);
    let (mantissa, exp) = match e.split_once('e') {
        Some(parts) => parts,
        None => return e,
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        // %e form: d.ddde±XX
        let mut chars = digits.chars();
        if let Some(first) = chars.next() {
            out.push(first);
        }
        let rest: String = chars.collect();
        if !rest.is_empty() {
            out.push('.');
            out.push_str(&rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push('0');
        }
        out.push_str(&abs.to_string());
        return out;
    }
    let dp = exp + 1; // position of the decimal point in `digits`
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let dp = dp as usize;
        if digits.len() <= dp {
            out.push_str(&digits);
            for _ in digits.len()..dp {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..dp]);
            out.push('.');
            out.push_str(&digits[dp..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5e-7), "-2.5e-07");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn sprint_of_collections() {
        let v = Value::Seq(vec![Value::Int(1), Value::Str("a".into())]);
        assert_eq!(v.go_sprint(), "[1 a]");
    }
}
