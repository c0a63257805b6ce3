//! `nook logs [-f] [--tail N|all] [-t] [--since T] CONTAINER`: prints a container's log,
//! stdout entries to stdout and stderr entries to stderr, as Docker does.

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};

use super::Ctx;
use crate::cli::LogsArgs;
use crate::store::containers::{Status, observed_state};
use crate::store::logs::{LogEntry, LogFollower, Stream, format_time};

/// What to print of a log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    /// Prefix each entry with its time (`-t`).
    pub timestamps: bool,
    /// Only the last N entries (`--tail N`); None: all.
    pub tail: Option<usize>,
    /// Only entries at or after this time (`--since`).
    pub since: Option<DateTime<Utc>>,
}

pub fn run(args: LogsArgs, ctx: &Ctx) -> Result<i32> {
    let opts = LogOptions {
        timestamps: args.timestamps,
        tail: args.tail.as_deref().map(parse_tail).transpose()?.flatten(),
        since: args
            .since
            .as_deref()
            .map(|s| parse_since(s, Utc::now()))
            .transpose()?,
    };
    let store = ctx.store()?;
    let record = store.find_container(&args.container)?;
    if record.config.log_driver == crate::config::LogDriver::None {
        // Docker's words, so that scripts matching them keep working.
        bail!("configured logging driver does not support reading");
    }
    let path = store.container_dir(&record.id).join("ctr.log");

    // One follower from the first entry: what is there now is printed (with --tail), then
    // whatever is appended, with nothing lost or repeated in between.
    let mut follower = LogFollower::from_start(&path);
    let existing = follower
        .read_new()
        .with_context(|| format!("cannot read the log {}", path.display()))?;
    print(&select(&existing, &opts), &opts)?;
    if !args.follow {
        return Ok(0);
    }
    let follow_opts = LogOptions {
        tail: None,
        ..opts.clone()
    };
    loop {
        let new = follower
            .wait_new(Duration::from_millis(500))
            .with_context(|| format!("cannot read the log {}", path.display()))?;
        if !new.is_empty() {
            print(&select(&new, &follow_opts), &follow_opts)?;
            continue;
        }
        let state = store.container_state(&record.id)?;
        if observed_state(&state).status != Status::Running {
            // The monitor writes the log before it records the exit: one last look.
            let last = follower.read_new()?;
            print(&select(&last, &follow_opts), &follow_opts)?;
            return Ok(0);
        }
    }
}

fn print(entries: &[&LogEntry], opts: &LogOptions) -> Result<()> {
    let stdout = io::stdout();
    let stderr = io::stderr();
    render_logs(entries, opts, &mut stdout.lock(), &mut stderr.lock())?;
    Ok(())
}

/// The entries `opts` asks for: those since `opts.since`, then the last `opts.tail` of them.
pub fn select<'a>(entries: &'a [LogEntry], opts: &LogOptions) -> Vec<&'a LogEntry> {
    let since: Vec<&LogEntry> = entries
        .iter()
        .filter(|e| opts.since.is_none_or(|s| e.time >= s))
        .collect();
    match opts.tail {
        Some(n) if n < since.len() => since[since.len() - n..].to_vec(),
        _ => since,
    }
}

