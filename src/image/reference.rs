//! Image references, parsed as Docker parses them. (Stub: being written.)

use crate::image::digest::Digest;

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
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let _ = input;
        todo!()
    }
}
