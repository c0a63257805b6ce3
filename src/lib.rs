//! nook: a rootless, daemonless container tool.
//!
//! The binary in `main.rs` only parses arguments and maps errors to exit codes; everything
//! else lives here so the integration tests and unit tests can reach it.

pub mod cli;
pub mod commands;
pub mod config;
pub mod doctor;
pub mod error;
pub mod format;
pub mod image;
pub mod layer;
pub mod network;
pub mod paths;
pub mod runtime;
pub mod store;
#[allow(unsafe_code)]
pub mod sys;