/// Writes entries as `docker logs` does: stdout entries to `out`, stderr entries to `err`,
/// with `-t` each prefixed by its RFC 3339 time (nine fractional digits) and a space.
pub fn render_logs(
    entries: &[&LogEntry],
    opts: &LogOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<()> {
    for entry in entries {
        let sink: &mut dyn Write = match entry.stream {
            Stream::Stdout => &mut *out,
            Stream::Stderr => &mut *err,
        };
        if opts.timestamps {
            sink.write_all(format_time(&entry.time).as_bytes())?;
            sink.write_all(b" ")?;
        }
        sink.write_all(&entry.text)?;
    }
    out.flush()?;
    err.flush()
}

/// `--tail`: a number of lines, or `all` (None). As Docker, a negative number means all.
pub fn parse_tail(input: &str) -> Result<Option<usize>> {
    let input = input.trim();
    if input.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    match input.parse::<i64>() {
        Ok(n) if n < 0 => Ok(None),
        Ok(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        Err(_) => bail!("invalid --tail value `{input}`: give a number of lines or `all`"),
    }
}

/// `--since`: an RFC 3339 time (`2026-11-29T07:45:43Z`, any offset), a Unix time in seconds
/// (`1764402343`, `1764402343.5`), or a duration before `now` in Go's syntax (`10m`,
/// `1h30m`, `42s`, `1.5h`, `250ms`).
pub fn parse_since(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let input = input.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(input) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(t) = parse_unix_time(input) {
        return Ok(t);
    }
    if let Some(d) = parse_duration(input) {
        return chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .with_context(|| format!("--since `{input}` is too far in the past"));
    }
    bail!(
        "invalid --since value `{input}`: give a time like 2026-11-29T07:45:43Z, a Unix time, or a duration like 10m or 1h30m"
    )
}

fn parse_unix_time(input: &str) -> Option<DateTime<Utc>> {
    let (secs, frac) = input.split_once('.').unwrap_or((input, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    DateTime::from_timestamp(secs, nanos)
}

/// Go's `time.ParseDuration` for non-negative values: numbers (decimals allowed) each with
/// a unit among ns, us, µs, ms, s, m, h; at least one.
fn parse_duration(input: &str) -> Option<Duration> {
    const UNITS: [(&str, f64); 7] = [
        ("ns", 1e-9),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("h", 3600.0),
        ("m", 60.0),
        ("s", 1.0),
    ];
    let mut rest = input.strip_prefix('+').unwrap_or(input);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[digits..];
        let (unit, scale) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        total += value * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(secs: i64, stream: Stream, text: &str) -> LogEntry {
        LogEntry {
            time: Utc
                .timestamp_opt(1_800_000_000 + secs, 123_000_000)
                .unwrap(),
            stream,
            text: text.as_bytes().to_vec(),
        }
    }

    fn render(entries: &[LogEntry], opts: &LogOptions) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        render_logs(&select(entries, opts), opts, &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn sample() -> Vec<LogEntry> {
        vec![
            entry(0, Stream::Stdout, "one\n"),
            entry(10, Stream::Stderr, "two\n"),
            entry(20, Stream::Stdout, "three\n"),
            entry(30, Stream::Stdout, "four"),
        ]
    }

    #[test]
    fn streams_go_to_their_own_output() {
        let (out, err) = render(&sample(), &LogOptions::default());
        assert_eq!(out, "one\nthree\nfour");
        assert_eq!(err, "two\n");
    }

    #[test]
    fn timestamps_prefix_each_entry() {
        let opts = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        let (out, err) = render(&sample()[..2], &opts);
        assert_eq!(out, "2027-01-15T08:00:00.123000000Z one\n");
        assert_eq!(err, "2027-01-15T08:00:10.123000000Z two\n");
    }

    #[test]
    fn tail_and_since_filter() {
        let all = sample();
        let opts = LogOptions {
            tail: Some(2),
            ..Default::default()
        };
        assert_eq!(render(&all, &opts).0, "three\nfour");
        let opts = LogOptions {
            tail: Some(0),
            ..Default::default()
        };
        assert_eq!(render(&all, &opts), (String::new(), String::new()));
        let opts = LogOptions {
            tail: Some(10),
            ..Default::default()
        };
        assert_eq!(render(&all, &opts).0, "one\nthree\nfour");
        let since = all[1].time;
        let opts = LogOptions {
            since: Some(since),
            ..Default::default()
        };
        assert_eq!(render(&all, &opts), ("three\nfour".into(), "two\n".into()));
        // since first, then tail over what is left
        let opts = LogOptions {
            since: Some(since),
            tail: Some(2),
            ..Default::default()
        };
        assert_eq!(render(&all, &opts), ("three\nfour".into(), String::new()));
    }

    #[test]
    fn tail_values() {
        assert_eq!(parse_tail("all").unwrap(), None);
        assert_eq!(parse_tail("5").unwrap(), Some(5));
        assert_eq!(parse_tail("0").unwrap(), Some(0));
        assert_eq!(parse_tail("-1").unwrap(), None);
        assert!(parse_tail("five").is_err());
    }

    #[test]
    fn since_values() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
        let at = |s: &str| parse_since(s, now).unwrap();
        assert_eq!(at("10m"), now - chrono::Duration::minutes(10));
        assert_eq!(at("1h30m"), now - chrono::Duration::minutes(90));
        assert_eq!(at("42s"), now - chrono::Duration::seconds(42));
        assert_eq!(at("1.5h"), now - chrono::Duration::minutes(90));
        assert_eq!(at("250ms"), now - chrono::Duration::milliseconds(250));
        assert_eq!(at("0s"), now);
        assert_eq!(
            at("2026-11-29T07:45:43.5Z"),
            Utc.with_ymd_and_hms(2026, 11, 29, 7, 45, 43).unwrap()
                + chrono::Duration::milliseconds(500)
        );
        assert_eq!(
            at("2026-11-29T08:45:43+01:00"),
            Utc.with_ymd_and_hms(2026, 11, 29, 7, 45, 43).unwrap()
        );
        assert_eq!(
            at("1764402343"),
            Utc.timestamp_opt(1_764_402_343, 0).unwrap()
        );
        assert_eq!(
            at("1764402343.25"),
            Utc.timestamp_opt(1_764_402_343, 250_000_000).unwrap()
        );
        for bad in ["", "m", "10x", "1h-5m", "yesterday", "1..5s", "2026-11-29"] {
            assert!(parse_since(bad, now).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_written_log_renders_back() {
        use crate::store::logs::{LogWriter, read_entries};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&path).unwrap();
        w.write(Stream::Stdout, b"hello\nwor").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"ld\n").unwrap();
        let entries = read_entries(&path).unwrap();
        assert_eq!(
            render(&entries, &LogOptions::default()),
            ("hello\nworld\n".into(), "oops\n".into())
        );
    }
}
