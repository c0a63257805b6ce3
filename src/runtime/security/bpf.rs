//! Compiles a [`SeccompPolicy`] to a classic-BPF seccomp program.
//!
//! Layout: check the architecture (the native ABI, and on x86_64 i386 when the policy covers
//! it, each with its own table; anything else is killed, x32 included), then a binary
//! search over the system call numbers that have rules, ending in small linear
//! runs of `jeq`; each number's block tests its argument conditions and returns an action.
//! 64-bit arguments are compared as two 32-bit halves. The program is emitted backwards, so
//! every jump target is known when the jump is written; a target more than 255 instructions
//! away is reached through an unconditional `ja`.

use seccompiler::{BpfProgram, sock_filter};

use super::SecurityError;
use super::seccomp::{ArgCondition, CmpOp, SeccompAction, SeccompPolicy, SyscallRule};

// Opcodes (linux/bpf_common.h).
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
const BPF_JA: u16 = 0x05;
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JGT_K: u16 = 0x05 | 0x20;
const BPF_JGE_K: u16 = 0x05 | 0x30;
const BPF_RET_K: u16 = 0x06;

// struct seccomp_data offsets.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;

/// The kernel's limit (BPF_MAXINSNS).
const MAX_INSTRUCTIONS: usize = 4096;

/// Runs of at most this many system calls are tested linearly.
const LEAF_SIZE: usize = 4;

#[cfg(target_arch = "x86_64")]
const NATIVE_AUDIT_ARCH: Option<u32> = Some(0xC000_003E);
#[cfg(target_arch = "aarch64")]
const NATIVE_AUDIT_ARCH: Option<u32> = Some(0xC000_00B7);
#[cfg(target_arch = "riscv64")]
const NATIVE_AUDIT_ARCH: Option<u32> = Some(0xC000_00F3);
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
)))]
const NATIVE_AUDIT_ARCH: Option<u32> = None;

/// AUDIT_ARCH_I386: 32-bit x86 programs on an x86_64 kernel.
const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// x32 system calls come with the x86_64 audit arch and this bit set in the number.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: Option<u32> = Some(0x4000_0000);
#[cfg(not(target_arch = "x86_64"))]
const X32_SYSCALL_BIT: Option<u32> = None;

/// A compiled seccomp filter for the host architecture, ready for [`super::apply_seccomp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFilter(pub(crate) BpfProgram);

impl CompiledFilter {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn instructions(&self) -> &[sock_filter] {
        &self.0
    }

    /// The program as the kernel reads it (8 bytes per instruction, native endianness), e.g.
    /// to cache it on disk.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * 8);
        for insn in &self.0 {
            out.extend_from_slice(&insn.code.to_ne_bytes());
            out.push(insn.jt);
            out.push(insn.jf);
            out.extend_from_slice(&insn.k.to_ne_bytes());
        }
        out
    }

    /// The inverse of [`CompiledFilter::to_bytes`]; None when the length is not a whole
    /// number of instructions or out of the kernel's range.
    pub fn from_bytes(bytes: &[u8]) -> Option<CompiledFilter> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(8) || bytes.len() / 8 > MAX_INSTRUCTIONS
        {
            return None;
        }
        let program = bytes
            .chunks_exact(8)
            .map(|c| sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Some(CompiledFilter(program))
    }
}

/// Instructions in reverse order; a label is an index into this vector.
struct Builder {
    rev: Vec<sock_filter>,
}

type Label = usize;

impl Builder {
    fn push(&mut self, code: u16, jt: u8, jf: u8, k: u32) -> Label {
        self.rev.push(sock_filter { code, jt, jf, k });
        self.rev.len() - 1
    }

    /// Offset from the instruction about to be pushed to `target`.
    fn distance(&self, target: Label) -> usize {
        self.rev.len() - 1 - target
    }

    fn ret(&mut self, action: SeccompAction) -> Label {
        self.push(BPF_RET_K, 0, 0, action.to_ret())
    }

