//! `probe`: what a hostile process inside a container tries, one line per attempt
//! (`CASE: ok …` or `CASE: EPERM`). Built by the test harness as a static program with no
//! crates but std (see `fixtures::isolation_tools`), so it calls the C library's `syscall`,
//! `fork` and friends through its own declarations, and x86_64's i386 entry point through
//! `asm!`.
//!
//! Subcommands:
//! - `syscalls`: every system call case of [`CASES`], each in a child of its own (a call
//!   that unexpectedly works, such as an unshare, must not change what the next one sees);
//! - `status`: real/effective/saved ids and the capability, no_new_privs and seccomp lines of
//!   /proc/self/status (for the setuid copy of this program);
//! - `open PATH…`, `write PATH…`, `mknod-block PATH`: read or write each path;
//! - `pids`: the processes this one can see (`pid comm`);
//! - `reach PID`: signal, ptrace, pidfd and /proc/PID/exe against a process by number;
//! - `fds [PID]`: the descriptors this process (or PID) holds and what they point at;
//! - `chroot-escape PATH`: the classic chroot breakout, then whether PATH exists;
//! - `shocker DIR`: forges a file handle for the root directory of DIR's file system and opens
//!   it with `open_by_handle_at` (Docker's 2014 "shocker" escape);
//! - `abstract NAME`: connects to the abstract Unix socket NAME;
//! - `gid-then-open GID PATH`: switches to group GID (and no others), then reads PATH;
//! - `watch-exe SECONDS`: for SECONDS, opens `/proc/PID/exe` of every new process and
//!   reports each one that is not a file of this container (a host binary passing through).

use std::ffi::{c_int, c_long, c_uint, CString};
use std::io::Read;

unsafe extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
    fn fork() -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn _exit(code: c_int) -> !;
    fn getresuid(r: *mut c_uint, e: *mut c_uint, s: *mut c_uint) -> c_int;
    fn getresgid(r: *mut c_uint, e: *mut c_uint, s: *mut c_uint) -> c_int;
    fn setgroups(size: usize, list: *const c_uint) -> c_int;
    fn setresgid(r: c_uint, e: c_uint, s: c_uint) -> c_int;
}

