//! The short syntaxes compose expands before validating a model: service volumes
//! (`./src:/app:ro`) and ports (`127.0.0.1:8080-8081:80-81/udp`). Ports of compose-go's
//! `format.ParseVolume` and of the port parser compose uses (docker/go-connections `nat`), so
//! that wharf accepts and refuses exactly the same specs.

use crate::value::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeSpec {
    pub kind: &'static str,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub nocopy: bool,
    pub propagation: Option<String>,
    pub selinux: Option<String>,
}

impl VolumeSpec {
    /// The long syntax compose turns the short one into.
    pub fn to_map(&self) -> Map {
        let mut m = Map::new();
        m.insert("type".into(), Value::Str(self.kind.into()));
        if !self.source.is_empty() {
            m.insert("source".into(), Value::Str(self.source.clone()));
        }
        if !self.target.is_empty() {
            m.insert("target".into(), Value::Str(self.target.clone()));
        }
        if self.read_only {
            m.insert("read_only".into(), Value::Bool(true));
        }
        if self.kind == "bind" {
            let mut bind = Map::new();
            if let Some(p) = &self.propagation {
                bind.insert("propagation".into(), Value::Str(p.clone()));
            }
            if let Some(s) = &self.selinux {
                bind.insert("selinux".into(), Value::Str(s.clone()));
            }
            bind.insert("create_host_path".into(), Value::Bool(true));
            m.insert("bind".into(), Value::Map(bind));
        } else {
            let mut vol = Map::new();
            if self.nocopy {
                vol.insert("nocopy".into(), Value::Bool(true));
            }
            m.insert("volume".into(), Value::Map(vol));
        }
        m
    }
}

/// `format.ParseVolume`.
pub fn parse_volume(spec: &str) -> Result<VolumeSpec, String> {
    let mut volume = VolumeSpec::default();
    match spec.len() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => {
            volume.target = spec.to_string();
            volume.kind = "volume";
            return Ok(volume);
        }
        _ => {}
    }
    let bytes = spec.as_bytes();
    let mut buffer: Vec<char> = Vec::new();
    let mut in_var = 0usize;
    let chars: Vec<(usize, char)> = spec
        .char_indices()
        .chain(std::iter::once((spec.len(), '\0')))
        .collect();
    for (i, c) in chars {
        let end = i == spec.len();
        if !end && c == '$' && i + 1 < spec.len() && bytes[i + 1] == b'{' {
            in_var += 1;
            buffer.push(c);
            continue;
        }
        if !end && c == '}' && in_var > 0 {
            in_var -= 1;
            buffer.push(c);
            continue;
        }
        if !end && c == ':' && buffer.len() == 1 && buffer[0].is_alphabetic() {
            buffer.push(c);
        } else if (c == ':' || end) && in_var == 0 {
            if let Err(e) = populate(end, &buffer, &mut volume) {
                return Err(format!("invalid spec: {spec}: {e}"));
            }
            buffer.clear();
        } else {
            buffer.push(c);
        }
    }
    populate_type(&mut volume);
    Ok(volume)
}

fn populate(end: bool, buffer: &[char], volume: &mut VolumeSpec) -> Result<(), &'static str> {
    let s: String = buffer.iter().collect();
    if buffer.is_empty() {
        return Err("empty section between colons");
    }
    if volume.source.is_empty() && end {
        volume.target = s;
        return Ok(());
    }
    if volume.source.is_empty() {
        volume.source = s;
        return Ok(());
    }
    if volume.target.is_empty() {
        volume.target = s;
        return Ok(());
    }
    if !end {
        return Err("too many colons");
    }
    for option in s.split(',') {
        match option {
            "ro" => volume.read_only = true,
            "rw" => volume.read_only = false,
            "nocopy" => volume.nocopy = true,
            "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                volume.propagation = Some(option.to_string())
            }
            "z" | "Z" => volume.selinux = Some(option.to_string()),
            _ => {}
        }
    }
    Ok(())
}

fn populate_type(volume: &mut VolumeSpec) {
    volume.kind = if is_file_path(&volume.source) {
        "bind"
    } else {
        "volume"
    };
}

fn is_file_path(source: &str) -> bool {
    let Some(first) = source.chars().next() else {
        return false;
    };
    if matches!(first, '.' | '/' | '~') || source.starts_with("\\\\") {
        return true;
    }
    let next = &source[first.len_utf8()..];
    match next.as_bytes().first() {
        Some(b':') => first.is_alphabetic(),
        _ => false,
    }
}

