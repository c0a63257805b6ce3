//! Manifests, indexes and platform selection. (Stub: being written.)