    fn load(&mut self, offset: u32) -> Label {
        self.push(BPF_LD_W_ABS, 0, 0, offset)
    }

    /// A load that goes on to `next` (falling through when `next` is the instruction right
    /// after it, else through a jump).
    fn load_then(&mut self, offset: u32, next: Label) -> Label {
        if next != self.rev.len() - 1 {
            self.ja(next);
        }
        self.load(offset)
    }

    fn and(&mut self, mask: u32) -> Label {
        self.push(BPF_ALU_AND_K, 0, 0, mask)
    }

    fn ja(&mut self, target: Label) -> Label {
        let k = self.distance(target) as u32;
        self.push(BPF_JA, 0, 0, k)
    }

    /// `if A <op> k goto t else goto f`, with trampolines for far targets.
    fn jump(&mut self, code: u16, k: u32, mut t: Label, mut f: Label) -> Label {
        if self.distance(t) > 255 {
            t = self.ja(t);
        }
        if self.distance(f) > 255 {
            f = self.ja(f);
        }
        // A second trampoline may have pushed `t` out of reach again.
        if self.distance(t) > 255 {
            t = self.ja(t);
        }
        let (jt, jf) = (self.distance(t) as u8, self.distance(f) as u8);
        self.push(code, jt, jf, k)
    }

    fn finish(self) -> BpfProgram {
        let mut program = self.rev;
        program.reverse();
        program
    }
}

/// Emits a test of one condition: continues at `ok` when it holds, at `fail` otherwise.
fn condition(b: &mut Builder, c: &ArgCondition, ok: Label, fail: Label) -> Label {
    let lo_off = OFFSET_ARGS + 8 * u32::from(c.index);
    // Little-endian machines keep the low word first.
    let (lo_off, hi_off) = if cfg!(target_endian = "little") {
        (lo_off, lo_off + 4)
    } else {
        (lo_off + 4, lo_off)
    };
    let (v_hi, v_lo) = ((c.value >> 32) as u32, c.value as u32);
    match c.op {
        CmpOp::Eq | CmpOp::Ne => {
            let (yes, no) = if c.op == CmpOp::Eq {
                (ok, fail)
            } else {
                (fail, ok)
            };
            b.jump(BPF_JEQ_K, v_lo, yes, no);
            b.load(lo_off);
            b.jump(BPF_JEQ_K, v_hi, b.rev.len() - 1, no);
            b.load(hi_off)
        }
        CmpOp::MaskedEq => {
            let (d_hi, d_lo) = ((c.value_two >> 32) as u32, c.value_two as u32);
            b.jump(BPF_JEQ_K, d_lo, ok, fail);
            b.and(v_lo);
            b.load(lo_off);
            b.jump(BPF_JEQ_K, d_hi, b.rev.len() - 1, fail);
            b.and(v_hi);
            b.load(hi_off)
        }
        CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le => {
            // GT/GE hold when hi > v_hi, or hi == v_hi and lo >(=) v_lo. LT/LE are their
            // negations (not GE / not GT).
            let (low_code, yes, no) = match c.op {
                CmpOp::Gt => (BPF_JGT_K, ok, fail),
                CmpOp::Ge => (BPF_JGE_K, ok, fail),
                CmpOp::Lt => (BPF_JGE_K, fail, ok),
                _ => (BPF_JGT_K, fail, ok),
            };
            let low = b.jump(low_code, v_lo, yes, no);
            let load_lo = b.load(lo_off);
            debug_assert_eq!(load_lo, low + 1);
            b.jump(BPF_JEQ_K, v_hi, load_lo, no);
            let eq = b.rev.len() - 1;
            b.jump(BPF_JGT_K, v_hi, yes, eq);
            b.load(hi_off)
        }
    }
}

