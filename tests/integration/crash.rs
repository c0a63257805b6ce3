//! Crash safety: nook killed with SIGKILL at many moments (seeded, reproducible) during pull,
//! commit, push, load, rm, rmi, run and start. After each kill `nook system check` finds the
//! store clean, or `--repair` makes it clean without losing any image that was complete; the
//! interrupted command, run again, succeeds; and at the end `system prune` leaves no orphan
//! behind. The suite prints how many kill points it survived (README, Reliability).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::fixtures;
use crate::harness::{TestContext, assert_success};

/// Fixed, so a failure can be replayed; printed with every failure.
const SEED: u64 = 0x6e6f_6f6b_2026;
/// Kill points per operation (8 operations).
const KILLS_PER_OP: usize = 26;

/// xorshift64*: enough randomness to spread the kill moments, and reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A moment in [0, max).
    fn delay(&mut self, max: Duration) -> Duration {
        let micros = max.as_micros().max(1) as u64;
        Duration::from_micros(self.next() % micros)
    }
}

/// One kind of operation: how to set the store up for attempt `n`, and the command to kill.
struct Op {
    name: &'static str,
    prepare: fn(&Crash, usize),
    args: fn(&Crash, usize) -> Vec<String>,
    /// Whether the command may fail when run again because the kill came after it had
    /// finished its work (rm, rmi: the thing is gone), checked by `done`.
    done: Option<fn(&Crash, usize) -> bool>,
}

struct Crash {
    ctx: TestContext,
    /// What containers are made from.
    image: String,
    /// What `pull` fetches: an image of its own with a 4 MB layer, so a pull takes long
    /// enough to be killed in the middle of a download.
    pulled: String,
    archive: String,
    push_repo: String,
}

impl Crash {
    fn nook(&self, args: &[&str]) -> String {
        assert_success(&self.ctx.nook(args))
    }

    fn has_image(&self, name: &str) -> bool {
        !self.nook(&["images", "-q", name]).trim().is_empty()
    }

    fn has_container(&self, name: &str) -> bool {
        self.ctx
            .nook(&["ps", "-a", "--format", "{{.Names}}"])
            .stdout
            .split(|b| *b == b'\n')
            .any(|l| l == name.as_bytes())
    }

