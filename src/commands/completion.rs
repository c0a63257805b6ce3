//! `nook completion SHELL`.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs, Shell};

pub fn run(args: CompletionArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    match args.shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "nook", &mut out)
        }
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "nook", &mut out)
        }
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "nook", &mut out)
        }
    }
    super::print_out(&String::from_utf8_lossy(&out))?;
    Ok(0)
}