/// System call numbers, per architecture (`None`: the call does not exist there).
#[cfg(target_arch = "x86_64")]
mod nr {
    pub const MOUNT: i64 = 165;
    pub const UMOUNT2: i64 = 166;
    pub const PIVOT_ROOT: i64 = 155;
    pub const INIT_MODULE: i64 = 175;
    pub const FINIT_MODULE: i64 = 313;
    pub const DELETE_MODULE: i64 = 176;
    pub const KEXEC_LOAD: i64 = 246;
    pub const KEXEC_FILE_LOAD: i64 = 320;
    pub const BPF: i64 = 321;
    pub const PERF_EVENT_OPEN: i64 = 298;
    pub const KEYCTL: i64 = 250;
    pub const ADD_KEY: i64 = 248;
    pub const REQUEST_KEY: i64 = 249;
    pub const UNSHARE: i64 = 272;
    pub const SETNS: i64 = 308;
    pub const CLONE: i64 = 56;
    pub const CLONE3: i64 = 435;
    pub const PERSONALITY: i64 = 135;
    pub const CLOCK_SETTIME: i64 = 227;
    pub const SETTIMEOFDAY: i64 = 164;
    pub const REBOOT: i64 = 169;
    pub const SWAPON: i64 = 167;
    pub const SWAPOFF: i64 = 168;
    pub const ACCT: i64 = 163;
    pub const OPEN_BY_HANDLE_AT: i64 = 304;
    pub const NAME_TO_HANDLE_AT: i64 = 303;
    pub const PTRACE: i64 = 101;
    pub const USERFAULTFD: i64 = 323;
    pub const IO_URING_SETUP: i64 = 425;
    pub const SYSLOG: i64 = 103;
    pub const QUOTACTL: i64 = 179;
    pub const IOPL: Option<i64> = Some(172);
    pub const IOPERM: Option<i64> = Some(173);
    pub const FSOPEN: i64 = 430;
    pub const FSPICK: i64 = 433;
    pub const OPEN_TREE: i64 = 428;
    pub const MOVE_MOUNT: i64 = 429;
    pub const MOUNT_SETATTR: i64 = 442;
    pub const SETHOSTNAME: i64 = 170;
    pub const SETDOMAINNAME: i64 = 171;
    pub const VHANGUP: i64 = 153;
    pub const LOOKUP_DCOOKIE: i64 = 212;
    pub const PIDFD_OPEN: i64 = 434;
    pub const PIDFD_GETFD: i64 = 438;
    pub const KCMP: i64 = 312;
    pub const PROCESS_VM_READV: i64 = 310;
    pub const SOCKET: i64 = 41;
    pub const CHROOT: i64 = 161;
    pub const MKNODAT: i64 = 259;
    pub const SET_MEMPOLICY: i64 = 238;
    pub const FANOTIFY_INIT: i64 = 300;
    pub const USTAT: Option<i64> = Some(136);
    pub const SYSFS: Option<i64> = Some(139);
    pub const GETPID: i64 = 39;
    pub const KILL: i64 = 62;
    pub const ADJTIMEX: i64 = 159;
    pub const MEMFD_CREATE: i64 = 319;
    pub const FCHDIR: i64 = 81;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const MOUNT: i64 = 40;
    pub const UMOUNT2: i64 = 39;
    pub const PIVOT_ROOT: i64 = 41;
    pub const INIT_MODULE: i64 = 105;
    pub const FINIT_MODULE: i64 = 273;
    pub const DELETE_MODULE: i64 = 106;
    pub const KEXEC_LOAD: i64 = 104;
    pub const KEXEC_FILE_LOAD: i64 = 294;
    pub const BPF: i64 = 280;
    pub const PERF_EVENT_OPEN: i64 = 241;
    pub const KEYCTL: i64 = 219;
    pub const ADD_KEY: i64 = 217;
    pub const REQUEST_KEY: i64 = 218;
    pub const UNSHARE: i64 = 97;
    pub const SETNS: i64 = 268;
    pub const CLONE: i64 = 220;
    pub const CLONE3: i64 = 435;
    pub const PERSONALITY: i64 = 92;
    pub const CLOCK_SETTIME: i64 = 112;
    pub const SETTIMEOFDAY: i64 = 170;
    pub const REBOOT: i64 = 142;
    pub const SWAPON: i64 = 224;
    pub const SWAPOFF: i64 = 225;
    pub const ACCT: i64 = 89;
    pub const OPEN_BY_HANDLE_AT: i64 = 265;
    pub const NAME_TO_HANDLE_AT: i64 = 264;
    pub const PTRACE: i64 = 117;
    pub const USERFAULTFD: i64 = 282;
    pub const IO_URING_SETUP: i64 = 425;
    pub const SYSLOG: i64 = 116;
    pub const QUOTACTL: i64 = 60;
    pub const IOPL: Option<i64> = None;
    pub const IOPERM: Option<i64> = None;
    pub const FSOPEN: i64 = 430;
    pub const FSPICK: i64 = 433;
    pub const OPEN_TREE: i64 = 428;
    pub const MOVE_MOUNT: i64 = 429;
    pub const MOUNT_SETATTR: i64 = 442;
    pub const SETHOSTNAME: i64 = 161;
    pub const SETDOMAINNAME: i64 = 162;
    pub const VHANGUP: i64 = 58;
    pub const LOOKUP_DCOOKIE: i64 = 18;
    pub const PIDFD_OPEN: i64 = 434;
    pub const PIDFD_GETFD: i64 = 438;
    pub const KCMP: i64 = 272;
    pub const PROCESS_VM_READV: i64 = 270;
    pub const SOCKET: i64 = 198;
    pub const CHROOT: i64 = 51;
    pub const MKNODAT: i64 = 33;
    pub const SET_MEMPOLICY: i64 = 237;
    pub const FANOTIFY_INIT: i64 = 262;
    pub const USTAT: Option<i64> = None;
    pub const SYSFS: Option<i64> = None;
    pub const GETPID: i64 = 172;
    pub const KILL: i64 = 129;
    pub const ADJTIMEX: i64 = 171;
    pub const MEMFD_CREATE: i64 = 279;
    pub const FCHDIR: i64 = 50;
}

const AT_FDCWD: i64 = -100;
const CLONE_NEWNS: i64 = 0x0002_0000;
const CLONE_NEWUSER: i64 = 0x1000_0000;
const SIGCHLD: i64 = 17;
const AF_UNIX: i64 = 1;
const AF_INET: i64 = 2;
const AF_ALG: i64 = 38;
const AF_VSOCK: i64 = 40;
const SOCK_STREAM: i64 = 1;
const S_IFIFO: i64 = 0o010000;
const PTRACE_TRACEME: i64 = 0;
const PTRACE_ATTACH: i64 = 16;
const PTRACE_DETACH: i64 = 17;
const KEYCTL_GET_KEYRING_ID: i64 = 0;
const KEY_SPEC_SESSION_KEYRING: i64 = -3;
const LINUX_REBOOT_MAGIC1: i64 = 0xfee1_dead;
const LINUX_REBOOT_MAGIC2: i64 = 0x2812_1969;
const LINUX_REBOOT_CMD_CAD_OFF: i64 = 0;
const ADDR_NO_RANDOMIZE: i64 = 0x0004_0000;
const SYSLOG_ACTION_SIZE_BUFFER: i64 = 10;
const CLOCK_REALTIME: i64 = 0;
const O_RDONLY: i64 = 0;
const O_DIRECTORY: i64 = 0o200_000;
const MAX_HANDLE_SZ: usize = 128;

