//! Registry credentials. (Stub: being written.)
