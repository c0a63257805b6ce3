//! Image references, parsed and normalised as Docker parses them.
//!
//! The grammar is the one of `distribution/reference`:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path-component { "/" path-component }
//! domain     := host [ ":" port ]          host := domain-name | "[" ipv6 "]"
//! path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! ```
//!
//! Normalisation follows Docker's `ParseNormalizedNamed`: a name without a registry lives on
//! `docker.io`, and a single-component name on `docker.io` lives under `library/`.

use std::fmt;
use std::str::FromStr;

use crate::image::digest::Digest;

/// Where unqualified names go.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Hub names that mean `docker.io`; they must compare equal to it, or the same image would be
/// stored twice under two names.
const DOCKER_HUB_ALIASES: &[&str] = &["index.docker.io", "registry-1.docker.io"];
const OFFICIAL_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
/// Docker's `NameTotalLengthMax`, counted on the full `registry/repository` name.
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format `{input}`: {reason}")]
    Invalid { input: String, reason: String },
}

/// A normalised reference: `registry/repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `127.0.0.1:5000`, `quay.io`.
    pub registry: String,
    /// `library/busybox`, `team/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
    /// False when the input named no registry, so unqualified-search registries apply.
    pub qualified: bool,
}

impl Reference {
    /// Parses `input` and normalises it as Docker does. A reference with neither tag nor
    /// digest gets the tag `latest`, so that callers never have to guess.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let invalid = |reason: String| ReferenceError::Invalid {
            input: input.to_string(),
            reason,
        };

        if input.is_empty() {
            return Err(invalid("empty reference".into()));
        }
        // Docker refuses these so that an image ID can never be mistaken for a name.
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(invalid("cannot specify 64-byte hexadecimal strings".into()));
        }

        // Neither a name nor a tag may contain `@`, so the first one starts the digest.
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest(digest).map_err(invalid)?)),
            None => (input, None),
        };

        let (registry, remainder, qualified) = split_registry(name_and_tag);

        // The registry has been split off, so any `:` left separates the tag.
        let (path, tag) = match remainder.split_once(':') {
            Some((path, tag)) => {
                validate_tag(tag).map_err(invalid)?;
                (path, Some(tag.to_string()))
            }
            None => (remainder, None),
        };

        if qualified {
            validate_registry(registry).map_err(invalid)?;
        }
        validate_path(path).map_err(invalid)?;

        let registry = normalise_registry(registry);
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path.to_string()
        };

        let name_len = registry.len() + 1 + repository.len();
        if name_len > NAME_MAX {
            return Err(invalid(format!(
                "repository name is {name_len} characters long, the limit is {NAME_MAX}"
            )));
        }

        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (tag, _) => tag,
        };

        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
            qualified,
        })
    }

    /// The same image on `registry`, for trying an unqualified name on each search registry.
    ///
    /// The `library/` prefix belongs to Docker Hub only: `busybox` is `docker.io/library/busybox`
    /// but `quay.io/busybox`, as Podman resolves it.
    pub fn with_registry(&self, registry: &str) -> Reference {
        let registry = normalise_registry(registry);
        let path = if self.registry == DEFAULT_REGISTRY {
            self.hub_familiar_path()
        } else {
            &self.repository
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path.to_string()
        };
        Reference {
            registry,
            repository,
            tag: self.tag.clone(),
            digest: self.digest.clone(),
            qualified: true,
        }
    }

    /// `docker.io/library/busybox`: the full name, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as `docker images` shows it: the Hub's registry and `library/` are left out.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.hub_familiar_path().to_string()
        } else {
            self.name()
        }
    }

    /// The tag, or `latest` when there is none (also for a digest-only reference).
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }

    /// What goes in `/v2/<name>/manifests/<here>`. A digest wins over a tag because it is what
    /// the user pinned; the tag would only be informative.
    pub fn reference_for_registry(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The repository with Hub's `library/` dropped when nothing follows it but one component.
    fn hub_familiar_path(&self) -> &str {
        match self.repository.strip_prefix(OFFICIAL_PREFIX) {
            Some(rest) if !rest.contains('/') => rest,
            _ => &self.repository,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// `docker.io` for Docker Hub's other names; any other registry as given.
pub fn normalise_registry(registry: &str) -> String {
    if DOCKER_HUB_ALIASES.contains(&registry) {
        DEFAULT_REGISTRY.to_string()
    } else {
        registry.to_string()
    }
}

/// Splits `name[:tag]` into registry, the rest, and whether the input named the registry.
///
/// The first component is a registry only if it could not be a path component: it holds a
/// `.` or a `:`, or is `localhost`. Without a `/` there is no registry at all, so that
/// `busybox:1.36` is a tag and not a port.
fn split_registry(name: &str) -> (&str, &str, bool) {
    match name.split_once('/') {
        Some((first, rest)) if first == "localhost" || first.contains(['.', ':']) => {
            (first, rest, true)
        }
        _ => (DEFAULT_REGISTRY, name, false),
    }
}

fn parse_digest(digest: &str) -> Result<Digest, String> {
    if digest.is_empty() {
        return Err("empty digest after `@`".into());
    }
    digest.parse().map_err(|_| {
        format!("invalid digest `{digest}`: expected sha256: and 64 lowercase hex characters")
    })
}

fn validate_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("empty tag after `:`".into());
    }
    if tag.len() > TAG_MAX {
        return Err(format!("tag is longer than {TAG_MAX} characters"));
    }
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(format!(
            "invalid tag `{tag}`: letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
        ))
    }
}