/// One system call to try: a name, and the call (Ok: what it returned; Err: errno).
type Case = (&'static str, fn() -> Result<i64, i32>);

/// `syscall(2)` with up to six arguments: Ok(return value) or Err(errno).
fn sys(number: i64, args: &[i64]) -> Result<i64, i32> {
    let a = |i: usize| args.get(i).copied().unwrap_or(0);
    // SAFETY: every case passes either plain integers or pointers to live buffers of the size
    // the call expects; a call the kernel does not know fails with ENOSYS.
    let ret = unsafe { syscall(number, a(0), a(1), a(2), a(3), a(4), a(5)) };
    if ret == -1 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(ret)
    }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn ptr(s: &CString) -> i64 {
    s.as_ptr() as i64
}

/// The cases of `probe syscalls`. Each argument is chosen so that, if the call were allowed,
/// it would fail harmlessly or act only on this container (a missing file, a query, the
/// container's own mount namespace).
const CASES: &[Case] = &[
    // Control cases: allowed by Docker's policy; they show the filter is not "deny all".
    ("getpid", || sys(nr::GETPID, &[])),
    ("personality(query)", || {
        sys(nr::PERSONALITY, &[0xffff_ffff])
    }),
    ("socket(AF_INET)", || {
        sys(nr::SOCKET, &[AF_INET, SOCK_STREAM, 0])
    }),
    ("socket(AF_UNIX)", || {
        sys(nr::SOCKET, &[AF_UNIX, SOCK_STREAM, 0])
    }),
    ("clone(no namespaces)", || clone_then_exit(SIGCHLD)),
    ("ptrace(TRACEME)", || {
        sys(nr::PTRACE, &[PTRACE_TRACEME, 0, 0, 0])
    }),
    ("process_vm_readv(self)", process_vm_readv_self),
    ("chroot(.)", || {
        let dot = c(".");
        sys(nr::CHROOT, &[ptr(&dot)])
    }),
    ("mknodat(fifo)", || {
        let path = c("/tmp/probe-fifo");
        sys(nr::MKNODAT, &[AT_FDCWD, ptr(&path), S_IFIFO | 0o600, 0])
    }),
    ("adjtimex(read)", || {
        let mut timex = [0u8; 256];
        sys(nr::ADJTIMEX, &[timex.as_mut_ptr() as i64])
    }),
    ("memfd_create", || {
        let name = c("probe");
        sys(nr::MEMFD_CREATE, &[ptr(&name), 0])
    }),
    ("name_to_handle_at(/dev)", || {
        let mut handle = FileHandle::empty();
        let mut mount_id: c_int = 0;
        let dev = c("/dev");
        sys(
            nr::NAME_TO_HANDLE_AT,
            &[
                AT_FDCWD,
                ptr(&dev),
                &mut handle as *mut FileHandle as i64,
                &mut mount_id as *mut c_int as i64,
                0,
            ],
        )
    }),
    // Mounting and namespaces (CAP_SYS_ADMIN in Docker's policy).
    ("mount(tmpfs on /tmp)", || {
        let (src, target, fstype) = (c("none"), c("/tmp"), c("tmpfs"));
        sys(nr::MOUNT, &[ptr(&src), ptr(&target), ptr(&fstype), 0, 0])
    }),
    ("umount2(/tmp)", || {
        let target = c("/tmp");
        sys(nr::UMOUNT2, &[ptr(&target), 2 /* MNT_DETACH */])
    }),
    ("pivot_root", || {
        let (new, old) = (c("/tmp"), c("/tmp"));
        sys(nr::PIVOT_ROOT, &[ptr(&new), ptr(&old)])
    }),
    ("fsopen", || {
        let fstype = c("tmpfs");
        sys(nr::FSOPEN, &[ptr(&fstype), 0])
    }),
    ("fspick", || {
        let path = c("/");
        sys(nr::FSPICK, &[AT_FDCWD, ptr(&path), 0])
    }),
    ("open_tree", || {
        let path = c("/");
        sys(
            nr::OPEN_TREE,
            &[AT_FDCWD, ptr(&path), 1 /* OPEN_TREE_CLONE */],
        )
    }),
    ("move_mount", || {
        let (from, to) = (c("/tmp"), c("/mnt"));
        sys(
            nr::MOVE_MOUNT,
            &[AT_FDCWD, ptr(&from), AT_FDCWD, ptr(&to), 0],
        )
    }),
    ("mount_setattr", || {
        let path = c("/");
        sys(nr::MOUNT_SETATTR, &[AT_FDCWD, ptr(&path), 0, 0, 0])
    }),
    ("unshare(CLONE_NEWUSER)", || {
        sys(nr::UNSHARE, &[CLONE_NEWUSER])
    }),
    ("unshare(CLONE_NEWNS)", || sys(nr::UNSHARE, &[CLONE_NEWNS])),
    ("clone(CLONE_NEWUSER)", || {
        clone_then_exit(CLONE_NEWUSER | SIGCHLD)
    }),
    ("clone3", || {
        // struct clone_args, all zero but exit_signal: flags are invisible to seccomp.
        let mut args = [0u64; 11];
        args[4] = SIGCHLD as u64;
        match sys(nr::CLONE3, &[args.as_mut_ptr() as i64, 88]) {
            Ok(0) => unsafe { _exit(0) },
            other => other,
        }
    }),
    ("setns", || {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open("/proc/self/ns/uts").map_err(io_errno)?;
        sys(nr::SETNS, &[file.as_raw_fd() as i64, 0])
    }),
    ("sethostname", || {
        let name = c("probe");
        sys(nr::SETHOSTNAME, &[ptr(&name), 5])
    }),
    ("setdomainname", || {
        let name = c("probe");
        sys(nr::SETDOMAINNAME, &[ptr(&name), 5])
    }),
    ("quotactl", || {
        let dev = c("/dev/null");
        sys(
            nr::QUOTACTL,
            &[0x0080_0007 /* Q_SYNC|USRQUOTA */, ptr(&dev), 0, 0],
        )
    }),
    ("fanotify_init", || sys(nr::FANOTIFY_INIT, &[0, 0])),
    ("lookup_dcookie", || {
        let mut buf = [0u8; 64];
        sys(nr::LOOKUP_DCOOKIE, &[0, buf.as_mut_ptr() as i64, 64])
    }),
    // Kernel modules, kexec, the machine itself.
    ("init_module", || {
        let params = c("");
        sys(nr::INIT_MODULE, &[0, 0, ptr(&params)])
    }),
    ("finit_module", || {
        let params = c("");
        sys(nr::FINIT_MODULE, &[-1, ptr(&params), 0])
    }),
    ("delete_module", || {
        let name = c("nook_probe_no_such_module");
        sys(nr::DELETE_MODULE, &[ptr(&name), 0o4000 /* O_NONBLOCK */])
    }),
    ("kexec_load", || sys(nr::KEXEC_LOAD, &[0, 0, 0, 0])),
    ("kexec_file_load", || {
        sys(nr::KEXEC_FILE_LOAD, &[-1, -1, 0, 0, 0])
    }),
    ("reboot(CAD_OFF)", || {
        sys(
            nr::REBOOT,
            &[
                LINUX_REBOOT_MAGIC1,
                LINUX_REBOOT_MAGIC2,
                LINUX_REBOOT_CMD_CAD_OFF,
                0,
            ],
        )
    }),
    ("swapon", || {
        let path = c("/nook-probe-no-such-swap");
        sys(nr::SWAPON, &[ptr(&path), 0])
    }),
    ("swapoff", || {
        let path = c("/nook-probe-no-such-swap");
        sys(nr::SWAPOFF, &[ptr(&path)])
    }),
    ("acct", || {
        let path = c("/nook-probe-no-such-file");
        sys(nr::ACCT, &[ptr(&path)])
    }),
    ("clock_settime", clock_settime_now),
    ("settimeofday", || sys(nr::SETTIMEOFDAY, &[0, 0])),
    ("syslog(size)", || {
        sys(nr::SYSLOG, &[SYSLOG_ACTION_SIZE_BUFFER, 0, 0])
    }),
    ("vhangup", || sys(nr::VHANGUP, &[])),
    ("iopl", || match nr::IOPL {
        Some(n) => sys(n, &[3]),
        None => Err(38),
    }),
    ("ioperm", || match nr::IOPERM {
        Some(n) => sys(n, &[0x80, 1, 1]),
        None => Err(38),
    }),
    // Kernel attack surface Docker keeps out of reach.
    ("bpf(MAP_CREATE)", || {
        let mut attr = [0u32; 30];
        attr[0] = 2; // BPF_MAP_TYPE_ARRAY
        attr[1] = 4;
        attr[2] = 4;
        attr[3] = 1;
        sys(nr::BPF, &[0, attr.as_mut_ptr() as i64, 120])
    }),
    ("perf_event_open", || {
        // struct perf_event_attr: PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, this task.
        let mut attr = [0u8; 128];
        attr[4..8].copy_from_slice(&128u32.to_ne_bytes());
        sys(
            nr::PERF_EVENT_OPEN,
            &[attr.as_mut_ptr() as i64, 0, -1, -1, 0],
        )
    }),
    ("keyctl", || {
        sys(
            nr::KEYCTL,
            &[KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0],
        )
    }),
    ("add_key", || {
        let (kind, desc) = (c("user"), c("nook-probe"));
        let payload = b"x";
        sys(
            nr::ADD_KEY,
            &[
                ptr(&kind),
                ptr(&desc),
                payload.as_ptr() as i64,
                1,
                KEY_SPEC_SESSION_KEYRING,
            ],
        )
    }),
    ("request_key", || {
        let (kind, desc) = (c("user"), c("nook-probe"));
        sys(nr::REQUEST_KEY, &[ptr(&kind), ptr(&desc), 0, 0])
    }),
    ("userfaultfd", || sys(nr::USERFAULTFD, &[0])),
    ("io_uring_setup", || {
        let mut params = [0u8; 120];
        sys(nr::IO_URING_SETUP, &[1, params.as_mut_ptr() as i64])
    }),
    ("personality(ADDR_NO_RANDOMIZE)", || {
        sys(nr::PERSONALITY, &[ADDR_NO_RANDOMIZE])
    }),
    ("socket(AF_ALG)", || {
        sys(nr::SOCKET, &[AF_ALG, 5 /* SOCK_SEQPACKET */, 0])
    }),
    ("socket(AF_VSOCK)", || {
        sys(nr::SOCKET, &[AF_VSOCK, SOCK_STREAM, 0])
    }),
    ("set_mempolicy", || sys(nr::SET_MEMPOLICY, &[0, 0, 0])),
    ("ustat", || match nr::USTAT {
        Some(n) => {
            let mut buf = [0u8; 64];
            sys(n, &[0, buf.as_mut_ptr() as i64])
        }
        None => Err(38),
    }),
    ("sysfs", || match nr::SYSFS {
        Some(n) => sys(n, &[3]),
        None => Err(38),
    }),
    // Reaching other processes and files by handle (CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH).
    ("kcmp", || sys(nr::KCMP, &[1, 1, 0, 0, 0])),
    ("pidfd_getfd", || {
        let me = sys(nr::GETPID, &[])?;
        let pidfd = sys(nr::PIDFD_OPEN, &[me, 0])?;
        sys(nr::PIDFD_GETFD, &[pidfd, 0, 0])
    }),
    ("open_by_handle_at", || {
        let mut handle = FileHandle::empty();
        let mut mount_id: c_int = 0;
        let dev = c("/dev");
        sys(
            nr::NAME_TO_HANDLE_AT,
            &[
                AT_FDCWD,
                ptr(&dev),
                &mut handle as *mut FileHandle as i64,
                &mut mount_id as *mut c_int as i64,
                0,
            ],
        )?;
        let dir = std::fs::File::open("/dev").map_err(|e| e.raw_os_error().unwrap_or(0))?;
        use std::os::fd::AsRawFd;
        sys(
            nr::OPEN_BY_HANDLE_AT,
            &[
                dir.as_raw_fd() as i64,
                &mut handle as *mut FileHandle as i64,
                O_RDONLY,
            ],
        )
    }),
];

fn main() {
    // Some cases would change the host if they worked there (mount, sethostname, umount2 of
    // /proc): refuse to run anywhere but in a user namespace of its own.
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    if uid_map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"] {
        eprintln!("probe: refusing to run in the host's user namespace");
        std::process::exit(3);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match args.first().map(String::as_str) {
        Some("syscalls") => syscalls(),
        Some("status") => status(),
        Some("open") => rest.iter().for_each(|p| open(p)),
        Some("write") => rest.iter().for_each(|p| write(p)),
        Some("mknod-block") => mknod_block(rest[0]),
        Some("pids") => pids(),
        Some("reach") => reach(rest[0].parse().expect("reach PID")),
        Some("fds") => fds(rest.first().copied().unwrap_or("self")),
        Some("chroot-escape") => chroot_escape(rest[0]),
        Some("shocker") => shocker(rest[0]),
        Some("abstract") => abstract_socket(rest[0]),
        Some("gid-then-open") => gid_then_open(rest[0].parse().expect("GID"), rest[1]),
        Some("watch-exe") => watch_exe(rest[0].parse().expect("SECONDS")),
        _ => {
            eprintln!("usage: probe syscalls|status|open|write|mknod-block|pids|reach|fds|chroot-escape|shocker|abstract|gid-then-open|watch-exe …");
            std::process::exit(2);
        }
    }
}

fn errno_name(errno: i32) -> String {
    let name = match errno {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        5 => "EIO",
        9 => "EBADF",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        19 => "ENODEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        30 => "EROFS",
        38 => "ENOSYS",
        40 => "ELOOP",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        111 => "ECONNREFUSED",
        116 => "ESTALE",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

fn show(result: Result<String, i32>) -> String {
    match result {
        Ok(detail) if detail.is_empty() => "ok".to_string(),
        Ok(detail) => format!("ok {detail}"),
        Err(errno) => errno_name(errno),
    }
}

fn io_errno(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Runs each case in a child and prints `NAME: RESULT`; the child's exit status carries the
/// errno (0: the call worked), and a signal is shown as such.
fn syscalls() {
    for (name, case) in CASES {
        // SAFETY: this program is single-threaded; the child only makes the call and exits.
        let pid = unsafe { fork() };
        if pid == 0 {
            let code = match case() {
                Ok(_) => 0,
                Err(errno) => errno.clamp(1, 255),
            };
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { _exit(code) }
        }
        let mut status: c_int = 0;
        // SAFETY: waiting for the child just forked, into a local.
        unsafe { waitpid(pid, &mut status, 0) };
        let result = if status & 0x7f != 0 {
            format!("signal {}", status & 0x7f)
        } else {
            match (status >> 8) & 0xff {
                0 => "ok".to_string(),
                errno => errno_name(errno),
            }
        };
        println!("{name}: {result}");
    }
    #[cfg(target_arch = "x86_64")]
    i386_cases();
}

/// The same policy must hold for the i386 entry point (`int 0x80`), whose system call
/// numbers differ: a filter that checked only x86_64 numbers would let these through.
#[cfg(target_arch = "x86_64")]
fn i386_cases() {
    // (name, i386 number, arguments)
    let cases: [(&str, i64, [i64; 3]); 4] = [
        ("i386 getpid", 20, [0, 0, 0]),
        ("i386 unshare(CLONE_NEWUSER)", 310, [CLONE_NEWUSER, 0, 0]),
        (
            "i386 keyctl",
            288,
            [KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0],
        ),
        ("i386 init_module", 128, [0, 0, 0]),
    ];
    for (name, number, args) in cases {
        // SAFETY: as in `syscalls`.
        let pid = unsafe { fork() };
        if pid == 0 {
            let ret = int80(number, args);
            let code = if ret < 0 { (-ret).clamp(1, 255) } else { 0 };
            // SAFETY: as in `syscalls`.
            unsafe { _exit(code as c_int) }
        }
        let mut status: c_int = 0;
        // SAFETY: as in `syscalls`.
        unsafe { waitpid(pid, &mut status, 0) };
        let result = if status & 0x7f != 0 {
            format!("signal {}", status & 0x7f)
        } else {
            match (status >> 8) & 0xff {
                0 => "ok".to_string(),
                errno => errno_name(errno),
            }
        };
        println!("{name}: {result}");
    }
}

/// An i386 system call from this 64-bit process; returns the raw result (-errno on error).
#[cfg(target_arch = "x86_64")]
fn int80(number: i64, args: [i64; 3]) -> i64 {
    let ret: i64;
    // SAFETY: only integer arguments; rbx is LLVM's, so the first argument goes through a
    // scratch register and is swapped in and out around the call.
    unsafe {
        std::arch::asm!(
            "xchg {a1}, rbx",
            "int 0x80",
            "xchg {a1}, rbx",
            a1 = inout(reg) args[0] => _,
            inlateout("rax") number => ret,
            in("rcx") args[1],
            in("rdx") args[2],
        );
    }
    // The i386 ABI returns a 32-bit value.
    ret as i32 as i64
}

/// clone(2) with `flags`: the new child exits at once; Ok when it was created.
fn clone_then_exit(flags: i64) -> Result<i64, i32> {
    match sys(nr::CLONE, &[flags, 0, 0, 0, 0]) {
        // SAFETY: the clone's child leaves at once.
        Ok(0) => unsafe { _exit(0) },
        Ok(pid) => {
            let mut status: c_int = 0;
            // SAFETY: waiting for the clone's child, into a local.
            unsafe { waitpid(pid as c_int, &mut status, 0) };
            Ok(pid)
        }
        Err(e) => Err(e),
    }
}

fn process_vm_readv_self() -> Result<i64, i32> {
    let source = [7u8; 8];
    let mut target = [0u8; 8];
    let local = [target.as_mut_ptr() as usize, 8usize];
    let remote = [source.as_ptr() as usize, 8usize];
    let me = sys(nr::GETPID, &[])?;
    sys(
        nr::PROCESS_VM_READV,
        &[me, local.as_ptr() as i64, 1, remote.as_ptr() as i64, 1, 0],
    )
}

/// Sets the clock to what it reads now (so even a success would change nothing).
fn clock_settime_now() -> Result<i64, i32> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let ts = [now.as_secs() as i64, i64::from(now.subsec_nanos())];
    sys(nr::CLOCK_SETTIME, &[CLOCK_REALTIME, ts.as_ptr() as i64])
}

#[repr(C)]
struct FileHandle {
    handle_bytes: c_uint,
    handle_type: c_int,
    f_handle: [u8; MAX_HANDLE_SZ],
}

impl FileHandle {
    fn empty() -> FileHandle {
        FileHandle {
            handle_bytes: MAX_HANDLE_SZ as c_uint,
            handle_type: 0,
            f_handle: [0; MAX_HANDLE_SZ],
        }
    }
}

fn status() {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: three locals for the kernel to fill.
    unsafe { getresuid(&mut r, &mut e, &mut s) };
    println!("uids: {r} {e} {s}");
    // SAFETY: as above.
    unsafe { getresgid(&mut r, &mut e, &mut s) };
    println!("gids: {r} {e} {s}");
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in text.lines() {
        if ["Cap", "NoNewPrivs", "Seccomp"]
            .iter()
            .any(|p| line.starts_with(p))
        {
            println!("{}", line.replace('\t', " "));
        }
    }
}

/// Reads a file (`ok N bytes`) or lists a directory (`ok N entries`).
fn open(path: &str) {
    println!("open {path}: {}", show(read(path)));
}

fn read(path: &str) -> Result<String, i32> {
    let meta = std::fs::metadata(path).map_err(io_errno)?;
    if meta.is_dir() {
        let n = std::fs::read_dir(path).map_err(io_errno)?.count();
        return Ok(format!("{n} entries"));
    }
    let mut file = std::fs::File::open(path).map_err(io_errno)?;
    // Some /proc files are endless or huge; a bounded read says enough.
    let mut buf = vec![0u8; 1 << 16];
    let n = file.read(&mut buf).map_err(io_errno)?;
    Ok(format!("{n} bytes"))
}

fn write(path: &str) {
    let result = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"1\n"))
        .map(|()| String::new())
        .map_err(io_errno);
    println!("write {path}: {}", show(result));
}

/// A block device node for the host's first disk (8:0).
fn mknod_block(path: &str) {
    let target = c(path);
    let dev = (8 << 8) as i64;
    let result = sys(
        nr::MKNODAT,
        &[AT_FDCWD, ptr(&target), 0o060_000 | 0o600, dev],
    )
    .map(|_| String::new());
    println!("mknod-block {path}: {}", show(result));
}

fn pids() {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort();
    for pid in pids {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        println!("pid {pid} {}", comm.trim());
    }
}

/// Everything a process can try against another one it knows the number of.
fn reach(pid: i64) {
    println!(
        "kill({pid}, 0): {}",
        show(sys(nr::KILL, &[pid, 0]).map(|_| String::new()))
    );
    let attach = sys(nr::PTRACE, &[PTRACE_ATTACH, pid, 0, 0]).map(|_| String::new());
    if attach.is_ok() {
        // Let go again, or the process stays stopped once this one exits.
        let mut status: c_int = 0;
        // SAFETY: waiting for the attach's stop into a local, then plain integers.
        unsafe {
            waitpid(pid as c_int, &mut status, 0x4000_0000 /* __WALL */)
        };
        let _ = sys(nr::PTRACE, &[PTRACE_DETACH, pid, 0, 0]);
    }
    println!("ptrace(ATTACH, {pid}): {}", show(attach));
    let pidfd = sys(nr::PIDFD_OPEN, &[pid, 0]).map(|_| String::new());
    println!("pidfd_open({pid}): {}", show(pidfd));
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .map_err(io_errno);
    println!("readlink /proc/{pid}/exe: {}", show(exe));
}

/// The descriptors of process `pid` (`self`: this one) and what they point at.
fn fds(pid: &str) {
    let names: Vec<String> = match std::fs::read_dir(format!("/proc/{pid}/fd")) {
        Ok(dir) => dir
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => {
            println!("fds of {pid}: {}", errno_name(io_errno(e)));
            return;
        }
    };
    // The listing's own descriptor is closed by now, so its number no longer reads.
    for name in names {
        match std::fs::read_link(format!("/proc/{pid}/fd/{name}")) {
            Ok(target) => println!("fd {name} -> {}", target.display()),
            Err(e) if e.raw_os_error() == Some(2) && pid == "self" => {}
            Err(e) => println!("fd {name}: {}", errno_name(io_errno(e))),
        }
    }
}

/// chroot into a subdirectory, climb out with `..` from a directory outside the new root (the
/// classic breakout of a chroot), chroot to where the climb ends, and look for `path`.
fn chroot_escape(path: &str) {
    let result = (|| -> Result<String, i32> {
        std::fs::create_dir_all("/tmp/probe-jail").map_err(io_errno)?;
        let outside = std::fs::File::open("/").map_err(io_errno)?;
        std::os::unix::fs::chroot("/tmp/probe-jail").map_err(io_errno)?;
        use std::os::fd::AsRawFd;
        // fchdir to the descriptor of the old root: now outside the chroot.
        let fd = outside.as_raw_fd();
        sys(nr::FCHDIR, &[fd as i64])?;
        for _ in 0..64 {
            std::env::set_current_dir("..").map_err(io_errno)?;
        }
        std::os::unix::fs::chroot(".").map_err(io_errno)?;
        Ok(String::new())
    })();
    println!("chroot breakout: {}", show(result));
    let found = std::fs::metadata(path)
        .map(|_| String::new())
        .map_err(io_errno);
    println!("after breakout, {path}: {}", show(found));
}

/// Docker's "shocker": a file handle for inode 2 (the root directory of ext2/3/4) on the file
/// system of `dir`, opened relative to `dir`.
fn shocker(dir: &str) {
    let result = (|| -> Result<String, i32> {
        let mut handle = FileHandle::empty();
        let mut mount_id: c_int = 0;
        let path = c(dir);
        sys(
            nr::NAME_TO_HANDLE_AT,
            &[
                AT_FDCWD,
                ptr(&path),
                &mut handle as *mut FileHandle as i64,
                &mut mount_id as *mut c_int as i64,
                0,
            ],
        )?;
        println!(
            "name_to_handle_at {dir}: type {} bytes {}",
            handle.handle_type, handle.handle_bytes
        );
        // FILEID_INO32_GEN: inode number, generation.
        handle.handle_type = 1;
        handle.handle_bytes = 8;
        handle.f_handle[..4].copy_from_slice(&2u32.to_ne_bytes());
        handle.f_handle[4..8].copy_from_slice(&0u32.to_ne_bytes());
        let mount = std::fs::File::open(dir).map_err(io_errno)?;
        use std::os::fd::AsRawFd;
        let fd = sys(
            nr::OPEN_BY_HANDLE_AT,
            &[
                mount.as_raw_fd() as i64,
                &mut handle as *mut FileHandle as i64,
                O_RDONLY | O_DIRECTORY,
            ],
        )?;
        let names: Vec<String> = std::fs::read_dir(format!("/proc/self/fd/{fd}"))
            .map_err(io_errno)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        Ok(format!("lists {}", names.join(",")))
    })();
    println!("open_by_handle_at(forged root of {dir}): {}", show(result));
}

fn abstract_socket(name: &str) {
    use std::os::linux::net::SocketAddrExt;
    let result = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .and_then(|addr| std::os::unix::net::UnixStream::connect_addr(&addr))
        .map(|_| String::new())
        .map_err(io_errno);
    println!("connect @{name}: {}", show(result));
}

fn gid_then_open(gid: u32, path: &str) {
    // SAFETY: an empty list, then plain integers.
    let switched = unsafe { setgroups(0, std::ptr::null()) == 0 && setresgid(gid, gid, gid) == 0 };
    let result = if switched {
        read(path)
    } else {
        Err(io_errno(std::io::Error::last_os_error()))
    };
    println!("open {path} as gid {gid}: {}", show(result));
}

/// Polls /proc for new processes for `seconds` and opens each one's executable; prints every
/// executable that is not a file of this container's root (compared by device and inode).
fn watch_exe(seconds: u64) {
    use std::collections::HashSet;
    use std::os::unix::fs::MetadataExt;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let mut seen: HashSet<u32> = HashSet::new();
    let mut opened = 0u64;
    let me = std::process::id();
    let mut next_guess = me + 1;
    while std::time::Instant::now() < deadline {
        // Guess the next numbers first (they are handed out in order), then scan.
        let mut candidates: Vec<u32> = (next_guess..next_guess + 4).collect();
        if opened % 64 == 0 {
            if let Ok(dir) = std::fs::read_dir("/proc") {
                candidates.extend(
                    dir.flatten()
                        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()),
                );
            }
        }
        for pid in candidates {
            if pid == me || seen.contains(&pid) {
                continue;
            }
            let Ok(exe) = std::fs::File::open(format!("/proc/{pid}/exe")) else {
                continue;
            };
            opened += 1;
            next_guess = next_guess.max(pid + 1);
            // A file of this container is reachable by the path the link shows, as the same
            // inode; anything else came from outside (the host's nook, before its exec).
            let (Ok(meta), Ok(link)) = (
                exe.metadata(),
                std::fs::read_link(format!("/proc/{pid}/exe")),
            ) else {
                continue;
            };
            let inside = std::fs::metadata(&link)
                .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
            if !inside {
                println!("host executable of pid {pid}: {}", link.display());
                seen.insert(pid);
            }
        }
    }
    println!("watch-exe: opened {opened}");
}
