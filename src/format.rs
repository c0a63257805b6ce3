//! Output the way Docker's CLI lays it out: human sizes and durations, tab-aligned tables,
//! and the subset of Go templates users write in `--format`.

use serde_json::Value;

/// Sizes as Docker's listings print them: decimal units, three significant digits ("5.58MB").
pub fn human_size(bytes: u64) -> String {
    size_with_digits(bytes, 3)
}

/// Sizes as Docker's `system df` and prune reports print them (`units.HumanSize`): decimal
/// units, four significant digits ("5.583MB").
pub fn human_size_precise(bytes: u64) -> String {
    size_with_digits(bytes, 4)
}

fn size_with_digits(bytes: u64, digits: i32) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(size, digits), UNITS[unit])
}

/// `%.Ng` without an exponent: N significant digits, trailing zeros dropped.
fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let s = format!("{value:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Durations as Docker prints them in CREATED ("2 hours", "About a minute").
pub fn human_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let minutes = seconds / 60;
    let hours = ((seconds as f64) / 3600.0 + 0.5) as i64;
    match () {
        _ if seconds < 1 => "Less than a second".to_string(),
        _ if seconds == 1 => "1 second".to_string(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".to_string(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_string(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

pub fn since(time: chrono::DateTime<chrono::Utc>) -> String {
    let secs = (chrono::Utc::now() - time).num_seconds();
    format!("{} ago", human_duration(secs))
}

/// Aligns rows as Go's tabwriter does with Docker's settings (minimum width 10, padding 3);
/// the last column is never padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let width = (widths[i] + 3).max(10);
                line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The default table of a listing command: the `keys` of each row (JSON objects of strings,
/// as `--format` sees them) under their headings from `headers` (field → heading).
pub fn field_table(headers: &[(&str, &str)], keys: &[&str], rows: &[Value]) -> String {
    let heading = |k: &str| {
        headers
            .iter()
            .find(|(key, _)| *key == k)
            .map_or(k, |(_, h)| h)
            .to_string()
    };
    let mut table = vec![keys.iter().map(|k| heading(k)).collect::<Vec<_>>()];
    for row in rows {
        table.push(
            keys.iter()
                .map(|k| row[*k].as_str().unwrap_or_default().to_string())
                .collect(),
        );
    }
    self::table(&table)
}

/// What a listing command (`images`, `history`, `ps`) prints: only the `ID` of each row
/// with `-q`, the rows through a `--format` template, or the default table of `keys`.
pub fn listing(
    rows: &[Value],
    quiet: bool,
    template: Option<&Template>,
    headers: &[(&str, &str)],
    keys: &[&str],
) -> String {
    if quiet {
        rows.iter()
            .map(|r| format!("{}\n", r["ID"].as_str().unwrap_or_default()))
            .collect()
    } else if let Some(t) = template {
        t.render_all(rows, headers)
    } else {
        field_table(headers, keys, rows)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("invalid --format template `{template}`: {reason}")]
    Invalid { template: String, reason: String },
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    /// `{{.A.B}}`; an empty path is `{{.}}`.
    Field(Vec<String>),
    /// `{{json .A}}`
    Json(Vec<String>),
}

/// A parsed `--format` value: `json`, `table TEMPLATE`, or a Go-template subset with fields
/// (`{{.ID}}`, `{{.Config.Cmd}}`) and `{{json .X}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
    /// `table …`: print a header row and align the columns.
    pub table: bool,
}

impl Template {
    pub fn parse(input: &str) -> Result<Template, TemplateError> {
        if input == "json" {
            return Ok(Template {
                pieces: vec![Piece::Json(vec![])],
                table: false,
            });
        }
        let (table, body) = match input.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, input),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let invalid = |reason: &str| TemplateError::Invalid {
            template: input.to_string(),
            reason: reason.to_string(),
        };
        let mut pieces = Vec::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| invalid("unclosed action"))?;
            let action = after[..end]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-');
            let action = action.trim();
            let (json, path) = match action.strip_prefix("json") {
                Some(p) if p.starts_with(' ') => (true, p.trim()),
                _ => (false, action),
            };
            let path = parse_path(path).ok_or_else(|| {
                invalid(&format!(
                    "unsupported action `{action}` (use fields like {{{{.ID}}}} or {{{{json .}}}})"
                ))
            })?;
            pieces.push(if json {
                Piece::Json(path)
            } else {
                Piece::Field(path)
            });
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces, table })
    }

    /// Renders one value (one row).
    pub fn render(&self, value: &Value) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(path) => out.push_str(&go_print(lookup(value, path))),
                Piece::Json(path) => out.push_str(
                    &serde_json::to_string(lookup(value, path).unwrap_or(&Value::Null))
                        .unwrap_or_default(),
                ),
            }
        }
        out
    }

    /// The header row of a `table` template: each field's name in upper case, as Docker
    /// names its columns; `headers` maps field names to Docker's headings.
    pub fn header(&self, headers: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(path) | Piece::Json(path) => {
                    let name = path.join(".");
                    let heading = headers
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, h)| h.to_string())
                        .unwrap_or_else(|| name.to_uppercase());
                    out.push_str(&heading);
                }
            }
        }
        out
    }

    /// Renders every value; a `table` template gets its header and aligned columns.
    pub fn render_all(&self, values: &[Value], headers: &[(&str, &str)]) -> String {
        if !self.table {
            return values.iter().map(|v| self.render(v) + "\n").collect();
        }
        let mut rows = vec![split_cells(&self.header(headers))];
        rows.extend(values.iter().map(|v| split_cells(&self.render(v))));
        table(&rows)
    }
}

