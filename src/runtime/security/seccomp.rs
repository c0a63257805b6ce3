//! Seccomp policies: Docker's default one, and profiles in Docker's JSON format, resolved for
//! the host architecture and the container's capabilities.

use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use super::bpf::{self, CompiledFilter};
use super::{CapabilitySet, SecurityError};

/// What the filter does with a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeccompAction {
    Allow,
    /// Fail with this errno (`SCMP_ACT_ERRNO`, `errnoRet`, EPERM when absent).
    Errno(u16),
    /// `SCMP_ACT_KILL` / `SCMP_ACT_KILL_THREAD`.
    KillThread,
    KillProcess,
    /// SIGSYS.
    Trap,
    /// Allow and log.
    Log,
    /// Notify a ptrace tracer (ENOSYS without one).
    Trace(u16),
}

impl SeccompAction {
    /// The `SECCOMP_RET_*` value a filter returns.
    pub fn to_ret(self) -> u32 {
        match self {
            SeccompAction::Allow => 0x7fff_0000,
            SeccompAction::Errno(e) => 0x0005_0000 | u32::from(e),
            SeccompAction::KillThread => 0,
            SeccompAction::KillProcess => 0x8000_0000,
            SeccompAction::Trap => 0x0003_0000,
            SeccompAction::Log => 0x7ffc_0000,
            SeccompAction::Trace(data) => 0x7ff0_0000 | u32::from(data),
        }
    }

    fn parse(action: &str, errno_ret: Option<u32>) -> Result<SeccompAction, String> {
        let data = |default: u32| -> Result<u16, String> {
            let value = errno_ret.unwrap_or(default);
            u16::try_from(value).map_err(|_| format!("errnoRet {value} is out of range"))
        };
        Ok(match action {
            "SCMP_ACT_ALLOW" => SeccompAction::Allow,
            "SCMP_ACT_ERRNO" => SeccompAction::Errno(data(libc::EPERM as u32)?),
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
            "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
            "SCMP_ACT_TRAP" => SeccompAction::Trap,
            "SCMP_ACT_LOG" => SeccompAction::Log,
            "SCMP_ACT_TRACE" => SeccompAction::Trace(data(libc::ENOSYS as u32)?),
            "SCMP_ACT_NOTIFY" => {
                return Err("action SCMP_ACT_NOTIFY is not supported (no seccomp agent)".into());
            }
            other => return Err(format!("unknown action {other:?}")),
        })
    }
}

/// Comparison of one system call argument (64 bits) with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `(arg & value) == value_two`.
    MaskedEq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgCondition {
    /// Argument number, 0 to 5.
    pub index: u8,
    pub op: CmpOp,
    pub value: u64,
    pub value_two: u64,
}

impl ArgCondition {
    pub fn matches(&self, args: &[u64; 6]) -> bool {
        let arg = args[usize::from(self.index)];
        match self.op {
            CmpOp::Eq => arg == self.value,
            CmpOp::Ne => arg != self.value,
            CmpOp::Lt => arg < self.value,
            CmpOp::Le => arg <= self.value,
            CmpOp::Gt => arg > self.value,
            CmpOp::Ge => arg >= self.value,
            CmpOp::MaskedEq => arg & self.value == self.value_two,
        }
    }
}

/// One rule: when system call `nr` is made and every condition holds, `action`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SyscallRule {
    pub name: String,
    pub nr: u32,
    pub action: SeccompAction,
    pub conditions: Vec<ArgCondition>,
}

/// A seccomp policy resolved for the host architecture and a capability set.
///
/// Semantics (what [`SeccompPolicy::evaluate`] and the compiled filter both implement): for a
/// system call, its rules with conditions are tried in profile order and the first whose
/// conditions all hold decides; otherwise its first unconditional rule decides; otherwise the
/// default action. On x86_64, i386 calls get the same treatment through their own numbers
/// when the profile covers SCMP_ARCH_X86 (Docker's default does); calls from any other ABI
/// (x32 included) are killed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeccompPolicy {
    default_action: SeccompAction,
    rules: Vec<SyscallRule>,
    /// The same policy in i386 numbers, when it covers i386.
    i386_rules: Option<Vec<SyscallRule>>,
    skipped: Vec<String>,
}

