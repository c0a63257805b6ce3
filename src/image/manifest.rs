//! Manifests, indexes and platform selection.
//!
//! Registries serve four manifest formats that matter today: OCI image manifests and indexes,
//! and their Docker schema 2 twins (manifest and manifest list). The Docker ones are
//! field-for-field compatible with OCI (only the media types differ), so oci-spec's types read
//! both; the tests below pin that down with literal Docker JSON.

use std::fmt;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

/// Manifests are small; a registry sending more than this is broken or hostile, and we never
/// want to buffer an unbounded body.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MEDIA_DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const MEDIA_DOCKER_SCHEMA1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The `Accept` header for manifest requests. Without the Docker types, Docker Hub and older
/// registries fall back to converting to schema 1, which nook cannot use.
pub const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// The annotation BuildKit puts on attestation (SBOM/provenance) manifests in an index.
const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

// Not boxed: one manifest is alive at a time during a pull, and unboxed variants keep
// matching on it simple for callers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "the manifest ({media_type}) is a Docker schema 1 manifest, which nook does not support; \
         push it again with a current Docker or skopeo"
    )]
    Schema1 { media_type: String },

    #[error("unsupported manifest media type `{media_type}`")]
    UnknownMediaType { media_type: String },

    #[error("malformed {what}: {message}")]
    Malformed { what: String, message: String },

    #[error(
        "no image for platform {wanted} in the index; available: {}",
        if available.is_empty() { "none".to_string() } else { available.join(", ") }
    )]
    NoMatchingPlatform {
        wanted: String,
        available: Vec<String>,
    },

    #[error("invalid platform `{spec}`: {reason}")]
    InvalidPlatform { spec: String, reason: String },

    #[error("unsupported layer media type `{media_type}`")]
    UnknownLayerMediaType { media_type: String },
}

/// Strips parameters (`; charset=utf-8`) and whitespace from a Content-Type value.
fn bare_media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Image,
    Index,
}

fn kind_of(media_type: &str) -> Option<Kind> {
    match media_type {
        MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST => Some(Kind::Image),
        MEDIA_OCI_INDEX | MEDIA_DOCKER_LIST => Some(Kind::Index),
        _ => None,
    }
}

fn is_schema1(media_type: &str) -> bool {
    matches!(
        media_type,
        MEDIA_DOCKER_SCHEMA1 | MEDIA_DOCKER_SCHEMA1_SIGNED
    )
}

/// Parses a manifest or index.
///
/// The body is the authority: some registries (and static file servers behind them) send
/// `application/json`, `application/octet-stream` or nothing as the Content-Type, and the body's
/// own `mediaType` (or, when that is absent as OCI allows, its shape: `manifests` versus
/// `config`) says what it is. The Content-Type is only consulted when the body says nothing.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, ManifestError> {
    let header_type = content_type.map(bare_media_type).filter(|t| !t.is_empty());
    if let Some(t) = header_type
        && is_schema1(t)
    {
        return Err(ManifestError::Schema1 {
            media_type: t.to_string(),
        });
    }

    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed {
            what: "manifest".to_string(),
            message: e.to_string(),
        })?;
    let object = value.as_object().ok_or_else(|| ManifestError::Malformed {
        what: "manifest".to_string(),
        message: "not a JSON object".to_string(),
    })?;

    let body_type = object.get("mediaType").and_then(|v| v.as_str());
    if object.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1)
        || body_type.is_some_and(is_schema1)
    {
        return Err(ManifestError::Schema1 {
            media_type: body_type
                .or(header_type)
                .unwrap_or(MEDIA_DOCKER_SCHEMA1)
                .to_string(),
        });
    }

    let kind = match body_type {
        Some(t) => kind_of(t).ok_or_else(|| ManifestError::UnknownMediaType {
            media_type: t.to_string(),
        })?,
        None => {
            if object.contains_key("manifests") {
                Kind::Index
            } else if object.contains_key("config") || object.contains_key("layers") {
                Kind::Image
            } else {
                match header_type.and_then(kind_of) {
                    Some(k) => k,
                    None => {
                        return Err(ManifestError::UnknownMediaType {
                            media_type: header_type.unwrap_or("(none)").to_string(),
                        });
                    }
                }
            }
        }
    };

    match kind {
        Kind::Image => serde_json::from_value(value)
            .map(Manifest::Image)
            .map_err(|e| ManifestError::Malformed {
                what: "image manifest".to_string(),
                message: e.to_string(),
            }),
        Kind::Index => serde_json::from_value(value)
            .map(Manifest::Index)
            .map_err(|e| ManifestError::Malformed {
                what: "image index".to_string(),
                message: e.to_string(),
            }),
    }
}

