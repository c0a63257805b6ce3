//! Linux capabilities: Docker's resolution rules for `--cap-add`/`--cap-drop`/`--privileged`,
//! and applying the result to the container's process.

use std::collections::HashSet;

use caps::{CapSet, Capability, CapsHashSet};

use super::SecurityError;

/// Docker's default capability set (moby `daemon/pkg/oci/caps/defaults.go`), in Docker's order.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A set of capabilities, stored as the kernel's bit mask (bit N = capability number N), so it
/// is sorted by number, cheap to copy and compares by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapabilitySet(u64);

impl CapabilitySet {
    /// The empty set.
    pub const fn empty() -> CapabilitySet {
        CapabilitySet(0)
    }

    /// Docker's default set ([`DEFAULT_CAPABILITIES`]).
    pub fn docker_default() -> CapabilitySet {
        let mut set = CapabilitySet::empty();
        for name in DEFAULT_CAPABILITIES {
            let cap = name
                .parse::<Capability>()
                .expect("the default set names known capabilities");
            set.insert(cap);
        }
        set
    }

    /// Every capability the running kernel knows (`/proc/sys/kernel/cap_last_cap`, or probing
    /// the bounding set when /proc is not readable), limited to those the `caps` crate names.
    pub fn all_supported() -> CapabilitySet {
        let supported = caps::runtime::procfs_all_supported(None)
            .unwrap_or_else(|_| caps::runtime::thread_all_supported());
        CapabilitySet::from_caps(&supported)
    }

    /// Resolves the container's capabilities with Docker's rules (moby `TweakCapabilities`):
    ///
    /// * `privileged`: every capability the kernel knows; `add`/`drop` are still validated
    ///   but otherwise ignored, as Docker does.
    /// * `ALL` in `add`: every capability the kernel knows, minus those in `drop`.
    /// * otherwise `ALL` in `drop`: exactly the capabilities in `add`.
    /// * otherwise: the default set, minus `drop`, plus `add` (so naming a capability in both
    ///   adds it).
    ///
    /// Names are case-insensitive and may omit the `CAP_` prefix. An unknown name, or one the
    /// running kernel does not support, is an error naming it.
    pub fn resolve(
        add: &[String],
        drop: &[String],
        privileged: bool,
    ) -> Result<CapabilitySet, SecurityError> {
        let supported = CapabilitySet::all_supported();
        let add = parse_list(add, supported)?;
        let drop = parse_list(drop, supported)?;
        if privileged {
            return Ok(supported);
        }
        let set = match (add, drop) {
            // Every capability except the dropped ones (moby compares names, so a dropped
            // `ALL` removes nothing here).
            (Entry::All, Entry::All) => supported,
            (Entry::All, Entry::Caps(drop)) => supported.difference(drop),
            (Entry::Caps(add), Entry::All) => add,
            (Entry::Caps(add), Entry::Caps(drop)) => {
                CapabilitySet::docker_default().difference(drop).union(add)
            }
        };
        Ok(set)
    }

    /// Parses one name (`chown`, `CAP_CHOWN`, `Cap_Chown`). `ALL` is not a capability here.
    pub fn parse_name(name: &str) -> Result<Capability, SecurityError> {
        let upper = name.trim().to_ascii_uppercase();
        let canonical = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        canonical
            .parse::<Capability>()
            .map_err(|_| SecurityError::UnknownCapability {
                name: name.to_string(),
            })
    }

    pub fn insert(&mut self, cap: Capability) {
        self.0 |= cap.bitmask();
    }

    pub fn remove(&mut self, cap: Capability) {
        self.0 &= !cap.bitmask();
    }

    pub fn contains(&self, cap: Capability) -> bool {
        self.0 & cap.bitmask() != 0
    }

    /// True when the set holds the capability with this name (any spelling `resolve` takes);
    /// false for unknown names.
    pub fn contains_name(&self, name: &str) -> bool {
        CapabilitySet::parse_name(name).is_ok_and(|cap| self.contains(cap))
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn union(self, other: CapabilitySet) -> CapabilitySet {
        CapabilitySet(self.0 | other.0)
    }

    pub fn difference(self, other: CapabilitySet) -> CapabilitySet {
        CapabilitySet(self.0 & !other.0)
    }

    /// The capabilities, by number.
    pub fn iter(&self) -> impl Iterator<Item = Capability> + '_ {
        let mut all: Vec<Capability> = caps::all().into_iter().collect();
        all.sort_by_key(|cap| cap.index());
        all.into_iter().filter(|cap| self.contains(*cap))
    }

