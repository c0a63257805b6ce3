//! The Distribution API v2 client. (Stub: being written.)
