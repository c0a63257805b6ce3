//! What makes a process a container. For now: the user namespace every store operation runs
//! in, so that files keep their owners without root.

pub mod attach;
pub mod cgroups;
pub mod container;
pub mod idmap;
pub mod mounts;
pub mod security;
pub mod tty;
pub mod userns;
pub mod users;