    /// Names as the kernel and Docker's inspect spell them (`CAP_CHOWN`, …), by number.
    pub fn names(&self) -> Vec<String> {
        self.iter().map(|cap| cap.to_string()).collect()
    }

    /// The bit mask, as `/proc/PID/status` shows it in `CapEff` (Docker's default set is
    /// `0x00000000a80425fb`).
    pub fn mask(&self) -> u64 {
        self.0
    }

    /// The set with exactly the bits of `mask` that name a capability.
    pub fn from_mask(mask: u64) -> CapabilitySet {
        let known = caps::all().iter().fold(0, |acc, cap| acc | cap.bitmask());
        CapabilitySet(mask & known)
    }

    fn from_caps(caps: &CapsHashSet) -> CapabilitySet {
        CapabilitySet(caps.iter().fold(0, |acc, cap| acc | cap.bitmask()))
    }

    fn to_caps(self) -> CapsHashSet {
        self.iter().collect::<HashSet<_>>()
    }
}

enum Entry {
    All,
    Caps(CapabilitySet),
}

fn parse_list(names: &[String], supported: CapabilitySet) -> Result<Entry, SecurityError> {
    let mut set = CapabilitySet::empty();
    let mut all = false;
    for name in names {
        if name.trim().eq_ignore_ascii_case("ALL") {
            all = true;
            continue;
        }
        let cap = CapabilitySet::parse_name(name)?;
        if !supported.contains(cap) {
            return Err(SecurityError::UnsupportedCapability {
                name: cap.to_string(),
            });
        }
        set.insert(cap);
    }
    Ok(if all { Entry::All } else { Entry::Caps(set) })
}

