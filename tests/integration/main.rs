//! Integration tests: the real `nook` binary, run as an unprivileged user, against a real
//! registry on 127.0.0.1 serving images the tests build themselves. See `harness/mod.rs`.

mod commit;
mod completion;
mod concurrency;
mod config;
mod containers;
mod conventions;
mod crash;
mod diff;
mod doctor;
mod doctor_broken;
mod errors;
mod export_import;
mod formats;
mod harness;
mod harness_selftest;
mod hostile;
mod image_commands;
mod isolation;
mod kube;
mod network;
mod ports;
mod pull;
mod push;
mod registries;
mod run;
mod save_load;
mod subids;
mod system;
mod tls;
mod token_auth;