impl SeccompPolicy {
    /// Docker's default policy (moby `profiles/seccomp`), for the host architecture and the
    /// container's capabilities: capability-gated groups are allowed when `caps` holds the
    /// capability, and clone's namespace flags and clone3 are allowed only with
    /// CAP_SYS_ADMIN (without it clone3 fails with ENOSYS so libc falls back to clone).
    pub fn docker_default(caps: &CapabilitySet) -> SeccompPolicy {
        super::default::profile()
            .resolve(caps)
            .expect("the built-in default profile is well formed")
    }

    /// Parses a profile in Docker's JSON format and resolves it like Docker does: entries
    /// whose `includes` (arches, caps — all required —, minKernel) fail or whose `excludes`
    /// (any) match are left out; names unknown on this architecture are skipped.
    pub fn from_docker_json(
        json: &str,
        caps: &CapabilitySet,
    ) -> Result<SeccompPolicy, SecurityError> {
        let profile: Profile =
            serde_json::from_str(json).map_err(|e| SecurityError::ProfileSyntax {
                reason: e.to_string(),
            })?;
        profile.resolve(caps)
    }

    /// Compiles the policy to a classic-BPF seccomp program for the host architecture.
    pub fn compile(&self) -> Result<CompiledFilter, SecurityError> {
        bpf::compile(self)
    }

    pub fn default_action(&self) -> SeccompAction {
        self.default_action
    }

    pub fn rules(&self) -> &[SyscallRule] {
        &self.rules
    }

    /// The rules for i386 system calls, when the policy covers that ABI.
    pub fn i386_rules(&self) -> Option<&[SyscallRule]> {
        self.i386_rules.as_deref()
    }

    /// Names in the profile that are not system calls on this architecture (skipped).
    pub fn skipped_names(&self) -> &[String] {
        &self.skipped
    }

    /// The action for system call number `nr` with these arguments.
    pub fn evaluate(&self, nr: u32, args: &[u64; 6]) -> SeccompAction {
        self.evaluate_in(&self.rules, nr, args)
    }

    /// The action for i386 system call number `nr`: killed unless the policy covers i386.
    pub fn evaluate_i386(&self, nr: u32, args: &[u64; 6]) -> SeccompAction {
        match &self.i386_rules {
            Some(rules) => self.evaluate_in(rules, nr, args),
            None => SeccompAction::KillProcess,
        }
    }

    fn evaluate_in(&self, rules: &[SyscallRule], nr: u32, args: &[u64; 6]) -> SeccompAction {
        let mut unconditional = None;
        for rule in rules.iter().filter(|r| r.nr == nr) {
            if rule.conditions.is_empty() {
                unconditional.get_or_insert(rule.action);
            } else if rule.conditions.iter().all(|c| c.matches(args)) {
                return rule.action;
            }
        }
        unconditional.unwrap_or(self.default_action)
    }

    /// The action for the named system call, or None when the name is not a system call on
    /// this architecture.
    pub fn action_for(&self, name: &str, args: &[u64; 6]) -> Option<SeccompAction> {
        let nr = syscall_number(name)?;
        Some(self.evaluate(nr, args))
    }
}

pub(crate) fn syscall_number(name: &str) -> Option<u32> {
    syscalls::Sysno::from_str(name)
        .ok()
        .and_then(|s| u32::try_from(s.id()).ok())
}

/// The i386 number of a system call.
pub(crate) fn i386_syscall_number(name: &str) -> Option<u32> {
    syscalls::x86::Sysno::from_str(name)
        .ok()
        .and_then(|s| u32::try_from(s.id()).ok())
}

/// Docker's name (Go's GOARCH) for the host architecture, as `arches` filters use it.
pub(crate) const fn native_arch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "amd64"
    } else if cfg!(target_arch = "aarch64") {
        "arm64"
    } else if cfg!(target_arch = "riscv64") {
        "riscv64"
    } else if cfg!(target_arch = "s390x") {
        "s390x"
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        "ppc64le"
    } else {
        "unknown"
    }
}

/// libseccomp's name for the host architecture.
pub(crate) const fn native_scmp_arch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "SCMP_ARCH_X86_64"
    } else if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else if cfg!(target_arch = "riscv64") {
        "SCMP_ARCH_RISCV64"
    } else if cfg!(target_arch = "s390x") {
        "SCMP_ARCH_S390X"
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        "SCMP_ARCH_PPC64LE"
    } else {
        "SCMP_ARCH_UNKNOWN"
    }
}

/// The running kernel's version, `(major, minor)`.
fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    parse_version(release.trim())
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

