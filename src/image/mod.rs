//! Images as the registries see them: references, digests, manifests, and the registry client.
//! Knows nothing of containers or of the on-disk store.

pub mod archive;
pub mod auth;
pub mod config;
pub mod digest;
pub mod gzip;
pub mod manifest;
pub mod push;
pub mod reference;
pub mod registry;
