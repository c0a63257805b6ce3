//! The parts of an image config that the store keeps in its image record (the config itself
//! is kept whole as a blob, for `inspect`, `history` and `run`).

use chrono::{DateTime, Utc};

use super::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the image config is not valid JSON")]
    Json(#[source] serde_json::Error),
    #[error("the image config has no rootfs.diff_ids")]
    NoDiffIds,
    #[error("a diff id in the image config is not a digest: {0}")]
    BadDiffId(String),
    #[error("the image config is malformed: `{field}` must be {expected}, not {found}")]
    FieldType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
}

/// What a JSON value is, in words.
fn kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value as V;
    match v {
        V::Null => "null",
        V::Bool(_) => "a boolean",
        V::Number(_) => "a number",
        V::String(_) => "a string",
        V::Array(_) => "a list",
        V::Object(_) => "an object",
    }
}

/// The container settings whose types `run`, `inspect` and `commit` rely on, as Docker's
/// types have them; a config that gets them wrong is refused when it arrives (as Docker's
/// JSON decoding refuses it) rather than read as if they were absent. `null` is absence.
const TYPED_FIELDS: &[(&str, Shape)] = &[
    ("Cmd", Shape::Strings),
    ("Entrypoint", Shape::Strings),
    ("Env", Shape::Strings),
    ("User", Shape::String),
    ("WorkingDir", Shape::String),
    ("StopSignal", Shape::String),
    ("ExposedPorts", Shape::Object),
    ("Volumes", Shape::Object),
    ("Labels", Shape::StringMap),
];

#[derive(Clone, Copy)]
enum Shape {
    String,
    Strings,
    Object,
    StringMap,
}

