//! How failures reach the user: one `Error:` line holding the whole cause chain, an optional
//! `Hint:` line with the fix, and Docker's exit codes.

use std::io;

/// Docker's exit status for an error of the tool itself (as opposed to the container's).
pub const EXIT_NOOK_ERROR: i32 = 125;

/// An error that carries its own exit status (126, 127, or a container's status).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    pub code: i32,
    pub message: String,
}

/// The exit status for `err`.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<ExitError>().map(|x| x.code))
        .unwrap_or(EXIT_NOOK_ERROR)
}

/// `Error: outer: inner: root cause`, with adjacent repeats removed (an io::Error is often
/// both the message and the source of its wrapper).
///
/// Messages quote what images, archives and registries say (names, error texts), so the line
/// is made safe to print: control characters are escaped, so that a name holding a newline
/// or a terminal escape cannot forge a second line or restyle the terminal, and each cause is
/// cut to [`MAX_CAUSE_CHARS`].
pub fn render(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || parts.last().is_some_and(|p| p.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    let parts: Vec<String> = parts.iter().map(|p| printable(p)).collect();
    format!("Error: {}", parts.join(": "))
}

/// Where a hint comes from `nook system doctor`'s verdict, it says so: the user can run it
/// to see the rest.
const SEE_DOCTOR: &str = "(`nook system doctor` checks the rest of the set-up)";

/// The longest one cause of an error may print.
pub const MAX_CAUSE_CHARS: usize = 1000;

/// `text` with control characters escaped (`\n`, `\u{1b}`), cut to [`MAX_CAUSE_CHARS`].
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CAUSE_CHARS + 32));
    let total = text.chars().count();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_CAUSE_CHARS {
            out.push_str(&format!("… ({} more characters)", total - i));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

static STORE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Where this command's store is: a failure to write or mount there, while it is on a file
/// system that cannot hold it (NFS, FUSE), gets doctor's verdict on that as its hint.
pub fn set_store(path: &std::path::Path) {
    let _ = STORE.set(path.to_path_buf());
}

/// A fix for failures whose cause we recognise anywhere in the chain.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    specific_hint(err).or_else(|| store_hint(err))
}

/// Doctor's verdict on the store's file system, for a failure of the file system or of a
/// mount while the store is on one it warns about.
fn store_hint(err: &anyhow::Error) -> Option<String> {
    let store = STORE.get()?;
    // A container's set-up failure comes back from its first process as text, with
    // nook's own status.
    let touches_files = err.chain().any(|c| {
        c.is::<io::Error>()
            || c.is::<crate::runtime::mounts::MountError>()
            || c.downcast_ref::<ExitError>()
                .is_some_and(|e| e.code == EXIT_NOOK_ERROR)
    });
    if !touches_files {
        return None;
    }
    let v = crate::doctor::store_fs_verdict(store, crate::doctor::fs_magic(store));
    (v.status != crate::doctor::Status::Ok).then(|| format!("{}: {} {SEE_DOCTOR}", v.detail, v.fix))
}

fn specific_hint(err: &anyhow::Error) -> Option<String> {
    use crate::doctor;
    use crate::runtime::userns::UsernsError;
    for cause in err.chain() {
        match cause.downcast_ref::<UsernsError>() {
            Some(UsernsError::Unshare(e)) => {
                let v = doctor::userns(&doctor::UsernsFacts::read(Err(e.to_string())));
                return Some(format!("{}: {} {SEE_DOCTOR}", v.detail, v.fix));
            }
            Some(UsernsError::Helper { helper, .. }) => {
                let name = if *helper == "newgidmap" {
                    "newgidmap"
                } else {
                    "newuidmap"
                };
                let v = doctor::helper(name, &doctor::HelperFact::find(name));
                if v.status != doctor::Status::Ok {
                    return Some(format!("{}: {} {SEE_DOCTOR}", v.detail, v.fix));
                }
                return Some(format!(
                    "{helper} grants only the ranges /etc/subuid and /etc/subgid list for you, overlapping no one's: run `nook system doctor` to check them"
                ));
            }
            _ => {}
        }
        if let Some(crate::network::NetworkError::MissingHelper { package, .. }) =
            cause.downcast_ref()
        {
            use crate::network::find_program;
            let (pasta, slirp4netns) = (find_program("pasta"), find_program("slirp4netns"));
            // With neither installed, doctor's fix installs both, whichever was asked for.
            let fix = if pasta.is_none() && slirp4netns.is_none() {
                doctor::network_helpers(None, None).fix
            } else {
                format!("sudo apt-get install {package}")
            };
            return Some(format!("{fix} {SEE_DOCTOR}"));
        }
        // The helpers say it differently (pasta: "Failed to open tun socket in namespace"):
        // whether the device opens is the diagnosis.
        if let Some(crate::runtime::mounts::MountError::FuseOverlayfs { stderr, .. }) =
            cause.downcast_ref()
        {
            let v = doctor::dev_fuse(&doctor::open_device("/dev/fuse"));
            if v.status != doctor::Status::Ok || stderr.contains("/dev/fuse") {
                return Some(format!(
                    "/dev/fuse must be usable by everyone, as distributions ship it: {} {SEE_DOCTOR}",
                    doctor::dev_fuse(&Err(String::new())).fix
                ));
            }
        }
        if let Some(crate::network::NetworkError::HelperFailed { log, .. }) = cause.downcast_ref() {
            let v = doctor::dev_net_tun(&doctor::open_device("/dev/net/tun"));
            if v.status != doctor::Status::Ok || log.contains("/dev/net/tun") {
                return Some(format!(
                    "/dev/net/tun must be usable by everyone, as distributions ship it: {} {SEE_DOCTOR}",
                    doctor::dev_net_tun(&Err(String::new())).fix
                ));
            }
        }
        if let Some(crate::network::NetworkError::HelperFailed {
            binary: "pasta",
            log,
            ..
        }) = cause.downcast_ref()
            && log.contains("routable interface")
        {
            return Some(
                "pasta needs a network interface with a default route, and this machine has none (offline?): use --network slirp4netns".into(),
            );
        }
        if let Some(crate::runtime::cgroups::CgroupError::NotAvailable { .. }) =
            cause.downcast_ref()
        {
            let v = doctor::cgroups(&crate::commands::cgroup_facts());
            if v.status != doctor::Status::Ok {
                return Some(format!("{}: {} {SEE_DOCTOR}", v.detail, v.fix));
            }
        }
        if let Some(crate::image::registry::RegistryError::Unreachable { host, .. }) =
            cause.downcast_ref()
        {
            return Some(format!(
                "check that {host} is the right address and that the registry is running"
            ));
        }
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            match io.raw_os_error() {
                Some(libc::ENOSPC) => {
                    return Some(format!("the disk is full: {}", doctor::DISK_FIX));
                }
                Some(libc::EDQUOT) => {
                    return Some(
                        "your disk quota is exhausted: free space, or use --root on another disk"
                            .into(),
                    );
                }
                _ => {}
            }
        }
    }
    None
}