/// One published port, as compose's long syntax holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct PortSpec {
    pub host_ip: String,
    pub target: u64,
    pub published: String,
    pub protocol: String,
}

impl PortSpec {
    pub fn to_map(&self) -> Map {
        let mut m = Map::new();
        m.insert("mode".into(), Value::Str("ingress".into()));
        if !self.host_ip.is_empty() {
            m.insert("host_ip".into(), Value::Str(self.host_ip.clone()));
        }
        m.insert("target".into(), Value::Int(self.target as i64));
        if !self.published.is_empty() {
            m.insert("published".into(), Value::Str(self.published.clone()));
        }
        m.insert("protocol".into(), Value::Str(self.protocol.clone()));
        m
    }
}

fn parse_port_range(ports: &str) -> Result<(u64, u64), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let parse = |s: &str| -> Result<u64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
        }
        match s.parse::<u64>() {
            Ok(v) if v <= 65535 => Ok(v),
            _ => Err(format!(
                "strconv.ParseUint: parsing {s:?}: value out of range"
            )),
        }
    };
    match ports.split_once('-') {
        None => {
            let v = parse(ports)?;
            Ok((v, v))
        }
        Some((a, b)) => {
            let b = b.split('-').next().unwrap_or(b);
            let start = parse(a)?;
            let end = parse(b)?;
            if end < start {
                return Err(format!("invalid range specified for port: {ports}"));
            }
            Ok((start, end))
        }
    }
}

/// `types.ParsePortConfig` (docker/go-connections `nat.ParsePortSpec`).
pub fn parse_port(raw: &str) -> Result<Vec<PortSpec>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (mut ip, host) = match n {
        1 => (String::new(), ""),
        2 => (String::new(), parts[0]),
        3 => (parts[0].to_string(), parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    let (proto, container) = split_proto_port(container);
    if ip.starts_with('[') {
        match ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) => ip = inner.to_string(),
            None => return Err(format!("invalid IP address {ip}")),
        }
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) =
        parse_port_range(&container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host.is_empty() {
        (0, 0)
    } else {
        parse_port_range(host).map_err(|_| format!("invalid hostPort: {host}"))?
    };
    if !host.is_empty() && (end - start) != (hend - hstart) && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host}"
        ));
    }
    let proto_lower = proto.to_lowercase();
    if !matches!(proto_lower.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let published = if host.is_empty() {
            String::new()
        } else if hend != hstart && end == start {
            format!("{hstart}-{hend}")
        } else {
            (hstart + i).to_string()
        };
        out.push(PortSpec {
            host_ip: ip.clone(),
            target: start + i,
            published,
            protocol: proto_lower.clone(),
        });
    }
    Ok(out)
}

fn split_proto_port(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 {
        return ("tcp".into(), raw.to_string());
    }
    if parts[1].is_empty() {
        return ("tcp".into(), parts[0].to_string());
    }
    (parts[1].to_string(), parts[0].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        let v = parse_volume("./src:/app:ro").unwrap();
        assert_eq!(
            (v.kind, v.source.as_str(), v.target.as_str(), v.read_only),
            ("bind", "./src", "/app", true)
        );
        let v = parse_volume("data:/var/lib").unwrap();
        assert_eq!(v.kind, "volume");
        let v = parse_volume("/anon").unwrap();
        assert_eq!((v.kind, v.target.as_str()), ("volume", "/anon"));
        assert!(parse_volume("ab::c").is_err());
        assert!(parse_volume("ab:/c:/d:/e").is_err());
        assert_eq!(parse_volume("C:\\x:/y").unwrap().source, "C:\\x");
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("80").unwrap()[0].target, 80);
        assert_eq!(parse_port("8080-8081:80-81/udp").unwrap().len(), 2);
        assert_eq!(
            parse_port("127.0.0.1:8080:80").unwrap()[0].host_ip,
            "127.0.0.1"
        );
        assert_eq!(parse_port("[::1]:8080:80").unwrap()[0].host_ip, "::1");
        assert!(parse_port("abc").is_err());
        assert!(parse_port("80/xyz").is_err());
        assert!(parse_port("99999").is_err());
        assert!(parse_port("1.2.3:80:80").is_err());
    }
}