    /// Images and whether each still runs: the complete images before a kill must all
    /// survive it.
    fn images(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .nook(&["images", "-q", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// `system check`, repairing if needed; returns whether a repair was needed.
    fn check(&self, what: &str) -> bool {
        let out = self.ctx.nook(&["system", "check"]);
        if out.status.success() {
            return false;
        }
        let report = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let repaired = self.ctx.nook(&["system", "check", "--repair"]);
        assert!(
            repaired.status.success(),
            "{what}: the store was damaged and could not be repaired:\n{report}\n{}",
            String::from_utf8_lossy(&repaired.stderr)
        );
        let again = self.ctx.nook(&["system", "check"]);
        assert!(
            again.status.success(),
            "{what}: still not clean after --repair:\n{}",
            String::from_utf8_lossy(&again.stdout)
        );
        true
    }
}

fn ops() -> Vec<Op> {
    vec![
        Op {
            name: "pull",
            prepare: |c, _| {
                if c.has_image(&c.pulled) {
                    c.nook(&["rmi", &c.pulled]);
                }
            },
            args: |c, _| vec!["pull".into(), "-q".into(), c.pulled.clone()],
            done: None,
        },
        Op {
            name: "commit",
            prepare: |_, _| {},
            args: |_, n| {
                vec![
                    "commit".into(),
                    "-q".into(),
                    "base".into(),
                    format!("crash/c:{n}"),
                ]
            },
            done: None,
        },
        Op {
            name: "push",
            prepare: |_, _| {},
            args: |c, n| {
                vec![
                    "push".into(),
                    "-q".into(),
                    "--tls-verify=false".into(),
                    format!("crash/c:{n}"),
                    format!("{}:{n}", c.push_repo),
                ]
            },
            done: None,
        },
        Op {
            name: "load",
            prepare: |c, _| {
                if c.has_image("crash/loaded:1") {
                    c.nook(&["rmi", "crash/loaded:1"]);
                }
            },
            args: |c, _| vec!["load".into(), "-q".into(), "-i".into(), c.archive.clone()],
            done: None,
        },
        Op {
            name: "rm",
            prepare: |c, n| {
                c.nook(&["create", "--name", &format!("rm{n}"), &c.image, "true"]);
            },
            args: |_, n| vec!["rm".into(), format!("rm{n}")],
            done: Some(|c, n| !c.has_container(&format!("rm{n}"))),
        },
        Op {
            name: "rmi",
            prepare: |_, _| {},
            args: |_, n| vec!["rmi".into(), format!("crash/c:{n}")],
            done: Some(|c, n| !c.has_image(&format!("crash/c:{n}"))),
        },
        Op {
            name: "run",
            prepare: |_, _| {},
            // No name: a run killed after it made its container would make the same name
            // taken when run again (as in Docker); prune reclaims what is left.
            args: |c, _| {
                vec![
                    "run".into(),
                    "--rm".into(),
                    "--network".into(),
                    "none".into(),
                    c.image.clone(),
                    "sh".into(),
                    "-c".into(),
                    "echo ran > /ran".into(),
                ]
            },
            done: None,
        },
        Op {
            name: "start",
            prepare: |c, n| {
                c.nook(&[
                    "create",
                    "--name",
                    &format!("start{n}"),
                    "--network",
                    "none",
                    &c.image,
                    "true",
                ]);
            },
            args: |_, n| vec!["start".into(), "-a".into(), format!("start{n}")],
            done: None,
        },
    ]
}

/// The command's usual duration (of three), so kill moments cover its whole run.
fn calibrate(c: &Crash, op: &Op, base: usize) -> Duration {
    let mut longest = Duration::ZERO;
    for n in base..base + 3 {
        setup(c, op, n);
        let args = (op.args)(c, n);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        c.nook(&args);
        longest = longest.max(started.elapsed());
        after_success(c, op, n);
    }
    longest + longest / 5
}

/// The store as attempt `n` of `op` needs it.
fn setup(c: &Crash, op: &Op, n: usize) {
    if op.name == "push" || op.name == "rmi" {
        // Their image comes from a commit that was not interrupted.
        c.nook(&["commit", "-q", "base", &format!("crash/c:{n}")]);
    }
    (op.prepare)(c, n);
}

/// Leaves what a successful run made in the state the next steps expect.
fn after_success(c: &Crash, op: &Op, n: usize) {
    match op.name {
        "start" => c.nook(&["rm", &format!("start{n}")]),
        _ => String::new(),
    };
}

#[test]
fn the_store_survives_sigkill_at_hundreds_of_moments() {
    let ctx = TestContext::new();
    let image = fixtures::multi_layer().reference.clone();
    let noise: Vec<u8> = {
        let mut rng = Rng(SEED ^ 1);
        (0..4 << 20).map(|_| rng.next() as u8).collect()
    };
    let mut layer = fixtures::TarBuilder::new();
    layer.file("noise", &noise, 0o644, 0, 0);
    let pulled = fixtures::push_image(
        "crash-pull",
        fixtures::host_arch(),
        vec![fixtures::gzip_layer(&layer.finish())],
        &["sh"],
    )
    .reference;
    let crash = Crash {
        pulled,
        archive: ctx.home.join("loaded.tar").display().to_string(),
        push_repo: format!("{}/crash/pushed", crate::harness::registry().addr),
        ctx,
        image,
    };
    crash.nook(&["pull", "-q", &crash.image]);
    crash.nook(&[
        "run",
        "--name",
        "base",
        "--network",
        "none",
        &crash.image,
        "sh",
        "-c",
        "echo x > /x",
    ]);
    crash.nook(&["tag", &crash.image, "crash/loaded:1"]);
    crash.nook(&["save", "-o", &crash.archive, "crash/loaded:1"]);
    crash.nook(&["rmi", "crash/loaded:1"]);

    let mut rng = Rng(SEED);
    let mut kills = 0;
    let mut repairs = 0;
    // Commit makes the images push and rmi work on: numbered per attempt.
    let ops = ops();
    for op in &ops {
        let longest = calibrate(&crash, op, 1000);
        for n in 0..KILLS_PER_OP {
            setup(&crash, op, n);
            let before = crash.images();
            let args = (op.args)(&crash, n);
            let delay = rng.delay(longest);
            let what = format!(
                "{} #{n} killed after {delay:?} (seed {SEED:#x}): nook {}",
                op.name,
                args.join(" ")
            );
            let mut child = crash
                .ctx
                .nook_cmd()
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(delay);
            let _ = child.kill();
            let _ = child.wait();
            // What it started (a user-namespace child, a monitor) dies with it.
            std::thread::sleep(Duration::from_millis(20));
            kills += 1;
            if crash.check(&what) {
                repairs += 1;
            }
            // Every image that was complete before is still there (a pull or load may have
            // added one, an rmi removed its own).
            let after = crash.images();
            for id in &before {
                assert!(
                    after.contains(id) || op.name == "rmi",
                    "{what}: image {id} was lost"
                );
            }
            // Run again, it succeeds (or had already done its work).
            let again = crash
                .ctx
                .nook(&args.iter().map(String::as_str).collect::<Vec<_>>());
            let finished = op.done.is_some_and(|done| done(&crash, n));
            assert!(
                again.status.success() || finished,
                "{what}: running it again failed: {}",
                String::from_utf8_lossy(&again.stderr)
            );
            if again.status.success() {
                after_success(&crash, op, n);
            } else if op.name == "start" {
                let _ = crash.ctx.nook(&["rm", "-f", &format!("start{n}")]);
            }
        }
    }
    // Nothing left that prune cannot reclaim: after pruning everything, the store is empty.
    crash.nook(&["rm", "-f", "base"]);
    let _ = crash.ctx.nook(&["container", "prune", "-f"]);
    crash.nook(&["system", "prune", "-a", "-f"]);
    let (images, layers, clean) = crate::harness::context::store_state(&crash.ctx);
    assert!(clean, "staging, trash or tmp not empty after prune");
    assert!(
        layers.is_empty(),
        "layers left after prune -a: {layers:?}\n{images}"
    );
    assert!(crash.ctx.nook(&["system", "check"]).status.success());
    println!(
        "crash safety: {kills} SIGKILL points in {} operations (seed {SEED:#x}), {repairs} needed `system check --repair`, no complete image lost",
        ops.len()
    );
    assert!(kills >= 200);
}