/// How the prefixes nook starts its own lines with look on a colour terminal.
const PREFIX_STYLES: [(&str, anstyle::Style); 3] = [
    ("Error:", anstyle::AnsiColor::Red.on_default().bold()),
    ("Warning:", anstyle::AnsiColor::Yellow.on_default().bold()),
    ("Hint:", anstyle::AnsiColor::Cyan.on_default().bold()),
];

/// `line` with its `Error:`, `Warning:` or `Hint:` prefix styled.
pub fn styled_prefix(line: &str) -> String {
    for (prefix, style) in PREFIX_STYLES {
        if let Some(rest) = line.strip_prefix(prefix) {
            return format!("{style}{prefix}{style:#}{rest}");
        }
    }
    line.to_string()
}

/// Prints one of nook's own lines on stderr (`Error: …`, `Warning: …`, `Hint: …`). The prefix
/// is coloured only when stderr is a terminal that takes colour (TERM set, not `dumb`) and
/// NO_COLOR is unset or empty: anstream decides, as it does for clap's own messages.
pub fn eprint_line(line: &str) {
    use std::io::Write;
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "{}", styled_prefix(line));
}

/// Prints `Warning: text` on stderr (see [`eprint_line`]).
pub fn warn(text: &str) {
    eprint_line(&format!("Warning: {text}"));
}

/// True when the failure is a closed stdout (`nook images | head`), which is not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_up_failures_hint_at_the_fix_doctor_names() {
        let missing = anyhow::Error::new(crate::network::NetworkError::MissingHelper {
            mode: "pasta",
            binary: "pasta",
            package: "passt",
        });
        let h = hint(&missing).unwrap();
        assert!(h.starts_with("sudo apt-get install passt"), "{h}");
        assert!(h.contains("nook system doctor"), "{h}");

        let fuse = anyhow::Error::new(crate::runtime::mounts::MountError::FuseOverlayfs {
            target: "/x".into(),
            status: "exit status: 1".into(),
            stderr: "fuse: failed to open /dev/fuse: Permission denied".into(),
        });
        assert!(hint(&fuse).unwrap().contains("sudo chmod 0666 /dev/fuse"));

        // Whatever this machine's sysctls say, the hint names a fix and the doctor.
        let unshare = anyhow::Error::new(crate::runtime::userns::UsernsError::Unshare(
            io::Error::from_raw_os_error(libc::EPERM),
        ));
        let h = hint(&unshare).unwrap();
        assert!(h.contains("Operation not permitted"), "{h}");
        assert!(h.contains("nook system doctor"), "{h}");
    }

    #[test]
    fn a_full_disk_and_a_closed_tun_device_name_doctors_fix() {
        let full = anyhow::Error::new(io::Error::from_raw_os_error(libc::ENOSPC))
            .context("cannot write layer");
        assert!(hint(&full).unwrap().contains(crate::doctor::DISK_FIX));
        let tun = anyhow::Error::new(crate::network::NetworkError::HelperFailed {
            binary: "slirp4netns",
            status: "exit status: 1".into(),
            log: "open(\"/dev/net/tun\"): Permission denied".into(),
        });
        assert!(hint(&tun).unwrap().contains("sudo chmod 0666 /dev/net/tun"));
    }

    #[test]
    fn only_the_prefix_is_styled() {
        let line = styled_prefix("Error: no such container: Error: x");
        assert_eq!(
            line,
            "\x1b[1m\x1b[31mError:\x1b[0m no such container: Error: x"
        );
        assert_eq!(styled_prefix("Loaded image: x"), "Loaded image: x");
    }

    #[test]
    fn rendered_errors_are_one_bounded_line() {
        let err = anyhow::anyhow!("layer entry `a\nError: forged\x1b[31m` is bad")
            .context("cannot pull x");
        assert_eq!(
            render(&err),
            "Error: cannot pull x: layer entry `a\\nError: forged\\u{1b}[31m` is bad"
        );
        let long = "é".repeat(5000);
        let text = render(&anyhow::anyhow!("{long}"));
        assert!(text.ends_with("… (4000 more characters)"), "{text}");
        assert_eq!(text.lines().count(), 1);
        // Tabs too: a line stays a line.
        assert_eq!(render(&anyhow::anyhow!("a\tb")), "Error: a\\tb");
    }
}
