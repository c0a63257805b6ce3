//! Capabilities and seccomp. (Stub: being written.)
