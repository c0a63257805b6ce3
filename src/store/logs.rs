//! Container logs. (Stub: being written.)