fn check_fields(value: &serde_json::Value) -> Result<(), ConfigError> {
    let wrong = |field: String, expected: &'static str, found: &serde_json::Value| {
        Err(ConfigError::FieldType {
            field,
            expected,
            found: kind(found),
        })
    };
    for top in ["created", "architecture", "os"] {
        match value.get(top) {
            None | Some(serde_json::Value::Null | serde_json::Value::String(_)) => {}
            Some(other) => return wrong(top.to_string(), "a string", other),
        }
    }
    let config = match value.get("config") {
        None | Some(serde_json::Value::Null) => return Ok(()),
        Some(c @ serde_json::Value::Object(_)) => c,
        Some(other) => return wrong("config".into(), "an object", other),
    };
    for (name, shape) in TYPED_FIELDS {
        let Some(v) = config.get(name).filter(|v| !v.is_null()) else {
            continue;
        };
        let field = || format!("config.{name}");
        match shape {
            Shape::String if !v.is_string() => return wrong(field(), "a string", v),
            Shape::Object if !v.is_object() => return wrong(field(), "an object", v),
            Shape::Strings | Shape::StringMap => {
                let (expected, items): (_, Vec<&serde_json::Value>) = match (shape, v) {
                    (Shape::Strings, serde_json::Value::Array(a)) => {
                        ("a list of strings", a.iter().collect())
                    }
                    (Shape::StringMap, serde_json::Value::Object(o)) => {
                        ("an object of strings", o.values().collect())
                    }
                    (Shape::Strings, _) => return wrong(field(), "a list of strings", v),
                    _ => return wrong(field(), "an object of strings", v),
                };
                if let Some(bad) = items.iter().find(|i| !i.is_string()) {
                    return wrong(field(), expected, bad);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub struct ConfigSummary {
    pub diff_ids: Vec<Digest>,
    pub created: Option<DateTime<Utc>>,
    pub architecture: String,
    pub os: String,
}

impl ConfigSummary {
    pub fn parse(bytes: &[u8]) -> Result<ConfigSummary, ConfigError> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(ConfigError::Json)?;
        check_fields(&value)?;
        let diff_ids = value
            .pointer("/rootfs/diff_ids")
            .and_then(|v| v.as_array())
            .ok_or(ConfigError::NoDiffIds)?
            .iter()
            .map(|d| {
                d.as_str()
                    .and_then(|s| s.parse::<Digest>().ok())
                    .ok_or_else(|| ConfigError::BadDiffId(d.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let text = |key: &str| {
            value
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        Ok(ConfigSummary {
            diff_ids,
            created: value
                .get("created")
                .and_then(|v| v.as_str())
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc)),
            architecture: text("architecture"),
            os: text("os"),
        })
    }
}

/// Why a `--change`/`-c` instruction was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(
        "invalid --change `{0}`: expected INSTRUCTION VALUE with one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL"
    )]
    Unknown(String),
    #[error("invalid --change `{instruction}`: {reason}")]
    Invalid { instruction: String, reason: String },
}

/// Applies one Dockerfile-style instruction (`CMD ["sh"]`, `ENV A=1 B=2`, `EXPOSE 80/udp`, …)
/// to `config`, the `config` object of an image config, as `docker commit --change` and
/// `docker import --change` do.
pub fn apply_change(config: &mut serde_json::Value, instruction: &str) -> Result<(), ChangeError> {
    use serde_json::{Value, json};
    let trimmed = instruction.trim();
    let (word, rest) = trimmed
        .split_once(char::is_whitespace)
        .map(|(w, r)| (w, r.trim()))
        .unwrap_or((trimmed, ""));
    let invalid = |reason: &str| ChangeError::Invalid {
        instruction: instruction.to_string(),
        reason: reason.to_string(),
    };
    if rest.is_empty() {
        return Err(if word.is_empty() {
            ChangeError::Unknown(instruction.to_string())
        } else {
            invalid("it has no value")
        });
    }
    if !config.is_object() {
        *config = json!({});
    }
    let obj = config.as_object_mut().expect("made an object above");
    // `["a", "b"]` is taken as it is; anything else is a shell command line.
    let exec_form = |shell: bool| -> Result<Value, ChangeError> {
        if rest.starts_with('[') {
            let list: Vec<String> = serde_json::from_str(rest)
                .map_err(|_| invalid("a value in brackets must be a JSON array of strings"))?;
            Ok(json!(list))
        } else if shell {
            Ok(json!(["/bin/sh", "-c", rest]))
        } else {
            Ok(json!(rest.split_whitespace().collect::<Vec<_>>()))
        }
    };
    match word.to_ascii_uppercase().as_str() {
        "CMD" => {
            obj.insert("Cmd".into(), exec_form(true)?);
        }
        "ENTRYPOINT" => {
            obj.insert("Entrypoint".into(), exec_form(true)?);
        }
        "USER" => {
            obj.insert("User".into(), json!(rest));
        }
        "WORKDIR" => {
            if !rest.starts_with('/') {
                return Err(invalid("WORKDIR must be an absolute path"));
            }
            obj.insert("WorkingDir".into(), json!(rest));
        }
        "STOPSIGNAL" => {
            obj.insert("StopSignal".into(), json!(rest));
        }
        "ENV" => {
            let pairs = key_values(rest).ok_or_else(|| invalid("expected NAME=VALUE"))?;
            let env = obj.entry("Env").or_insert_with(|| json!([]));
            if !env.is_array() {
                *env = json!([]);
            }
            let list = env.as_array_mut().expect("made an array above");
            for (key, value) in pairs {
                let prefix = format!("{key}=");
                list.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
                list.push(json!(format!("{key}={value}")));
            }
        }
        "LABEL" => {
            let pairs = key_values(rest).ok_or_else(|| invalid("expected KEY=VALUE"))?;
            let labels = obj.entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (key, value) in pairs {
                labels[key] = json!(value);
            }
        }
        "EXPOSE" => {
            let ports = obj.entry("ExposedPorts").or_insert_with(|| json!({}));
            if !ports.is_object() {
                *ports = json!({});
            }
            for port in rest.split_whitespace() {
                let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
                let proto = proto.to_ascii_lowercase();
                if number.parse::<u16>().is_err()
                    || !matches!(proto.as_str(), "tcp" | "udp" | "sctp")
                {
                    return Err(invalid(&format!("`{port}` is not PORT[/tcp|/udp|/sctp]")));
                }
                ports[format!("{number}/{proto}")] = json!({});
            }
        }
        "VOLUME" => {
            let paths = match exec_form(false)? {
                Value::Array(list) => list,
                _ => unreachable!("exec_form gives arrays"),
            };
            let volumes = obj.entry("Volumes").or_insert_with(|| json!({}));
            if !volumes.is_object() {
                *volumes = json!({});
            }
            for path in paths {
                let path = path.as_str().unwrap_or_default().to_string();
                if !path.starts_with('/') {
                    return Err(invalid("a VOLUME must be an absolute path"));
                }
                volumes[path] = json!({});
            }
        }
        _ => return Err(ChangeError::Unknown(instruction.to_string())),
    }
    Ok(())
}

/// `A=1 B="two words"` (or the old `NAME VALUE` form with one pair) as pairs.
fn key_values(text: &str) -> Option<Vec<(String, String)>> {
    let first = text.split_whitespace().next()?;
    if !first.contains('=') {
        let (key, value) = text.split_once(char::is_whitespace)?;
        return Some(vec![(key.to_string(), value.trim().to_string())]);
    }
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(pairs);
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        let mut value = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => {
                    chars.next();
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                    continue;
                }
                _ => value.push(c),
            }
            chars.next();
        }
        if quote.is_some() {
            return None;
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configs_with_fields_of_the_wrong_type_are_malformed() {
        let parse = |config: serde_json::Value| {
            let mut whole = json!({"rootfs": {"type": "layers", "diff_ids": []}});
            whole["config"] = config;
            ConfigSummary::parse(&serde_json::to_vec(&whole).unwrap()).map(|_| ())
        };
        parse(json!({"Cmd": ["sh"], "Env": null, "Labels": {"a": "b"}, "ExposedPorts": {}}))
            .unwrap();
        parse(json!(null)).unwrap();
        for (config, message) in [
            (
                json!({"Cmd": 42}),
                "`config.Cmd` must be a list of strings, not a number",
            ),
            (
                json!({"Env": "PATH=/bin"}),
                "`config.Env` must be a list of strings, not a string",
            ),
            (
                json!({"Entrypoint": ["sh", 1]}),
                "`config.Entrypoint` must be a list of strings, not a number",
            ),
            (
                json!({"User": ["root"]}),
                "`config.User` must be a string, not a list",
            ),
            (
                json!({"Labels": {"a": {}}}),
                "`config.Labels` must be an object of strings, not an object",
            ),
            (
                json!({"ExposedPorts": ["80/tcp"]}),
                "`config.ExposedPorts` must be an object, not a list",
            ),
            (json!([]), "`config` must be an object, not a list"),
        ] {
            let err = parse(config).unwrap_err().to_string();
            assert!(err.ends_with(message), "{err}");
        }
        let err = ConfigSummary::parse(br#"{"created": 5, "rootfs": {"diff_ids": []}}"#);
        assert!(err.is_err_and(|e| e.to_string().contains("`created` must be a string")));
    }

    fn applied(changes: &[&str]) -> serde_json::Value {
        let mut config = json!({"Env": ["PATH=/bin", "A=old"], "Cmd": ["sh"]});
        for c in changes {
            apply_change(&mut config, c).unwrap();
        }
        config
    }

    #[test]
    fn dockerfile_instructions_change_the_config() {
        let c = applied(&[
            r#"CMD ["echo", "hi"]"#,
            "ENTRYPOINT /bin/app --flag",
            r#"ENV A=new B="two words""#,
            "env C 3",
            "EXPOSE 80 53/udp",
            "LABEL org.example=yes",
            "USER 1000:1000",
            "WORKDIR /srv",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ]);
        assert_eq!(c["Cmd"], json!(["echo", "hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/bin/app --flag"]));
        assert_eq!(
            c["Env"],
            json!(["PATH=/bin", "A=new", "B=two words", "C=3"])
        );
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], json!({"org.example": "yes"}));
        assert_eq!(c["User"], "1000:1000");
        assert_eq!(c["WorkingDir"], "/srv");
        assert_eq!(c["Volumes"], json!({"/data": {}}));
        assert_eq!(c["StopSignal"], "SIGINT");
    }

    #[test]
    fn bad_instructions_are_refused() {
        let mut config = json!({});
        for bad in [
            "RUN make",
            "CMD",
            "",
            "EXPOSE http",
            "WORKDIR relative",
            r#"CMD ["unclosed""#,
            r#"ENV A="unclosed"#,
        ] {
            assert!(apply_change(&mut config, bad).is_err(), "{bad}");
        }
    }
}
