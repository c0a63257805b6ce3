//! `nook version`: what `docker version` prints of its client, for nook (there is no
//! server: nook has no daemon).

use anyhow::Result;
use serde_json::{Value, json};

use super::print_out;
use crate::cli::VersionArgs;
use crate::format::Template;

/// The fields `--format` sees: `{{.Client.Version}}`, `{{.Client.RustVersion}}`…
pub fn value() -> Value {
    let platform = crate::image::manifest::PlatformSpec::host();
    json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "ApiVersion": "n/a",
            "RustVersion": env!("NOOK_RUSTC_VERSION"),
            "GitCommit": env!("NOOK_GIT_COMMIT"),
            "BuildTime": env!("NOOK_BUILT"),
            "Os": platform.os,
            "Arch": platform.architecture,
        }
    })
}

const TEXT: &str = "Client:
 Version:\t{{.Client.Version}}
 API version:\t{{.Client.ApiVersion}}
 Rust version:\t{{.Client.RustVersion}}
 Git commit:\t{{.Client.GitCommit}}
 Built:\t{{.Client.BuildTime}}
 OS/Arch:\t{{.Client.Os}}/{{.Client.Arch}}";

pub fn run(args: VersionArgs) -> Result<i32> {
    let value = value();
    let out = match args.format.as_deref().map(Template::parse).transpose()? {
        Some(t) => t.render(&value)? + "\n",
        None => aligned(&Template::parse(TEXT)?.render(&value)?),
    };
    print_out(&out)?;
    Ok(0)
}

/// Docker's layout: the values in one column, 20 characters from the line's start.
fn aligned(text: &str) -> String {
    text.lines()
        .map(|line| match line.split_once('\t') {
            Some((label, value)) => format!("{label:<20}{value}\n"),
            None => format!("{line}\n"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laid_out_as_docker() {
        let out = aligned(&Template::parse(TEXT).unwrap().render(&value()).unwrap());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Client:");
        assert_eq!(
            lines[1],
            format!(" Version:           {}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(lines[2], " API version:       n/a");
        assert!(lines[6].starts_with(" OS/Arch:           linux/"), "{out}");
    }
}