/// `host[:port]` where host is a DNS name or a bracketed IPv6 address.
fn validate_registry(registry: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid registry `{registry}`: {why}"));
    let port = if let Some(after_bracket) = registry.strip_prefix('[') {
        let Some((address, after)) = after_bracket.split_once(']') else {
            return bad("unclosed `[`");
        };
        if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return bad("invalid IPv6 address");
        }
        match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return bad("unexpected characters after `]`"),
            },
        }
    } else {
        let (host, port) = match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        if host.is_empty() {
            return bad("empty host");
        }
        for label in host.split('.') {
            let valid = !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !valid {
                return bad("host labels are letters, digits and inner `-`, separated by `.`");
            }
        }
        port
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("port must be digits");
    }
    // Docker's grammar takes any digits; a port no TCP connection can use is refused here,
    // where the reference is named, rather than as a failure to connect.
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return bad("port must be 1 to 65535");
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty repository name".into());
    }
    // Checked before the grammar so that `Busybox` gets the reason that helps.
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository name must be lowercase".into());
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(format!("empty path component in `{path}`"));
        }
        if !is_path_component(component) {
            return Err(format!(
                "invalid path component `{component}`: lowercase letters and digits, \
                 separated by `.`, `_`, `__` or `-`"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*`
fn is_path_component(component: &str) -> bool {
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && is_alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[sep_start..i];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn digest() -> Digest {
        format!("sha256:{HEX}").parse().expect("test digest")
    }

    fn parsed(input: &str) -> Reference {
        Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    /// input, registry, repository, tag, has digest, qualified
    type ParseCase = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        bool,
        bool,
    );

    #[test]
    fn parses_and_normalises() {
        let cases: &[ParseCase] = &[
            (
                "busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                false,
                false,
            ),
            (
                "busybox:1.36",
                "docker.io",
                "library/busybox",
                Some("1.36"),
                false,
                false,
            ),
            (
                "user/app",
                "docker.io",
                "user/app",
                Some("latest"),
                false,
                false,
            ),
            (
                "user/app:v1",
                "docker.io",
                "user/app",
                Some("v1"),
                false,
                false,
            ),
            ("a/b/c", "docker.io", "a/b/c", Some("latest"), false, false),
            // Without `.`, `:` or `localhost` the first component is a Hub namespace.
            (
                "host/a",
                "docker.io",
                "host/a",
                Some("latest"),
                false,
                false,
            ),
            (
                "quay.io",
                "docker.io",
                "library/quay.io",
                Some("latest"),
                false,
                false,
            ),
            (
                "localhost:5000",
                "docker.io",
                "library/localhost",
                Some("5000"),
                false,
                false,
            ),
            (
                "library/busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                false,
                false,
            ),
            (
                "docker.io/busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                false,
                true,
            ),
            (
                "docker.io/library/busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                false,
                true,
            ),
            (
                "index.docker.io/busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                false,
                true,
            ),
            (
                "registry-1.docker.io/u/a:t",
                "docker.io",
                "u/a",
                Some("t"),
                false,
                true,
            ),
            ("localhost/x", "localhost", "x", Some("latest"), false, true),
            (
                "localhost:5000/x",
                "localhost:5000",
                "x",
                Some("latest"),
                false,
                true,
            ),
            (
                "127.0.0.1:5000/x/y:t",
                "127.0.0.1:5000",
                "x/y",
                Some("t"),
                false,
                true,
            ),
            (
                "[::1]:5000/x",
                "[::1]:5000",
                "x",
                Some("latest"),
                false,
                true,
            ),
            ("[::1]/x", "[::1]", "x", Some("latest"), false, true),
            ("quay.io/x/y", "quay.io", "x/y", Some("latest"), false, true),
            ("Quay.IO/x", "Quay.IO", "x", Some("latest"), false, true),
            (
                "myhost:5000/a/b/c:tag",
                "myhost:5000",
                "a/b/c",
                Some("tag"),
                false,
                true,
            ),
            ("a.b-c.d/e", "a.b-c.d", "e", Some("latest"), false, true),
            (
                "a.b_c__d---e",
                "docker.io",
                "library/a.b_c__d---e",
                Some("latest"),
                false,
                false,
            ),
            (
                "x:_T.a-1",
                "docker.io",
                "library/x",
                Some("_T.a-1"),
                false,
                false,
            ),
        ];
        for &(input, registry, repository, tag, has_digest, qualified) in cases {
            let r = parsed(input);
            assert_eq!(r.registry, registry, "{input}");
            assert_eq!(r.repository, repository, "{input}");
            assert_eq!(r.tag.as_deref(), tag, "{input}");
            assert_eq!(r.digest.is_some(), has_digest, "{input}");
            assert_eq!(r.qualified, qualified, "{input}");
        }
    }

    #[test]
    fn parses_digests() {
        let r = parsed(&format!("busybox@sha256:{HEX}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.digest, Some(digest()));
        assert_eq!(r.repository, "library/busybox");

        let r = parsed(&format!("host:5000/a/b:t@sha256:{HEX}"));
        assert_eq!(r.registry, "host:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert_eq!(r.digest, Some(digest()));
    }

    #[test]
    fn rejects_invalid() {
        let too_long = format!("{}/x", "a".repeat(250));
        let long_tag = format!("x:{}", "t".repeat(129));
        // input, a fragment of the reason
        let cases: &[(&str, &str)] = &[
            ("", "empty reference"),
            ("busybox:", "empty tag"),
            ("Busybox", "must be lowercase"),
            ("user/App", "must be lowercase"),
            ("quay.io/User/app", "must be lowercase"),
            ("a//b", "empty path component"),
            ("a/", "empty path component"),
            ("/a", "empty path component"),
            ("-a", "invalid path component `-a`"),
            ("a-", "invalid path component"),
            ("a..b", "invalid path component"),
            ("a___b", "invalid path component"),
            ("a_-b", "invalid path component"),
            ("a.", "invalid path component"),
            ("a b", "invalid path component"),
            ("café", "invalid path component"),
            ("x/é-a", "invalid path component"),
            ("ex\u{1F600}.io/x", "invalid registry"),
            ("x:t\u{e9}", "invalid tag"),
            ("busybox@", "empty digest"),
            ("busybox@sha256:abc", "invalid digest"),
            ("busybox@sha512:abc", "invalid digest"),
            (
                &format!("busybox@sha256:{}", HEX.to_uppercase()),
                "invalid digest",
            ),
            (
                &format!("busybox@sha256:{HEX}@sha256:{HEX}"),
                "invalid digest",
            ),
            ("busybox:a:b", "invalid tag"),
            ("busybox:-t", "invalid tag"),
            ("busybox:.t", "invalid tag"),
            (&long_tag, "longer than 128"),
            (HEX, "64-byte hexadecimal"),
            ("localhost:/x", "port must be digits"),
            ("host:50a0/x", "port must be digits"),
            ("host:99999999/x", "port must be 1 to 65535"),
            ("host:0/x", "port must be 1 to 65535"),
            ("-host.io/x", "invalid registry"),
            ("a..io/x", "invalid registry"),
            ("ho_st.io/x", "invalid registry"),
            ("[::1/x", "unclosed"),
            ("[]:5000/x", "invalid IPv6"),
            ("[::1]x/y", "after `]`"),
            ("quay.io/", "empty repository name"),
            (&too_long, "the limit is 255"),
        ];
        for (input, reason) in cases {
            match Reference::parse(input) {
                Ok(r) => panic!("{input} parsed as {r}"),
                Err(ReferenceError::Invalid {
                    input: got,
                    reason: why,
                }) => {
                    assert_eq!(&got, input);
                    assert!(why.contains(reason), "{input}: `{why}` lacks `{reason}`");
                }
            }
        }
    }

    #[test]
    fn length_limit_counts_the_full_name() {
        // docker.io/library/ is 18 characters; 237 more make exactly 255.
        assert!(Reference::parse(&"a".repeat(237)).is_ok());
        assert!(Reference::parse(&"a".repeat(238)).is_err());
    }

    #[test]
    fn error_message_names_input_and_reason() {
        let err = Reference::parse("Busybox").expect_err("uppercase");
        assert_eq!(
            err.to_string(),
            "invalid reference format `Busybox`: repository name must be lowercase"
        );
    }

    #[test]
    fn displays_full_form_and_round_trips() {
        let cases: &[(&str, String)] = &[
            ("busybox", "docker.io/library/busybox:latest".into()),
            ("user/app:v2", "docker.io/user/app:v2".into()),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest".into(),
            ),
            (
                &format!("host:5000/a/b@sha256:{HEX}"),
                format!("host:5000/a/b@sha256:{HEX}"),
            ),
            (
                &format!("reg.local/a:t@sha256:{HEX}"),
                format!("reg.local/a:t@sha256:{HEX}"),
            ),
            ("[::1]:5000/x:1", "[::1]:5000/x:1".into()),
        ];
        for (input, display) in cases {
            let r = parsed(input);
            assert_eq!(&r.to_string(), display, "{input}");
            let again = parsed(display);
            assert_eq!(again.to_string(), *display);
            assert_eq!(
                again,
                Reference {
                    qualified: true,
                    ..r
                },
                "{input}"
            );
        }
    }

    #[test]
    fn from_str_is_parse() {
        let r: Reference = "quay.io/x/y:1".parse().expect("valid");
        assert_eq!(r, parsed("quay.io/x/y:1"));
        assert!("".parse::<Reference>().is_err());
    }

    #[test]
    fn names() {
        // input, name, familiar name
        let cases: &[(&str, &str, &str)] = &[
            ("busybox", "docker.io/library/busybox", "busybox"),
            (
                "docker.io/library/busybox",
                "docker.io/library/busybox",
                "busybox",
            ),
            ("user/app", "docker.io/user/app", "user/app"),
            ("library/a/b", "docker.io/library/a/b", "library/a/b"),
            (
                "127.0.0.1:5000/x/y",
                "127.0.0.1:5000/x/y",
                "127.0.0.1:5000/x/y",
            ),
            (
                "quay.io/library/x",
                "quay.io/library/x",
                "quay.io/library/x",
            ),
        ];
        for &(input, name, familiar) in cases {
            let r = parsed(input);
            assert_eq!(r.name(), name, "{input}");
            assert_eq!(r.familiar_name(), familiar, "{input}");
        }
    }

    #[test]
    fn tag_and_manifest_reference() {
        let r = parsed("busybox");
        assert_eq!(r.tag_or_latest(), "latest");
        assert_eq!(r.reference_for_registry(), "latest");

        let r = parsed("busybox:1.36");
        assert_eq!(r.tag_or_latest(), "1.36");
        assert_eq!(r.reference_for_registry(), "1.36");

        let r = parsed(&format!("busybox@sha256:{HEX}"));
        assert_eq!(r.tag_or_latest(), "latest");
        assert_eq!(r.reference_for_registry(), format!("sha256:{HEX}"));

        let r = parsed(&format!("busybox:1.36@sha256:{HEX}"));
        assert_eq!(r.tag_or_latest(), "1.36");
        assert_eq!(r.reference_for_registry(), format!("sha256:{HEX}"));

        let mut bare = parsed("busybox");
        bare.tag = None;
        assert_eq!(bare.reference_for_registry(), "latest");
    }

    #[test]
    fn with_registry_moves_the_name() {
        // input, registry, expected full form
        let cases: &[(&str, &str, &str)] = &[
            ("busybox", "docker.io", "docker.io/library/busybox:latest"),
            (
                "busybox",
                "index.docker.io",
                "docker.io/library/busybox:latest",
            ),
            ("busybox", "quay.io", "quay.io/busybox:latest"),
            ("busybox:1", "localhost:5000", "localhost:5000/busybox:1"),
            ("user/app", "quay.io", "quay.io/user/app:latest"),
            ("library/a/b", "quay.io", "quay.io/library/a/b:latest"),
            ("quay.io/x", "docker.io", "docker.io/library/x:latest"),
            ("quay.io/x/y", "docker.io", "docker.io/x/y:latest"),
        ];
        for &(input, registry, expected) in cases {
            let moved = parsed(input).with_registry(registry);
            assert!(moved.qualified, "{input}");
            assert_eq!(moved.to_string(), expected, "{input} on {registry}");
        }
        let pinned = parsed(&format!("busybox@sha256:{HEX}")).with_registry("quay.io");
        assert_eq!(pinned.digest, Some(digest()));
        assert_eq!(pinned.tag, None);
    }
}