/// Gives the calling thread exactly the capabilities in `set`, the way runc applies Docker's
/// OCI spec. Call it in the container's process after `setresgid`/`setgroups`/`setresuid` to
/// the container user and before seccomp and `execve`.
///
/// What it does, in order:
/// 1. raises the effective set to the whole permitted set (needed for step 2: dropping from
///    the bounding set requires `CAP_SETPCAP` in the effective set);
/// 2. drops every capability not in `set` from the bounding set;
/// 3. clears the ambient set and the inheritable set (Docker sets neither since
///    CVE-2022-24769);
/// 4. sets effective, then permitted, to `set`.
///
/// What the caller must do: when `container_uid` is not 0, the `setresuid` from root clears
/// the permitted set unless `PR_SET_KEEPCAPS` was set before it (`caps::securebits::
/// set_keepcaps(true)`, or `prctl(PR_SET_KEEPCAPS, 1)`); without it this function fails
/// naming the first capability that is not permitted. For uid 0 nothing is needed.
///
/// What the program then gets at `execve` (kernel rules, same as Docker):
/// * container uid 0: effective = permitted = the bounding set = `set`;
/// * any other uid: effective and permitted become empty (no ambient capabilities are
///   given, as in Docker), except what file capabilities or set-uid-root binaries grant
///   within the bounding set `set` (and those are ignored under `no_new_privs`).
pub fn apply_capabilities(set: &CapabilitySet, container_uid: u32) -> Result<(), SecurityError> {
    let failed =
        |action: &'static str, cap: Option<Capability>, source: caps::errors::CapsError| {
            SecurityError::Capabilities {
                action,
                capability: cap.map(|c| c.to_string()),
                uid: container_uid,
                reason: source.to_string(),
            }
        };

    let permitted = caps::read(None, CapSet::Permitted)
        .map_err(|e| failed("read the permitted set", None, e))?;
    caps::set(None, CapSet::Effective, &permitted)
        .map_err(|e| failed("raise the effective set", None, e))?;

    let bounding =
        caps::read(None, CapSet::Bounding).map_err(|e| failed("read the bounding set", None, e))?;
    let mut to_drop: Vec<Capability> = bounding
        .into_iter()
        .filter(|cap| !set.contains(*cap))
        .collect();
    to_drop.sort_by_key(|cap| cap.index());
    for cap in to_drop {
        caps::drop(None, CapSet::Bounding, cap)
            .map_err(|e| failed("drop from the bounding set", Some(cap), e))?;
    }

    // Clearing ambient needs no privilege; a kernel without ambient sets (< 4.3) has none.
    if caps::runtime::ambient_set_supported().is_ok() {
        caps::clear(None, CapSet::Ambient).map_err(|e| failed("clear the ambient set", None, e))?;
    }
    caps::clear(None, CapSet::Inheritable)
        .map_err(|e| failed("clear the inheritable set", None, e))?;

    let permitted = CapabilitySet::from_caps(&permitted);
    if let Some(missing) = set.difference(permitted).iter().next() {
        let hint = if container_uid != 0 {
            "it is not in the permitted set: set PR_SET_KEEPCAPS before setresuid to a \
             non-root user"
        } else {
            "it is not in the permitted set of this process"
        };
        return Err(failed("keep", Some(missing), hint.into()));
    }
    let wanted = set.to_caps();
    caps::set(None, CapSet::Effective, &wanted)
        .map_err(|e| failed("set the effective set", None, e))?;
    caps::set(None, CapSet::Permitted, &wanted)
        .map_err(|e| failed("set the permitted set", None, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_set_matches_docker_mask() {
        let set = CapabilitySet::resolve(&[], &[], false).unwrap();
        assert_eq!(set, CapabilitySet::docker_default());
        assert_eq!(set.mask(), 0x0000_0000_a804_25fb);
        assert_eq!(set.len(), DEFAULT_CAPABILITIES.len());
        let mut expected = strings(DEFAULT_CAPABILITIES);
        expected.sort_by_key(|n| n.parse::<Capability>().unwrap().index());
        assert_eq!(set.names(), expected);
        assert_eq!(set.names()[0], "CAP_CHOWN");
    }

    #[test]
    fn drop_all_add_one() {
        let set =
            CapabilitySet::resolve(&strings(&["net_admin"]), &strings(&["ALL"]), false).unwrap();
        assert_eq!(set.names(), vec!["CAP_NET_ADMIN"]);
        assert_eq!(set.mask(), 1 << 12);
        let none = CapabilitySet::resolve(&[], &strings(&["all"]), false).unwrap();
        assert!(none.is_empty());
        assert_eq!(none.mask(), 0);
    }

    #[test]
    fn add_all_and_privileged() {
        let all = CapabilitySet::all_supported();
        assert!(all.contains(Capability::CAP_SYS_ADMIN));
        let set = CapabilitySet::resolve(&strings(&["ALL"]), &[], false).unwrap();
        assert_eq!(set, all);
        let set =
            CapabilitySet::resolve(&strings(&["all"]), &strings(&["SYS_ADMIN"]), false).unwrap();
        assert_eq!(set, all.difference(CapabilitySet::from_mask(1 << 21)));
        assert!(!set.contains(Capability::CAP_SYS_ADMIN));
        let set = CapabilitySet::resolve(&[], &strings(&["chown"]), true).unwrap();
        assert_eq!(set, all);
    }

    #[test]
    fn drop_then_add_with_prefix_and_case() {
        let set = CapabilitySet::resolve(
            &strings(&["cap_sys_admin", "Sys_Ptrace"]),
            &strings(&["CAP_NET_RAW", "mknod", "sys_ptrace"]),
            false,
        )
        .unwrap();
        assert!(set.contains(Capability::CAP_SYS_ADMIN));
        assert!(
            set.contains(Capability::CAP_SYS_PTRACE),
            "add wins over drop, as in Docker"
        );
        assert!(!set.contains(Capability::CAP_NET_RAW));
        assert!(!set.contains(Capability::CAP_MKNOD));
        assert!(set.contains(Capability::CAP_CHOWN));
        assert!(set.contains_name("sys_admin"));
        assert!(!set.contains_name("bogus"));
    }

    #[test]
    fn unknown_names_are_errors_naming_them() {
        let err = CapabilitySet::resolve(&strings(&["CAP_FLY"]), &[], false).unwrap_err();
        assert!(matches!(&err, SecurityError::UnknownCapability { name } if name == "CAP_FLY"));
        assert!(err.to_string().contains("CAP_FLY"), "{err}");
        let err = CapabilitySet::resolve(&[], &strings(&["teleport"]), false).unwrap_err();
        assert!(err.to_string().contains("teleport"), "{err}");
        // Validated even when privileged.
        assert!(CapabilitySet::resolve(&strings(&["nope"]), &[], true).is_err());
    }

    #[test]
    fn mask_round_trip() {
        let set = CapabilitySet::from_mask(0xa80425fb);
        assert_eq!(set, CapabilitySet::docker_default());
        assert_eq!(CapabilitySet::from_mask(u64::MAX), {
            let mut all = CapabilitySet::empty();
            caps::all().into_iter().for_each(|c| all.insert(c));
            all
        });
    }
}
