//! What makes a process a container. For now: the user namespace every store operation runs
//! in, so that files keep their owners without root.

pub mod idmap;
pub mod userns;
