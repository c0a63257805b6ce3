//! Rootless networking: each container's network namespace, owned by its user namespace, is
//! joined to the outside by a user-mode helper from Debian (`pasta` from `passt`, or
//! `slirp4netns`), which also forwards published ports from the host.

pub mod ports;
