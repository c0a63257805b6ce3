//! `nook login` / `nook logout`: credentials in a containers-auth.json-compatible file.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};

use super::Ctx;
use crate::cli::{LoginArgs, LogoutArgs};
use crate::image::auth::Credentials;
use crate::image::reference::{DEFAULT_REGISTRY, normalise_registry};
use crate::image::registry::{self, Client};

pub fn login(args: LoginArgs, ctx: &Ctx) -> Result<i32> {
    let registry = registry_name(args.registry.as_deref());
    let config = ctx.registries()?;
    let auth = ctx.auth_files();
    ctx.warn_runtime_fallback();
    let interactive = std::io::stdin().is_terminal();
    let username = match args.username {
        Some(u) => u,
        None if interactive && !args.password_stdin => {
            eprint!("Username: ");
            std::io::stderr().flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_string()
        }
        None => bail!("no username given: use -u USERNAME"),
    };
    let password = if args.password_stdin {
        if args.password.is_some() {
            bail!("--password and --password-stdin are mutually exclusive");
        }
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = args.password {
        crate::error::warn(
            "a password on the command line is visible to other users; use --password-stdin",
        );
        p
    } else if interactive {
        rpassword::prompt_password("Password: ").context("cannot read the password")?
    } else {
        bail!("no password given and standard input is not a terminal: use --password-stdin");
    };
    if username.is_empty() || password.is_empty() {
        bail!("username and password must not be empty");
    }
    let credentials = Credentials { username, password };
    let probe = crate::image::reference::Reference::parse(&format!("{registry}/nook/login-probe"))?;
    let endpoint = config
        .endpoints(&probe, args.tls_verify)?
        .pop()
        .context("no endpoint for the registry")?;
    let client = Client::with_timeout(
        (&endpoint).into(),
        Some(credentials.clone()),
        ctx.nook_config()?.registry_timeout(),
    );
    match client.check_auth() {
        Ok(()) => {}
        Err(registry::RegistryError::Unauthorized { .. }) => {
            bail!("cannot log in to {registry}: the registry refused the username or password")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot log in to {registry}")),
    }
    auth.store(&registry, &credentials)
        .with_context(|| format!("cannot save credentials to {}", auth.primary.display()))?;
    println!("Login Succeeded!");
    Ok(0)
}

pub fn logout(args: LogoutArgs, ctx: &Ctx) -> Result<i32> {
    let auth = ctx.auth_files();
    ctx.warn_runtime_fallback();
    if args.all {
        match std::fs::remove_file(&auth.primary) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot remove {}", auth.primary.display()));
            }
        }
        println!("Removed login credentials for all registries");
        return Ok(0);
    }
    let registry = registry_name(args.registry.as_deref());
    if auth.remove(&registry)? {
        println!("Removed login credentials for {registry}");
        Ok(0)
    } else {
        bail!("not logged in to {registry}")
    }
}

/// `https://registry.example.com/` → `registry.example.com`; none → docker.io.
fn registry_name(input: Option<&str>) -> String {
    let raw = input.unwrap_or(DEFAULT_REGISTRY);
    let host = raw
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(raw);
    normalise_registry(host)
}