/// A platform as the user names it (`linux/arm64/v8`), in Go's GOOS/GOARCH vocabulary, which
/// is what indexes use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// Maps Rust/uname architecture names to GOARCH, so `--platform linux/aarch64` also works.
fn goarch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "x86" | "i386" | "i686" => "386",
        "powerpc64" | "powerpc64le" => "ppc64le",
        other => other,
    }
}

impl PlatformSpec {
    /// The platform this process runs on. Containers are always Linux.
    pub fn host() -> PlatformSpec {
        Self::for_rust_arch(std::env::consts::ARCH)
    }

    fn for_rust_arch(arch: &str) -> PlatformSpec {
        let (architecture, variant) = match arch {
            "aarch64" => ("arm64", Some("v8")),
            // Rust's `arm` targets that nook could run on are armv7 (hard float); v6 hosts
            // can ask explicitly with --platform.
            "arm" => ("arm", Some("v7")),
            other => (goarch(other), None),
        };
        PlatformSpec {
            os: "linux".to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<PlatformSpec, ManifestError> {
        let invalid = |reason: &str| ManifestError::InvalidPlatform {
            spec: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.trim().split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(invalid(
                "expected os/architecture[/variant], e.g. linux/amd64",
            ));
        }
        if parts.iter().any(|p| p.is_empty()) {
            return Err(invalid("empty component"));
        }
        if parts.iter().any(|p| {
            !p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }) {
            return Err(invalid(
                "components may contain only letters, digits, `_` and `-`",
            ));
        }
        let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
        Ok(PlatformSpec {
            os: lower[0].clone(),
            architecture: goarch(&lower[1]).to_string(),
            variant: lower.get(2).cloned(),
        })
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn is_attestation(d: &Descriptor) -> bool {
    if d.annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_REFERENCE_TYPE))
    {
        return true;
    }
    d.platform().as_ref().is_some_and(|p| {
        p.os().to_string() == "unknown" && p.architecture().to_string() == "unknown"
    })
}

fn describe_platform(d: &Descriptor) -> Option<String> {
    let p = d.platform().as_ref()?;
    let mut s = format!("{}/{}", p.os(), p.architecture());
    if let Some(v) = p.variant() {
        s.push('/');
        s.push_str(v);
    }
    Some(s)
}

/// Variants compare loosely only for arm64, where v8 is the baseline and indexes often omit it.
fn variant_matches(arch: &str, wanted: Option<&str>, have: Option<&str>) -> bool {
    let Some(wanted) = wanted else {
        return true;
    };
    let normalise = |v: Option<&str>| match (arch, v) {
        ("arm64", None) => Some("v8".to_string()),
        (_, v) => v.map(str::to_ascii_lowercase),
    };
    normalise(have) == normalise(Some(wanted))
}

/// Picks the manifest for `want` out of an index.
///
/// OS and architecture must match exactly; the variant only if one is wanted. Attestation
/// manifests (BuildKit's SBOM/provenance entries) are never chosen. An index whose only real
/// entry carries no platform at all (OCI layouts written by some tools) yields that entry, as
/// there is nothing to choose between.
pub fn select_platform(
    index: &ImageIndex,
    want: &PlatformSpec,
) -> Result<Descriptor, ManifestError> {
    let candidates: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| !is_attestation(d))
        .collect();

    let found = candidates.iter().find(|d| {
        d.platform().as_ref().is_some_and(|p| {
            p.os().to_string() == want.os
                && p.architecture().to_string() == want.architecture
                && variant_matches(
                    &want.architecture,
                    want.variant.as_deref(),
                    p.variant().as_deref(),
                )
        })
    });
    if let Some(d) = found {
        return Ok((*d).clone());
    }
    if let [only] = candidates.as_slice()
        && only.platform().is_none()
    {
        return Ok((*only).clone());
    }
    Err(ManifestError::NoMatchingPlatform {
        wanted: want.to_string(),
        available: candidates
            .iter()
            .filter_map(|d| describe_platform(d))
            .collect(),
    })
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression of a layer, from its media type. Covers the OCI layer types (including the
/// deprecated non-distributable ones, whose blobs registries may still serve) and Docker's
/// `rootfs.diff` / `rootfs.foreign.diff` types.
pub fn layer_compression(media_type: &str) -> Result<Compression, ManifestError> {
    let bare = bare_media_type(media_type);
    let unknown = || ManifestError::UnknownLayerMediaType {
        media_type: media_type.to_string(),
    };
    let rest = if let Some(rest) = bare.strip_prefix("application/vnd.oci.image.layer.") {
        rest.strip_prefix("nondistributable.").unwrap_or(rest)
    } else if let Some(rest) = bare.strip_prefix("application/vnd.docker.image.rootfs.") {
        rest.strip_prefix("foreign.").unwrap_or(rest)
    } else {
        return Err(unknown());
    };
    // OCI: v1.tar, v1.tar+gzip, v1.tar+zstd. Docker: diff.tar.gzip (and the rare diff.tar).
    match rest {
        "v1.tar" | "diff.tar" => Ok(Compression::None),
        "v1.tar+gzip" | "diff.tar.gzip" | "diff.tar+gzip" => Ok(Compression::Gzip),
        "v1.tar+zstd" | "diff.tar.zstd" | "diff.tar+zstd" => Ok(Compression::Zstd),
        _ => Err(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_V2: &str = r#"{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 1472,
      "digest": "sha256:9c7a54a9a43cca047013b82af109fe963fde787f63f9e016fdc3384500c2823d"
   },
   "layers": [
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 3408729,
         "digest": "sha256:31e352740f534f9ad170f75378a84fe453d6156e40700b882d737a8f4a6988a3"
      }
   ]
}"#;

    const DOCKER_LIST: &str = r#"{
   "manifests": [
      {
         "digest": "sha256:6457d53fb065d6f250e1504b9bc42d5b6c65941d57532c072d929dd0628977d0",
         "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "platform": { "architecture": "amd64", "os": "linux" },
         "size": 528
      },
      {
         "digest": "sha256:b229a851648e8c8a5ce0a0a5d7a5c0b9b5d2e0a6c34a9f8f5a1f2b2b1c4a0d1e",
         "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "platform": { "architecture": "arm", "os": "linux", "variant": "v6" },
         "size": 528
      },
      {
         "digest": "sha256:1e8a6b8d3e6f2a2a1ec1b6f2f2b3e8e36e3c9a7d1d1a3f2e7c0b6e5b4a3c2d1e",
         "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "platform": { "architecture": "arm", "os": "linux", "variant": "v7" },
         "size": 528
      },
      {
         "digest": "sha256:c3f3c7d4b5e6a7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70",
         "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" },
         "size": 528
      },
      {
         "digest": "sha256:d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3",
         "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "platform": { "architecture": "amd64", "os": "windows", "os.version": "10.0.17763.5329" },
         "size": 528
      }
   ],
   "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
   "schemaVersion": 2
}"#;

