//! Per-layer progress on stderr: bars on a terminal, one plain line per event otherwise,
//! nothing with `-q`. Every command that moves layers (pull, push, load, save, commit) reports
//! through this, so the three modes mean the same everywhere; stdout is never written here.

use std::io::{IsTerminal, Read};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub enum Progress {
    Quiet,
    Lines,
    Bars(MultiProgress),
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() {
            Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Progress::Lines
        }
    }

    pub fn is_quiet(&self) -> bool {
        matches!(self, Progress::Quiet)
    }

    /// A line of its own (above the bars on a terminal).
    pub fn message(&self, text: &str) {
        match self {
            Progress::Quiet => {}
            Progress::Lines => eprintln!("{text}"),
            Progress::Bars(multi) => {
                let _ = multi.println(text);
            }
        }
    }

    pub fn task(&self, label: &str, total: u64) -> Task {
        self.task_with_message(label, total, "Downloading")
    }

    /// A task whose bar starts with `message` (pull's say "Downloading").
    pub fn task_with_message(&self, label: &str, total: u64, message: &str) -> Task {
        match self {
            Progress::Bars(multi) => {
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes}",
                    )
                    .expect("template is valid")
                    .progress_chars("=> "),
                );
                bar.set_prefix(label.to_string());
                bar.set_message(message.to_string());
                Task {
                    label: label.to_string(),
                    bar: Some(bar),
                    lines: false,
                }
            }
            Progress::Lines => Task {
                label: label.to_string(),
                bar: None,
                lines: true,
            },
            Progress::Quiet => Task {
                label: label.to_string(),
                bar: None,
                lines: false,
            },
        }
    }
}

impl Progress {
    /// A task whose size is not known beforehand: a live count of bytes on a terminal.
    pub fn counter(&self, label: &str, message: &str) -> Task {
        let task = self.task_with_message(label, 0, message);
        if let Some(bar) = &task.bar {
            bar.set_style(
                ProgressStyle::with_template("{prefix}: {msg:<12} {bytes} ({bytes_per_sec})")
                    .expect("template is valid"),
            );
        }
        task
    }

    /// A live line for work that cannot count its bytes (reading and checking an archive):
    /// a spinner on a terminal, nothing otherwise. Clear it with [`Task::clear`].
    pub fn spinner(&self, message: &str) -> Task {
        let task = self.counter("", message);
        if let Some(bar) = &task.bar {
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .expect("template is valid"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
        }
        Task {
            lines: false,
            ..task
        }
    }

    /// `inner` counted into a new task of `total` bytes, which ends saying `done` once all
    /// of it was read (and `Failed` if it is dropped before).
    pub fn track<R: Read>(
        &self,
        inner: R,
        label: &str,
        total: u64,
        message: &str,
        done: &str,
    ) -> Tracked<R> {
        Tracked {
            inner,
            task: self.task_with_message(label, total, message),
            total,
            read: 0,
            done: Some(done.to_string()),
        }
    }
}

pub struct Task {
    label: String,
    bar: Option<ProgressBar>,
    lines: bool,
}

impl Task {
    pub fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    pub fn finish(&self, status: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(status.to_string());
            bar.finish();
        } else if self.lines {
            eprintln!("{}: {status}", self.label);
        }
    }

    /// Starts the count again (a retried upload), saying so on the bar.
    pub fn restart(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(0);
            bar.set_message(message.to_string());
        }
    }

    /// Removes the live line (a terminal), printing nothing in its place.
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn fail(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon_with_message("Failed");
        }
    }
}

/// Counts bytes into a task as they are read.
pub struct Counted<'a, R> {
    pub inner: R,
    pub task: &'a Task,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.task.advance(n as u64);
        Ok(n)
    }
}

/// A reader owning its task: see [`Progress::track`].
pub struct Tracked<R> {
    inner: R,
    task: Task,
    total: u64,
    read: u64,
    done: Option<String>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        self.task.advance(n as u64);
        if (n == 0 && !buf.is_empty()) || (self.total > 0 && self.read >= self.total) {
            self.finish();
        }
        Ok(n)
    }
}

impl<R> Tracked<R> {
    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            self.task.finish(&done);
        }
    }
}

impl<R> Drop for Tracked<R> {
    fn drop(&mut self) {
        if self.done.take().is_some() {
            self.task.fail();
        }
    }
}