/// Emits the block for one system call: its conditional rules in order, then its first
/// unconditional rule, else the default.
fn syscall_block(b: &mut Builder, rules: &[&SyscallRule], default: Label) -> Label {
    let mut next = match rules.iter().find(|r| r.conditions.is_empty()) {
        Some(rule) => b.ret(rule.action),
        None => default,
    };
    for rule in rules.iter().rev().filter(|r| !r.conditions.is_empty()) {
        let mut ok = b.ret(rule.action);
        for c in rule.conditions.iter().rev() {
            ok = condition(b, c, ok, next);
        }
        next = ok;
    }
    // Blocks that load arguments overwrite A, but they always end in a return.
    next
}

/// Emits the dispatch over `syscalls` (sorted by number); A holds the number.
fn dispatch(b: &mut Builder, syscalls: &[(u32, Vec<&SyscallRule>)], default: Label) -> Label {
    if syscalls.len() <= LEAF_SIZE {
        let blocks: Vec<Label> = syscalls
            .iter()
            .map(|(_, rules)| syscall_block(b, rules, default))
            .collect();
        let mut next = default;
        for ((nr, _), block) in syscalls.iter().zip(blocks).rev() {
            next = b.jump(BPF_JEQ_K, *nr, block, next);
        }
        return next;
    }
    let mid = syscalls.len() / 2;
    let right = dispatch(b, &syscalls[mid..], default);
    let left = dispatch(b, &syscalls[..mid], default);
    b.jump(BPF_JGE_K, syscalls[mid].0, right, left)
}

/// Rules grouped by system call number, in number order (profile order within one).
fn by_number(rules: &[SyscallRule]) -> Vec<(u32, Vec<&SyscallRule>)> {
    let mut by_nr: Vec<(u32, Vec<&SyscallRule>)> = Vec::new();
    let mut sorted: Vec<&SyscallRule> = rules.iter().collect();
    sorted.sort_by_key(|r| r.nr); // stable: keeps profile order within a number
    for rule in sorted {
        match by_nr.last_mut() {
            Some((nr, rules)) if *nr == rule.nr => rules.push(rule),
            _ => by_nr.push((rule.nr, vec![rule])),
        }
    }
    by_nr
}

