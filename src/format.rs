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
/// with `-q`, the rows through a `--format` template (`json`: one JSON object a line; `table`
/// alone: the default table), or the default table of `keys`. `headers` names every field a
/// row has, with its heading.
pub fn listing(
    rows: &[Value],
    quiet: bool,
    template: Option<&Template>,
    headers: &[(&str, &str)],
    keys: &[&str],
) -> Result<String, TemplateError> {
    let fields: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    match template {
        _ if quiet => Ok(rows
            .iter()
            .map(|r| format!("{}\n", r["ID"].as_str().unwrap_or_default()))
            .collect()),
        Some(t) if !t.is_default_table() => {
            t.check_fields(&fields)?;
            t.render_all(rows, &fields, headers)
        }
        _ => Ok(field_table(headers, keys, rows)),
    }
}

mod template;
pub use template::{Template, TemplateError, go_print};

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