    // BuildKit-style OCI index with an attestation manifest and no mediaType on the index.
    const OCI_INDEX: &str = r#"{
  "schemaVersion": 2,
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
      "size": 1000,
      "platform": { "architecture": "arm64", "os": "linux" }
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
      "size": 1000,
      "platform": { "architecture": "amd64", "os": "linux" }
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
      "size": 566,
      "annotations": {
        "vnd.docker.reference.digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
        "vnd.docker.reference.type": "attestation-manifest"
      },
      "platform": { "architecture": "unknown", "os": "unknown" }
    }
  ]
}"#;

    const OCI_MANIFEST_NO_MEDIATYPE: &str = r#"{
  "schemaVersion": 2,
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:4444444444444444444444444444444444444444444444444444444444444444",
    "size": 7023
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
      "digest": "sha256:5555555555555555555555555555555555555555555555555555555555555555",
      "size": 32654
    }
  ],
  "annotations": { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" }
}"#;

    fn index(json: &str) -> ImageIndex {
        match parse(json.as_bytes(), None).unwrap() {
            Manifest::Index(i) => i,
            other => panic!("expected index, got {other:?}"),
        }
    }

    #[test]
    fn parses_docker_v2_manifest() {
        let m = parse(DOCKER_V2.as_bytes(), Some(MEDIA_DOCKER_MANIFEST)).unwrap();
        let Manifest::Image(m) = m else {
            panic!("not an image manifest")
        };
        assert_eq!(m.layers().len(), 1);
        assert_eq!(m.config().size(), 1472);
        assert_eq!(
            m.config().digest().to_string(),
            "sha256:9c7a54a9a43cca047013b82af109fe963fde787f63f9e016fdc3384500c2823d"
        );
        assert_eq!(
            layer_compression(m.layers()[0].media_type().as_ref()).unwrap(),
            Compression::Gzip
        );
    }

    #[test]
    fn parses_docker_list_and_selects_platforms() {
        let i = index(DOCKER_LIST);
        let pick = |s: &str| {
            select_platform(&i, &PlatformSpec::parse(s).unwrap())
                .unwrap()
                .digest()
                .to_string()
        };
        assert!(pick("linux/amd64").starts_with("sha256:6457"));
        assert!(pick("linux/arm/v7").starts_with("sha256:1e8a"));
        assert!(pick("linux/arm/v6").starts_with("sha256:b229"));
        assert!(pick("linux/arm64").starts_with("sha256:c3f3"));
        assert!(pick("linux/arm64/v8").starts_with("sha256:c3f3"));
        assert!(pick("windows/amd64").starts_with("sha256:d4e5"));

        let err = select_platform(&i, &PlatformSpec::parse("linux/s390x").unwrap()).unwrap_err();
        match &err {
            ManifestError::NoMatchingPlatform { wanted, available } => {
                assert_eq!(wanted, "linux/s390x");
                assert_eq!(
                    available,
                    &[
                        "linux/amd64",
                        "linux/arm/v6",
                        "linux/arm/v7",
                        "linux/arm64/v8",
                        "windows/amd64"
                    ]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("linux/arm/v7"));
        assert!(select_platform(&i, &PlatformSpec::parse("linux/arm/v5").unwrap()).is_err());
    }

    #[test]
    fn oci_index_skips_attestations_and_defaults_arm64_variant() {
        let i = index(OCI_INDEX);
        let d = select_platform(&i, &PlatformSpec::parse("linux/arm64/v8").unwrap()).unwrap();
        assert!(d.digest().to_string().starts_with("sha256:1111"));
        let d = select_platform(&i, &PlatformSpec::parse("linux/amd64").unwrap()).unwrap();
        assert!(d.digest().to_string().starts_with("sha256:2222"));
        match select_platform(&i, &PlatformSpec::parse("unknown/unknown").unwrap()) {
            Err(ManifestError::NoMatchingPlatform { available, .. }) => {
                assert_eq!(available, ["linux/arm64", "linux/amd64"])
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn single_platformless_entry_is_chosen() {
        let json = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
          "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
          "digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":10}]}"#;
        let i = index(json);
        assert!(select_platform(&i, &PlatformSpec::host()).is_ok());
    }

    #[test]
    fn content_type_missing_or_wrong_falls_back_to_body() {
        // Wrong header, body says Docker v2.
        assert!(matches!(
            parse(DOCKER_V2.as_bytes(), Some(MEDIA_OCI_INDEX)).unwrap(),
            Manifest::Image(_)
        ));
        assert!(matches!(
            parse(
                DOCKER_LIST.as_bytes(),
                Some("application/json; charset=utf-8")
            )
            .unwrap(),
            Manifest::Index(_)
        ));
        // No mediaType in the body: shape decides.
        assert!(matches!(
            parse(OCI_MANIFEST_NO_MEDIATYPE.as_bytes(), None).unwrap(),
            Manifest::Image(_)
        ));
        assert!(matches!(
            parse(OCI_INDEX.as_bytes(), Some("text/plain")).unwrap(),
            Manifest::Index(_)
        ));
    }

    #[test]
    fn rejects_schema1_unknown_and_malformed() {
        let s1 = r#"{"schemaVersion":1,"name":"foo","tag":"latest","fsLayers":[]}"#;
        let e = parse(s1.as_bytes(), None).unwrap_err();
        assert!(matches!(e, ManifestError::Schema1 { .. }));
        assert!(e.to_string().contains("schema 1"));
        assert!(matches!(
            parse(b"whatever", Some(MEDIA_DOCKER_SCHEMA1_SIGNED)).unwrap_err(),
            ManifestError::Schema1 { .. }
        ));
        assert!(matches!(
            parse(
                br#"{"schemaVersion":2,"mediaType":"application/x-foo"}"#,
                None
            )
            .unwrap_err(),
            ManifestError::UnknownMediaType { .. }
        ));
        assert!(matches!(
            parse(b"{not json", None).unwrap_err(),
            ManifestError::Malformed { .. }
        ));
        // Right media type, missing required `layers`.
        let e = parse(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
            None,
        )
        .unwrap_err();
        assert!(matches!(e, ManifestError::Malformed { .. }), "{e}");
    }

    #[test]
    fn platform_spec_parse_display_host() {
        let p = PlatformSpec::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(
            PlatformSpec::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            PlatformSpec::parse("linux/aarch64").unwrap().architecture,
            "arm64"
        );
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64", ""] {
            assert!(PlatformSpec::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            PlatformSpec::for_rust_arch("x86_64").to_string(),
            "linux/amd64"
        );
        assert_eq!(
            PlatformSpec::for_rust_arch("aarch64").to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(
            PlatformSpec::for_rust_arch("arm").to_string(),
            "linux/arm/v7"
        );
        assert_eq!(PlatformSpec::for_rust_arch("x86").to_string(), "linux/386");
        assert_eq!(
            PlatformSpec::for_rust_arch("powerpc64").to_string(),
            "linux/ppc64le"
        );
        assert_eq!(
            PlatformSpec::for_rust_arch("s390x").to_string(),
            "linux/s390x"
        );
        assert_eq!(
            PlatformSpec::for_rust_arch("riscv64").to_string(),
            "linux/riscv64"
        );
        assert_eq!(PlatformSpec::host().os, "linux");
    }

    #[test]
    fn layer_compressions() {
        use Compression::*;
        let cases = [
            ("application/vnd.oci.image.layer.v1.tar", None),
            ("application/vnd.oci.image.layer.v1.tar+gzip", Gzip),
            ("application/vnd.oci.image.layer.v1.tar+zstd", Zstd),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                None,
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Gzip,
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                Zstd,
            ),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", Gzip),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                Gzip,
            ),
            ("application/vnd.docker.image.rootfs.diff.tar", None),
        ];
        for (mt, want) in cases {
            assert_eq!(layer_compression(mt).unwrap(), want, "{mt}");
        }
        for bad in [
            "application/vnd.oci.image.layer.v1.tar+encrypted",
            "application/vnd.oci.image.config.v1+json",
            "application/octet-stream",
        ] {
            assert!(layer_compression(bad).is_err(), "{bad}");
        }
    }
}