pub(crate) fn compile(policy: &SeccompPolicy) -> Result<CompiledFilter, SecurityError> {
    let audit_arch = NATIVE_AUDIT_ARCH.ok_or(SecurityError::UnsupportedArchitecture {
        arch: std::env::consts::ARCH,
    })?;

    let mut b = Builder {
        rev: Vec::with_capacity(1024),
    };
    let default = b.ret(policy.default_action());
    let body = dispatch(&mut b, &by_number(policy.rules()), default);
    let foreign = b.ret(SeccompAction::KillProcess);
    let mut start = body;
    if let Some(bit) = X32_SYSCALL_BIT {
        start = b.jump(BPF_JGE_K, bit, foreign, start);
    }
    let load_nr = b.load_then(OFFSET_NR, start);
    // Not the native ABI: i386 through its own table when the policy covers it, else killed.
    let other_abi = match policy.i386_rules() {
        Some(rules) => {
            let body = dispatch(&mut b, &by_number(rules), default);
            let load = b.load_then(OFFSET_NR, body);
            b.jump(BPF_JEQ_K, AUDIT_ARCH_I386, load, foreign)
        }
        None => foreign,
    };
    b.jump(BPF_JEQ_K, audit_arch, load_nr, other_abi);
    b.load(OFFSET_ARCH);

    let program = b.finish();
    if program.len() > MAX_INSTRUCTIONS {
        return Err(SecurityError::FilterTooLong {
            len: program.len(),
            max: MAX_INSTRUCTIONS,
        });
    }
    Ok(CompiledFilter(program))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::runtime::security::CapabilitySet;

    /// A classic-BPF interpreter for seccomp programs, enough to check the compiler.
    pub(crate) fn run(program: &[sock_filter], arch: u32, nr: u32, args: &[u64; 6]) -> u32 {
        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(&nr.to_ne_bytes());
        data.extend_from_slice(&arch.to_ne_bytes());
        data.extend_from_slice(&0u64.to_ne_bytes());
        for a in args {
            data.extend_from_slice(&a.to_ne_bytes());
        }
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let insn = &program[pc];
            pc += 1;
            let k = insn.k;
            match insn.code {
                BPF_LD_W_ABS => {
                    let o = k as usize;
                    a = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
                }
                BPF_ALU_AND_K => a &= k,
                BPF_JA => pc += k as usize,
                BPF_JEQ_K | BPF_JGT_K | BPF_JGE_K => {
                    let taken = match insn.code {
                        BPF_JEQ_K => a == k,
                        BPF_JGT_K => a > k,
                        _ => a >= k,
                    };
                    pc += usize::from(if taken { insn.jt } else { insn.jf });
                }
                BPF_RET_K => return k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn samples() -> Vec<[u64; 6]> {
        let values = [
            0u64,
            1,
            2,
            3,
            4,
            7,
            8,
            37,
            38,
            39,
            40,
            41,
            0x20000,
            0x20008,
            0x0040000,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0008,
            u64::MAX,
            0x11,
            0x7E02_0000,
            0x1000_0011,
            0x4000_0011,
            21505,
            21506,
        ];
        let mut out = Vec::new();
        for v in values {
            for w in [0u64, 2, 3, 21505, 0xffff_ffff_0000_0002] {
                out.push([v, w, w, 0, 0, 0]);
            }
        }
        out
    }

    fn check_against_policy(policy: &SeccompPolicy) {
        let filter = policy.compile().unwrap();
        let arch = NATIVE_AUDIT_ARCH.unwrap();
        let mut numbers: Vec<u32> = (0..600).collect();
        numbers.extend(policy.rules().iter().map(|r| r.nr));
        for nr in numbers {
            for args in samples() {
                assert_eq!(
                    run(&filter.0, arch, nr, &args),
                    policy.evaluate(nr, &args).to_ret(),
                    "nr {nr} args {args:x?}"
                );
            }
        }
        let kill = SeccompAction::KillProcess.to_ret();
        for nr in 0..500 {
            for args in samples() {
                assert_eq!(
                    run(&filter.0, AUDIT_ARCH_I386, nr, &args),
                    policy.evaluate_i386(nr, &args).to_ret(),
                    "i386 nr {nr} args {args:x?}"
                );
            }
        }
        if let Some(bit) = X32_SYSCALL_BIT {
            assert_eq!(
                run(&filter.0, arch, bit | 1, &[0; 6]),
                kill,
                "x32 is refused"
            );
        }
    }

    #[test]
    fn default_filter_matches_policy() {
        for caps in [
            CapabilitySet::docker_default(),
            CapabilitySet::empty(),
            CapabilitySet::all_supported(),
        ] {
            let policy = SeccompPolicy::docker_default(&caps);
            check_against_policy(&policy);
        }
        let filter = SeccompPolicy::docker_default(&CapabilitySet::docker_default())
            .compile()
            .unwrap();
        assert!(filter.len() < 2000, "{} instructions", filter.len());
        assert_eq!(CompiledFilter::from_bytes(&filter.to_bytes()), Some(filter));
    }

    #[test]
    fn every_operator_and_far_jumps() {
        // Conditions with every operator on 64-bit values, and enough rules on one system
        // call that jumps need trampolines.
        let mut syscalls = String::new();
        let ops = [
            "SCMP_CMP_EQ",
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_GT",
            "SCMP_CMP_GE",
            "SCMP_CMP_MASKED_EQ",
        ];
        let values: [u64; 5] = [
            2,
            0x20008,
            0xffff_ffff,
            0x1_0000_0000,
            0xffff_ffff_0000_0002,
        ];
        let mut n = 0;
        for (i, op) in ops.iter().enumerate() {
            for v in values {
                n += 1;
                let action = ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRAP"][n % 3];
                syscalls.push_str(&format!(
                    r#"{{"names": ["ioctl", "read"], "action": "{action}", "args": [{{"index": {}, "value": {v}, "valueTwo": 2, "op": "{op}"}}, {{"index": 2, "value": 3, "op": "SCMP_CMP_NE"}}]}},"#,
                    i % 2
                ));
            }
        }
        for _ in 0..40 {
            syscalls.push_str(r#"{"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": [{"index": 0, "value": 1000, "op": "SCMP_CMP_GT"}, {"index": 1, "value": 21505, "op": "SCMP_CMP_EQ"}]},"#);
        }
        syscalls.push_str(r#"{"names": ["read"], "action": "SCMP_ACT_KILL"}"#);
        let json = format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{syscalls}]}}"#);
        let policy =
            SeccompPolicy::from_docker_json(&json, &CapabilitySet::docker_default()).unwrap();
        check_against_policy(&policy);
        assert!(policy.compile().unwrap().len() > 300);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn i386_calls_follow_the_same_policy_and_other_abis_die() {
        use crate::runtime::security::seccomp::i386_syscall_number;
        let policy = SeccompPolicy::docker_default(&CapabilitySet::docker_default());
        let filter = policy.compile().unwrap();
        let i386 = |name: &str, args: &[u64; 6]| {
            let nr = i386_syscall_number(name).unwrap();
            run(&filter.0, AUDIT_ARCH_I386, nr, args)
        };
        let allow = SeccompAction::Allow.to_ret();
        let eperm = SeccompAction::Errno(libc::EPERM as u16).to_ret();
        let kill = SeccompAction::KillProcess.to_ret();
        let none = [0u64; 6];
        // The numbers differ from x86_64's (getpid is 20, not 39), the answers do not.
        assert_eq!(i386_syscall_number("getpid"), Some(20));
        assert_eq!(i386("getpid", &none), allow);
        assert_eq!(i386("socketcall", &none), allow);
        assert_eq!(i386("keyctl", &none), eperm);
        assert_eq!(
            i386("clone", &[0x1000_0000, 0, 0, 0, 0, 0]),
            eperm,
            "CLONE_NEWUSER"
        );
        assert_eq!(i386("clone", &[0x11, 0, 0, 0, 0, 0]), allow);
        assert_eq!(i386("modify_ldt", &none), allow);
        // x32 and foreign ABIs are killed.
        assert_eq!(run(&filter.0, 0xC000_003E, 39 | 0x4000_0000, &none), kill);
        assert_eq!(run(&filter.0, 0xC000_00B7, 172, &none), kill);
        // A profile that does not cover i386 kills it.
        let native_only = SeccompPolicy::from_docker_json(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]}"#,
            &CapabilitySet::empty(),
        )
        .unwrap();
        let filter = native_only.compile().unwrap();
        assert_eq!(run(&filter.0, AUDIT_ARCH_I386, 20, &none), kill);
        assert_eq!(run(&filter.0, 0xC000_003E, 39, &none), allow);
    }

    #[test]
    fn empty_policy_compiles() {
        let json = r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#;
        let policy = SeccompPolicy::from_docker_json(json, &CapabilitySet::empty()).unwrap();
        check_against_policy(&policy);
    }
}

#[cfg(test)]
mod timing {
    use crate::runtime::security::{CapabilitySet, SeccompPolicy};

    /// `cargo test --release --lib compile_time -- --ignored --nocapture`
    #[test]
    #[ignore = "timing; run in release mode"]
    fn compile_time() {
        let caps = CapabilitySet::resolve(&[], &[], false).unwrap();
        let rounds = 200;
        let start = std::time::Instant::now();
        let mut len = 0;
        for _ in 0..rounds {
            len = SeccompPolicy::docker_default(&caps)
                .compile()
                .unwrap()
                .len();
        }
        let per = start.elapsed() / rounds;
        let policy = SeccompPolicy::docker_default(&caps);
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            policy.compile().unwrap();
        }
        let compile_only = start.elapsed() / rounds;
        let start = std::time::Instant::now();
        let _ = SeccompPolicy::docker_default(&caps).compile().unwrap();
        println!(
            "docker_default+compile: {per:?} per run (compile alone {compile_only:?}), \
             {len} instructions; one cold run {:?}",
            start.elapsed()
        );
    }
}
