use clap::FromArgMatches;

fn main() {
    // Before anything prints: a shell asking for completions gets only them.
    nook::commands::completion::complete_if_asked();
    let parsed = nook::cli::command()
        .try_get_matches()
        .and_then(|mut m| nook::cli::Cli::from_arg_matches_mut(&mut m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => nook::error::EXIT_NOOK_ERROR,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    match nook::commands::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) if nook::error::is_broken_pipe(&err) => std::process::exit(0),
        Err(err) => {
            nook::error::eprint_line(&nook::error::render(&err));
            if let Some(hint) = nook::error::hint(&err) {
                nook::error::eprint_line(&format!("Hint: {hint}"));
            }
            std::process::exit(nook::error::exit_code(&err));
        }
    }
}
