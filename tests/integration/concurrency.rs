//! Concurrency: 8 processes at once mixing pull, run, commit, rm, rmi, images and ps on one
//! store for a while (60 s; `NOOK_CONCURRENCY_SECONDS` shortens it for a quick look). No
//! command may fail except with a conflict the README documents, each said in one clear
//! line; nothing deadlocks (every command has a deadline); the store checks clean at the
//! end. The suite prints how many operations ran, how many met a documented conflict and how
//! many waited for a lock (README, Reliability).

use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::harness::fixtures;
use crate::harness::{TestContext, assert_success};

const WORKERS: usize = 8;
const SEED: u64 = 0x636f_6e63_2026;
/// Longer than any one command should ever take here: past it, a command counts as stuck.
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

/// Errors that are the documented outcome of two commands racing, not failures.
const DOCUMENTED_CONFLICTS: &[&str] = &[
    // rmi of an image some container (another worker's) was made from.
    "is used by container",
    "in use by",
    // rmi of an image another worker removed first.
    "no such image",
    "No such image",
];

struct Tally {
    ops: usize,
    conflicts: usize,
    waits: usize,
    failures: Vec<String>,
}

fn run(ctx: &TestContext, args: &[String], tally: &Mutex<Tally>, what: &str) -> bool {
    let started = Instant::now();
    let mut child = ctx
        .nook_cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes on the side so a chatty command cannot block on them.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > COMMAND_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = out.join();
    let stderr = err.join().unwrap();
    let mut t = tally.lock().unwrap();
    t.ops += 1;
    t.waits += stderr.matches("waiting for").count();
    match status {
        None => {
            t.failures.push(format!(
                "{what}: nook {} did not finish in {COMMAND_DEADLINE:?} (deadlock?)",
                args.join(" ")
            ));
            false
        }
        Some(s) if s.success() => true,
        Some(_) => {
            let errors: Vec<&str> = stderr
                .lines()
                .filter(|l| l.starts_with("Error: "))
                .collect();
            if errors.len() == 1 && DOCUMENTED_CONFLICTS.iter().any(|c| errors[0].contains(c)) {
                t.conflicts += 1;
            } else {
                t.failures
                    .push(format!("{what}: nook {} failed:\n{stderr}", args.join(" ")));
            }
            false
        }
    }
}

#[test]
fn eight_processes_at_once_never_corrupt_or_deadlock() {
    let seconds: u64 = std::env::var("NOOK_CONCURRENCY_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let ctx = TestContext::new();
    let shared = fixtures::multi_layer().reference.clone();
    let other = fixtures::single_layer().reference.clone();
    assert_success(&ctx.nook(&["pull", "-q", &shared]));
    let tally = Mutex::new(Tally {
        ops: 0,
        conflicts: 0,
        waits: 0,
        failures: Vec::new(),
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    std::thread::scope(|scope| {
        for worker in 0..WORKERS {
            let (ctx, tally, shared, other) = (&ctx, &tally, &shared, &other);
            scope.spawn(move || {
                let mut x = SEED ^ (worker as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let mut n = 0;
                while Instant::now() < deadline {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    n += 1;
                    let s = |v: &str| v.to_string();
                    let name = format!("w{worker}-{n}");
                    let what = format!("worker {worker} step {n} (seed {SEED:#x})");
                    match x % 8 {
                        0 => {
                            run(ctx, &[s("pull"), s("-q"), other.clone()], tally, &what);
                        }
                        1 => {
                            // May be refused while another worker's container uses it.
                            run(ctx, &[s("rmi"), other.clone()], tally, &what);
                        }
                        2 | 3 => {
                            let image = if x % 16 < 8 { shared } else { other };
                            run(
                                ctx,
                                &[
                                    s("run"),
                                    s("--rm"),
                                    s("--network"),
                                    s("none"),
                                    image.clone(),
                                    s("sh"),
                                    s("-c"),
                                    s("echo x > /x"),
                                ],
                                tally,
                                &what,
                            );
                        }
                        4 => {
                            // A container, its commit, and both removed again.
                            if run(
                                ctx,
                                &[
                                    s("run"),
                                    s("--name"),
                                    name.clone(),
                                    s("--network"),
                                    s("none"),
                                    shared.clone(),
                                    s("sh"),
                                    s("-c"),
                                    s("echo y > /y"),
                                ],
                                tally,
                                &what,
                            ) {
                                let tag = format!("conc/{name}:1");
                                run(
                                    ctx,
                                    &[s("commit"), s("-q"), name.clone(), tag.clone()],
                                    tally,
                                    &what,
                                );
                                run(ctx, &[s("rm"), name.clone()], tally, &what);
                                run(ctx, &[s("rmi"), tag], tally, &what);
                            }
                        }
                        5 => {
                            run(ctx, &[s("images")], tally, &what);
                        }
                        6 => {
                            run(ctx, &[s("ps"), s("-a")], tally, &what);
                        }
                        _ => {
                            run(ctx, &[s("inspect"), shared.clone()], tally, &what);
                        }
                    }
                }
            });
        }
    });
    let tally = tally.into_inner().unwrap();
    assert!(
        tally.failures.is_empty(),
        "{} of {} operations failed:\n{}",
        tally.failures.len(),
        tally.ops,
        tally.failures.join("\n")
    );
    let check = ctx.nook(&["system", "check"]);
    assert!(
        check.status.success(),
        "the store is not clean after the concurrent run:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // The shared image still runs.
    assert_success(&ctx.nook(&["run", "--rm", "--network", "none", &shared, "true"]));
    println!(
        "concurrency: {} operations by {WORKERS} processes in {seconds} s (seed {SEED:#x}), {} documented conflicts, {} lock waits, 0 failures",
        tally.ops, tally.conflicts, tally.waits
    );
}
