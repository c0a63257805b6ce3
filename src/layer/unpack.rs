//! Applying a layer tar to an empty directory. (Stub: being written.)