fn split_cells(line: &str) -> Vec<String> {
    line.split('\t').map(str::to_string).collect()
}

fn parse_path(path: &str) -> Option<Vec<String>> {
    if path == "." {
        return Some(vec![]);
    }
    let rest = path.strip_prefix('.')?;
    let parts: Vec<String> = rest.split('.').map(str::to_string).collect();
    parts
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(parts)
}

fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// Prints a value as Go's text/template would: strings bare, lists as `[a b]`, maps as
/// `map[k:v]`, a missing field as `<no value>`.
fn go_print(value: Option<&Value>) -> String {
    match value {
        None => "<no value>".to_string(),
        Some(Value::Null) => "<nil>".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => {
            let inner: Vec<String> = items.iter().map(|v| go_print(Some(v))).collect();
            format!("[{}]", inner.join(" "))
        }
        Some(Value::Object(map)) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_print(Some(v))))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
        Some(other) => other.to_string(),
    }
}

/// A size as Docker's options take it: `512`, `100k`, `512m`, `2g` (binary multiples,
/// `b` optional: `512mb`); `None` when it is not one.
pub fn parse_size(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (number, unit) = match lower.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => lower.split_at(i),
        None => (lower, ""),
    };
    let multiplier: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    (value >= 0.0 && value.is_finite()).then_some((value * multiplier as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_as_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(5_580_000), "5.58MB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(128_000_000), "128MB");
        assert_eq!(human_size(1_200_000_000), "1.2GB");
        assert_eq!(human_size(4_261_000), "4.26MB");
    }

    #[test]
    fn df_sizes_as_docker() {
        // Docker's units.HumanSize: "%.4g" of the decimal unit.
        assert_eq!(human_size_precise(0), "0B");
        assert_eq!(human_size_precise(212), "212B");
        assert_eq!(human_size_precise(12_345), "12.35kB");
        assert_eq!(human_size_precise(16_430_000), "16.43MB");
        assert_eq!(human_size_precise(4_261_000), "4.261MB");
        assert_eq!(human_size_precise(1_000_000), "1MB");
        assert_eq!(human_size_precise(2_500_000_000), "2.5GB");
    }

    #[test]
    fn durations_as_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(30), "30 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(300), "5 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(7200), "2 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
        assert_eq!(human_duration(90 * 86400), "3 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }

    #[test]
    fn table_aligns_like_tabwriter() {
        let rows = vec![
            vec!["REPOSITORY".into(), "TAG".into(), "SIZE".into()],
            vec!["busybox".into(), "latest".into(), "4.26MB".into()],
        ];
        assert_eq!(
            table(&rows),
            "REPOSITORY   TAG       SIZE\nbusybox      latest    4.26MB\n"
        );
    }

    #[test]
    fn templates() {
        let v = json!({"Repository": "busybox", "Tag": "latest", "Config": {"Cmd": ["sh", "-c"]}});
        let t = Template::parse("{{.Repository}}:{{.Tag}}").unwrap();
        assert_eq!(t.render(&v), "busybox:latest");
        assert_eq!(
            Template::parse("{{.Config.Cmd}}").unwrap().render(&v),
            "[sh -c]"
        );
        assert_eq!(
            Template::parse("{{json .Config.Cmd}}").unwrap().render(&v),
            "[\"sh\",\"-c\"]"
        );
        assert_eq!(
            Template::parse("{{.Nope}}").unwrap().render(&v),
            "<no value>"
        );
        let t = Template::parse("table {{.Repository}}\\t{{.Tag}}").unwrap();
        assert_eq!(
            t.render_all(std::slice::from_ref(&v), &[("Repository", "REPOSITORY")]),
            "REPOSITORY   TAG\nbusybox      latest\n"
        );
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{range .}}").is_err());
        assert_eq!(
            Template::parse("json").unwrap().render(&json!({"a":1})),
            "{\"a\":1}"
        );
    }

    #[test]
    fn sizes_as_docker_options_take_them() {
        assert_eq!(super::parse_size("512"), Some(512));
        assert_eq!(super::parse_size("100k"), Some(100 << 10));
        assert_eq!(super::parse_size("512m"), Some(512 << 20));
        assert_eq!(super::parse_size("2G"), Some(2 << 30));
        assert_eq!(super::parse_size("1.5g"), Some(3 << 29));
        assert_eq!(super::parse_size("64mb"), Some(64 << 20));
        assert_eq!(super::parse_size("lots"), None);
        assert_eq!(super::parse_size("-1"), None);
    }
}
