//! Capabilities and seccomp: what the container's process applies to itself right before
//! `execve`, as root of its user namespace.
//!
//! Order in the container's process (as runc does it):
//! 1. `prctl(PR_SET_KEEPCAPS, 1)` when the container user is not root, then
//!    setgroups/setresgid/setresuid to the container user;
//! 2. [`apply_capabilities`] with the set from [`CapabilitySet::resolve`];
//! 3. [`set_no_new_privs`] (unless privileged; `apply_seccomp` sets it anyway, see there);
//! 4. [`apply_seccomp`] with the filter compiled from [`SeccompPolicy::docker_default`] or a
//!    `--security-opt seccomp=FILE` profile ([`SeccompPolicy::from_docker_json`]), built
//!    *before* step 4 — compiling allocates, and after the filter only the policy's system
//!    calls work;
//! 5. `execve`.

mod bpf;
mod capabilities;
mod default;
mod seccomp;

pub use bpf::CompiledFilter;
pub use capabilities::{CapabilitySet, DEFAULT_CAPABILITIES, apply_capabilities};
pub use seccomp::{ArgCondition, CmpOp, SeccompAction, SeccompPolicy, SyscallRule};

/// Why applying a security setting failed.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("unknown capability: {name:?}")]
    UnknownCapability { name: String },

    #[error("capability {name} is not supported by the running kernel")]
    UnsupportedCapability { name: String },

    #[error(
        "cannot {action}{} for the container process (user {uid}): {reason}",
        capability.as_ref().map(|c| format!(" {c}")).unwrap_or_default()
    )]
    Capabilities {
        action: &'static str,
        capability: Option<String>,
        uid: u32,
        reason: String,
    },

    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(#[source] std::io::Error),

    #[error("cannot set whether the process is dumpable: {0}")]
    Dumpable(#[source] std::io::Error),

    #[error("the seccomp profile is not valid JSON in Docker's format: {reason}")]
    ProfileSyntax { reason: String },

    #[error("seccomp profile: {reason}")]
    Profile { reason: String },

    #[error("seccomp profile entry {entry}: {reason}")]
    ProfileEntry { entry: String, reason: String },

    #[error("seccomp filters are not supported on this architecture ({arch})")]
    UnsupportedArchitecture { arch: &'static str },

    #[error("the seccomp filter has {len} instructions, more than the kernel's {max}")]
    FilterTooLong { len: usize, max: usize },

    #[error("cannot install the seccomp filter: {reason}")]
    InstallSeccomp { reason: String },
}

/// Sets `no_new_privs` on the calling thread (inherited by children, kept across execve):
/// set-user-id bits and file capabilities stop granting privileges, and a seccomp filter can
/// be installed without CAP_SYS_ADMIN.
pub fn set_no_new_privs() -> Result<(), SecurityError> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| SecurityError::NoNewPrivs(e.into()))
}

/// Sets whether the calling process is dumpable. A non-dumpable process's `/proc/PID` files
/// (`exe`, `fd/`, `ns/`, `mem`, `environ`, `cwd`) and ptrace need CAP_SYS_PTRACE in the user
/// namespace its memory was created in — for a nook started on the host, the initial one,
/// which no container holds. `execve` makes the new program dumpable again (credentials
/// unchanged), so only nook's own code, and whatever host descriptors it still holds, is kept
/// out of reach.
///
/// Why: a process that enters a container (`nook exec`) is visible there from its fork on,
/// and once it has dropped to the container's capabilities, a container root with the same
/// set passes the kernel's capability-subset check and could open its `/proc/PID/exe` (the
/// host's nook binary), its descriptors or its memory before the `execve` — the window runc's
/// CVE-2019-5736 and CVE-2024-21626 went through.
///
/// The kernel also clears the flag whenever a process changes its user: `--init`'s init
/// sets it back, since `nook exec` joins a container through PID 1's `/proc/PID/ns` files.
pub fn set_dumpable(dumpable: bool) -> Result<(), SecurityError> {
    nix::sys::prctl::set_dumpable(dumpable).map_err(|e| SecurityError::Dumpable(e.into()))
}

/// Installs the filter on the calling thread (only; so call it from the thread that will
/// `execve`, with no other threads that matter). It is inherited by children and across
/// execve, and cannot be removed.
///
/// Note: the installation (seccompiler's `apply_filter`) always sets `no_new_privs` first, so
/// unlike Docker's default (which installs the filter with CAP_SYS_ADMIN and leaves
/// no_new_privs off), set-user-id programs in the container do not gain privileges once a
/// filter is installed. Keeping them working needs a raw `seccomp(SECCOMP_SET_MODE_FILTER)`
/// call without the prctl, which belongs in `src/sys`.
pub fn apply_seccomp(filter: &CompiledFilter) -> Result<(), SecurityError> {
    seccompiler::apply_filter(&filter.0).map_err(|e| SecurityError::InstallSeccomp {
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