// ---- Docker's JSON format ----

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Profile {
    pub default_action: String,
    pub default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub architectures: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub syscalls: Vec<Entry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ArchMap {
    pub architecture: String,
    /// Other ABIs the same rules cover (on x86_64, SCMP_ARCH_X86 is honoured; the others'
    /// system calls are killed).
    #[serde(default, deserialize_with = "null_as_default")]
    pub sub_architectures: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub names: Vec<String>,
    pub action: String,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub args: Vec<Arg>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub includes: Filter,
    #[serde(default, deserialize_with = "null_as_default")]
    pub excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Filter {
    #[serde(default, deserialize_with = "null_as_default")]
    pub arches: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub caps: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

impl Entry {
    fn describe(&self, i: usize) -> String {
        let names: Vec<&str> = self
            .name
            .iter()
            .chain(&self.names)
            .map(String::as_str)
            .collect();
        let mut shown = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
        if names.len() > 3 {
            shown.push_str(&format!(", … ({} names)", names.len()));
        }
        format!("syscalls[{i}] ({shown})")
    }

    /// Docker's selection: any exclude that matches drops the entry; every include must hold.
    /// Whether the entry applies on `arch` (Docker's Go name: `amd64`, `x86`, …).
    fn selected(
        &self,
        caps: &CapabilitySet,
        kernel: Option<(u32, u32)>,
        arch: &str,
    ) -> Result<bool, String> {
        let at_least = |v: &str| -> Result<bool, String> {
            let want = parse_version(v).ok_or_else(|| format!("bad minKernel {v:?}"))?;
            let have = kernel.ok_or("cannot read the kernel version")?;
            Ok(have >= want)
        };
        let ex = &self.excludes;
        if ex.arches.iter().any(|a| a == arch) || ex.caps.iter().any(|c| caps.contains_name(c)) {
            return Ok(false);
        }
        if let Some(v) = &ex.min_kernel
            && at_least(v)?
        {
            return Ok(false);
        }
        let inc = &self.includes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
            return Ok(false);
        }
        if !inc.caps.iter().all(|c| caps.contains_name(c)) {
            return Ok(false);
        }
        if let Some(v) = &inc.min_kernel
            && !at_least(v)?
        {
            return Ok(false);
        }
        Ok(true)
    }
}

fn parse_op(op: &str) -> Result<CmpOp, String> {
    Ok(match op {
        "SCMP_CMP_EQ" => CmpOp::Eq,
        "SCMP_CMP_NE" => CmpOp::Ne,
        "SCMP_CMP_LT" => CmpOp::Lt,
        "SCMP_CMP_LE" => CmpOp::Le,
        "SCMP_CMP_GT" => CmpOp::Gt,
        "SCMP_CMP_GE" => CmpOp::Ge,
        "SCMP_CMP_MASKED_EQ" => CmpOp::MaskedEq,
        other => return Err(format!("unknown argument operator {other:?}")),
    })
}

impl Profile {
    pub(crate) fn resolve(&self, caps: &CapabilitySet) -> Result<SeccompPolicy, SecurityError> {
        let profile_err = |reason: String| SecurityError::Profile { reason };
        let default_action = SeccompAction::parse(&self.default_action, self.default_errno_ret)
            .map_err(|r| profile_err(format!("defaultAction: {r}")))?;
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err(profile_err(
                "both 'architectures' and 'archMap' are given; use one".into(),
            ));
        }
        let native = native_scmp_arch();
        let listed: Vec<&str> = self
            .architectures
            .iter()
            .map(String::as_str)
            .chain(self.arch_map.iter().map(|a| a.architecture.as_str()))
            .collect();
        if !listed.is_empty() && !listed.contains(&native) {
            return Err(profile_err(format!(
                "the profile does not cover this machine's architecture {native} (it lists {})",
                listed.join(", ")
            )));
        }

        // i386 is filtered on an x86_64 host when the profile says it covers it.
        let covers_i386 = native == "SCMP_ARCH_X86_64"
            && (self.architectures.iter().any(|a| a == "SCMP_ARCH_X86")
                || self
                    .arch_map
                    .iter()
                    .filter(|m| m.architecture == native)
                    .any(|m| m.sub_architectures.iter().any(|a| a == "SCMP_ARCH_X86")));
        let kernel = kernel_version();
        let mut rules = Vec::new();
        let mut i386_rules = Vec::new();
        let mut skipped = Vec::new();
        for (i, entry) in self.syscalls.iter().enumerate() {
            let entry_err = |reason: String| SecurityError::ProfileEntry {
                entry: entry.describe(i),
                reason,
            };
            if entry.name.is_some() && !entry.names.is_empty() {
                return Err(entry_err(
                    "both 'name' and 'names' are given; use one".into(),
                ));
            }
            let action = SeccompAction::parse(&entry.action, entry.errno_ret).map_err(entry_err)?;
            let mut conditions = Vec::with_capacity(entry.args.len());
            for (j, arg) in entry.args.iter().enumerate() {
                let index = u8::try_from(arg.index)
                    .ok()
                    .filter(|i| *i < 6)
                    .ok_or_else(|| {
                        entry_err(format!("args[{j}]: index {} is not 0 to 5", arg.index))
                    })?;
                let op = parse_op(&arg.op).map_err(|r| entry_err(format!("args[{j}]: {r}")))?;
                conditions.push(ArgCondition {
                    index,
                    op,
                    value: arg.value,
                    value_two: arg.value_two,
                });
            }
            if covers_i386 && entry.selected(caps, kernel, "x86").map_err(entry_err)? {
                for name in entry.name.iter().chain(&entry.names) {
                    // Names i386 lacks (the 64-bit-only calls) simply have no rule there.
                    if let Some(nr) = i386_syscall_number(name) {
                        i386_rules.push(SyscallRule {
                            name: name.clone(),
                            nr,
                            action,
                            conditions: conditions.clone(),
                        });
                    }
                }
            }
            if !entry
                .selected(caps, kernel, native_arch())
                .map_err(entry_err)?
            {
                continue;
            }
            for name in entry.name.iter().chain(&entry.names) {
                match syscall_number(name) {
                    Some(nr) => rules.push(SyscallRule {
                        name: name.clone(),
                        nr,
                        action,
                        conditions: conditions.clone(),
                    }),
                    None => {
                        if !skipped.contains(name) {
                            skipped.push(name.clone());
                        }
                    }
                }
            }
        }
        Ok(SeccompPolicy {
            default_action,
            rules,
            i386_rules: covers_i386.then_some(i386_rules),
            skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_ARGS: [u64; 6] = [0; 6];
    const EPERM: SeccompAction = SeccompAction::Errno(libc::EPERM as u16);

    fn with(extra: &[&str]) -> CapabilitySet {
        let add: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        CapabilitySet::resolve(&add, &[], false).unwrap()
    }

    fn action(policy: &SeccompPolicy, name: &str) -> SeccompAction {
        policy
            .action_for(name, &NO_ARGS)
            .unwrap_or_else(|| panic!("{name} is not a syscall here"))
    }

    #[test]
    fn default_allows_the_basics() {
        let policy = SeccompPolicy::docker_default(&CapabilitySet::docker_default());
        assert_eq!(policy.default_action(), EPERM);
        for name in [
            "read",
            "write",
            "execve",
            "getpid",
            "openat",
            "mmap",
            "exit_group",
            "futex",
            "clone",
            "rt_sigreturn",
            "chroot",
            "personality",
            "socket",
        ] {
            assert_eq!(action(&policy, name), SeccompAction::Allow, "{name}");
        }
        // Docker allows ptrace and process_vm_* on kernels >= 4.8.
        if kernel_version().unwrap() >= (4, 8) {
            assert_eq!(action(&policy, "ptrace"), SeccompAction::Allow);
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(action(&policy, "arch_prctl"), SeccompAction::Allow);
    }

    #[test]
    fn default_denies_the_dangerous() {
        let policy = SeccompPolicy::docker_default(&CapabilitySet::docker_default());
        for name in [
            "keyctl",
            "add_key",
            "request_key",
            "mount",
            "umount2",
            "reboot",
            "kexec_load",
            "init_module",
            "finit_module",
            "delete_module",
            "unshare",
            "setns",
            "bpf",
            "perf_event_open",
            "open_by_handle_at",
            "swapon",
            "pivot_root",
            "syslog",
            "acct",
            "settimeofday",
            "iopl",
            "kcmp",
            "fsopen",
            "move_mount",
            "open_tree",
        ] {
            assert_eq!(action(&policy, name), EPERM, "{name}");
        }
        // clone3 cannot be filtered by flags: ENOSYS makes libc fall back to clone.
        assert_eq!(
            action(&policy, "clone3"),
            SeccompAction::Errno(libc::ENOSYS as u16)
        );
        // Unknown numbers take the default action.
        assert_eq!(policy.evaluate(100_000, &NO_ARGS), EPERM);
    }

    #[test]
    fn default_clone_namespace_flags_need_sys_admin() {
        let nr = syscall_number("clone").unwrap();
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM) as u64;
        let policy = SeccompPolicy::docker_default(&CapabilitySet::docker_default());
        assert_eq!(
            policy.evaluate(nr, &[thread, 0, 0, 0, 0, 0]),
            SeccompAction::Allow
        );
        assert_eq!(
            policy.evaluate(nr, &[libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
            SeccompAction::Allow
        );
        for flag in [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWCGROUP,
        ] {
            let args = [libc::SIGCHLD as u64 | flag as u64, 0, 0, 0, 0, 0];
            assert_eq!(policy.evaluate(nr, &args), EPERM, "flag {flag:#x}");
        }
        let admin = SeccompPolicy::docker_default(&with(&["SYS_ADMIN"]));
        let args = [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0];
        assert_eq!(admin.evaluate(nr, &args), SeccompAction::Allow);
        assert_eq!(action(&admin, "clone3"), SeccompAction::Allow);
    }

    #[test]
    fn default_personality_and_socket_conditions() {
        let policy = SeccompPolicy::docker_default(&CapabilitySet::docker_default());
        let personality = syscall_number("personality").unwrap();
        for ok in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(
                policy.evaluate(personality, &[ok, 0, 0, 0, 0, 0]),
                SeccompAction::Allow
            );
        }
        // ADDR_NO_RANDOMIZE is refused.
        assert_eq!(
            policy.evaluate(personality, &[0x0040000, 0, 0, 0, 0, 0]),
            EPERM
        );
        let socket = syscall_number("socket").unwrap();
        let family = |f: i32| [f as u64, 1, 0, 0, 0, 0];
        assert_eq!(
            policy.evaluate(socket, &family(libc::AF_INET)),
            SeccompAction::Allow
        );
        assert_eq!(
            policy.evaluate(socket, &family(libc::AF_UNIX)),
            SeccompAction::Allow
        );
        assert_eq!(
            policy.evaluate(socket, &family(libc::AF_NETLINK)),
            SeccompAction::Allow
        );
        assert_eq!(
            policy.evaluate(socket, &family(libc::AF_NFC)),
            SeccompAction::Allow
        );
        assert_eq!(policy.evaluate(socket, &family(libc::AF_ALG)), EPERM);
        assert_eq!(policy.evaluate(socket, &family(libc::AF_VSOCK)), EPERM);
        assert_eq!(
            policy.evaluate(socket, &family(libc::AF_XDP)),
            SeccompAction::Allow
        );
    }

    #[test]
    fn capability_gated_groups() {
        let admin = SeccompPolicy::docker_default(&with(&["SYS_ADMIN"]));
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "fsopen",
            "sethostname",
            "bpf",
        ] {
            assert_eq!(action(&admin, name), SeccompAction::Allow, "{name}");
        }
        assert_eq!(action(&admin, "reboot"), EPERM);
        let more = SeccompPolicy::docker_default(&with(&[
            "SYS_BOOT",
            "SYS_MODULE",
            "SYS_PTRACE",
            "SYS_TIME",
            "DAC_READ_SEARCH",
            "SYSLOG",
            "SYS_RAWIO",
            "SYS_NICE",
            "BPF",
            "PERFMON",
            "SYS_PACCT",
            "SYS_TTY_CONFIG",
        ]));
        for name in [
            "reboot",
            "init_module",
            "finit_module",
            "delete_module",
            "kcmp",
            "pidfd_getfd",
            "settimeofday",
            "clock_settime",
            "open_by_handle_at",
            "syslog",
            "mbind",
            "bpf",
            "perf_event_open",
            "acct",
            "vhangup",
        ] {
            assert_eq!(action(&more, name), SeccompAction::Allow, "{name}");
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(action(&more, "iopl"), SeccompAction::Allow);
        // Never allowed, whatever the capabilities.
        let all = SeccompPolicy::docker_default(&CapabilitySet::all_supported());
        for name in ["keyctl", "add_key", "request_key", "kexec_load", "swapon"] {
            assert_eq!(action(&all, name), EPERM, "{name}");
        }
        // No SYS_CHROOT, no chroot.
        let drop: Vec<String> = vec!["SYS_CHROOT".into()];
        let no_chroot = CapabilitySet::resolve(&[], &drop, false).unwrap();
        assert_eq!(
            action(&SeccompPolicy::docker_default(&no_chroot), "chroot"),
            EPERM
        );
    }

    #[test]
    fn unknown_names_are_skipped() {
        let policy = SeccompPolicy::docker_default(&CapabilitySet::docker_default());
        #[cfg(target_arch = "x86_64")]
        {
            assert!(policy.skipped_names().iter().any(|n| n == "_llseek"));
            assert!(policy.skipped_names().iter().any(|n| n == "chown32"));
        }
        assert!(
            policy
                .rules()
                .iter()
                .all(|r| syscall_number(&r.name) == Some(r.nr))
        );
    }

    const SMALL: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 13,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "syscalls": [
            {"names": ["read", "write", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": null},
            {"name": "kill", "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 21505, "op": "SCMP_CMP_EQ"}]},
            {"names": ["mmap"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 2, "value": 4, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["uname"], "action": "SCMP_ACT_LOG", "excludes": {"caps": ["CAP_CHOWN"]}},
            {"names": ["setuid"], "action": "SCMP_ACT_TRAP", "includes": {"minKernel": "99.0"}},
            {"names": ["lseek"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 2, "value": 2, "op": "SCMP_CMP_LE"}]}
        ]
    }"#;

    #[test]
    fn docker_json_small_profile() {
        let policy =
            SeccompPolicy::from_docker_json(SMALL, &CapabilitySet::docker_default()).unwrap();
        assert_eq!(policy.default_action(), SeccompAction::Errno(13));
        assert_eq!(policy.skipped_names(), ["no_such_call"]);
        assert_eq!(action(&policy, "read"), SeccompAction::Allow);
        assert_eq!(action(&policy, "getpid"), SeccompAction::Errno(1));
        assert_eq!(action(&policy, "kill"), SeccompAction::KillProcess);
        assert_eq!(action(&policy, "mount"), SeccompAction::Errno(13));
        assert_eq!(
            action(&policy, "uname"),
            SeccompAction::Errno(13),
            "excluded: has CAP_CHOWN"
        );
        assert_eq!(
            action(&policy, "setuid"),
            SeccompAction::Errno(13),
            "minKernel 99"
        );
        let ioctl = syscall_number("ioctl").unwrap();
        assert_eq!(
            policy.evaluate(ioctl, &[1, 21505, 0, 0, 0, 0]),
            SeccompAction::Allow
        );
        assert_eq!(
            policy.evaluate(ioctl, &[1, 21506, 0, 0, 0, 0]),
            SeccompAction::Errno(13)
        );
        let mmap = syscall_number("mmap").unwrap();
        assert_eq!(
            policy.evaluate(mmap, &[0, 4096, 3, 0, 0, 0]),
            SeccompAction::Allow
        );
        assert_eq!(
            policy.evaluate(mmap, &[0, 4096, 7, 0, 0, 0]),
            SeccompAction::Errno(13)
        );
        let lseek = syscall_number("lseek").unwrap();
        assert_eq!(
            policy.evaluate(lseek, &[0, 0, 2, 0, 0, 0]),
            SeccompAction::Allow
        );
        assert_eq!(
            policy.evaluate(lseek, &[0, 0, 3, 0, 0, 0]),
            SeccompAction::Errno(13)
        );

        let no_chown =
            CapabilitySet::resolve(&["SYS_ADMIN".into()], &["ALL".into()], false).unwrap();
        let policy = SeccompPolicy::from_docker_json(SMALL, &no_chown).unwrap();
        assert_eq!(action(&policy, "mount"), SeccompAction::Allow);
        assert_eq!(action(&policy, "uname"), SeccompAction::Log);
        policy.compile().unwrap();
    }

    #[test]
    fn docker_json_errors_name_the_entry() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]}"#,
                "syscalls[0] (read)",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}"#,
                "syscalls[1] (socket): args[0]: unknown argument operator \"SCMP_CMP_ALMOST\"",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
                "index 6",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}"#,
                "both 'name' and 'names'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}"#,
                "errnoRet 70000",
            ),
            (r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#, "defaultAction"),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PPC"]}"#,
                "SCMP_ARCH_PPC",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]}"#,
                "action",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "x"}}]}"#,
                "bad minKernel",
            ),
            ("not json", "JSON"),
        ];
        for (json, want) in cases {
            let err = SeccompPolicy::from_docker_json(json, &CapabilitySet::docker_default())
                .unwrap_err();
            assert!(
                err.to_string().contains(want),
                "{err} should contain {want}"
            );
        }
    }

    #[test]
    fn version_parsing() {
        assert_eq!(parse_version("6.18.0-1-amd64"), Some((6, 18)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
        assert_eq!(parse_version("5"), Some((5, 0)));
        assert_eq!(parse_version("x"), None);
    }
}
