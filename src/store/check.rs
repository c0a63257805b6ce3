//! The store's checker and collector (`nook system check [--repair]`, and the clean-up part of
//! `nook system prune`).
//!
//! A check looks at, in this order:
//!
//! 1. `images.json` and `containers.json`: they must parse (nothing else can be judged
//!    without them, so a broken index stops the search for unused data);
//! 2. every image: its config and manifest blobs exist and hash to their names, its config
//!    lists the layers its record does, and each layer is whole: `layer.json`, `diff/`,
//!    `tar-split.gz`, and either the file sizes the tar-split records (`--quick`) or the whole
//!    tar rebuilt from them hashing to the diff id (the default, which reads every byte);
//! 3. containers: a record whose directory is gone, a directory without a record, a
//!    container whose image is gone;
//! 4. leftovers of interrupted commands: staged layers, trash, unfinished files in `tmp/`;
//! 5. layers and blobs no image uses.
//!
//! Steps 3–5 run under the collection lock ([`Store::lock_collection`]), so a pull, load,
//! commit or import that has stored layers but not yet its image record is waited for rather
//! than taken for garbage. A staged layer named by its diff id belongs to whoever holds that
//! layer's lock; a staged `new-PID-N` layer, a trash entry `NAME.PID.N` or a `tmp/` file
//! `NAME.PID.N` belongs to process PID while it lives. Those are never reported or removed.
//!
//! A repair removes leftovers and unused data, drops records whose directory is gone, and
//! removes damaged images (only images with a finding: an intact image is never touched); a
//! damaged image a container uses is kept unless `force`, which removes its stopped
//! containers with it.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::containers::{ContainerRecord, Status, dir_size, process_alive};
use super::images::ImageIndex;
use super::layers::remove_tree;
use super::prune::{Condition, Removal, blobs_in_use};
use super::{Result, Store, StoreError, io_err, lock};
use crate::image::config::ConfigSummary;
use crate::image::digest::Digest;
use crate::layer::split;

/// How much of each layer a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Rebuild the layer's tar from its files and hash it: every byte is read.
    Full,
    /// Only compare the files' sizes with their tar entries (`--quick`).
    Quick,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// How to verify images; `None` looks for garbage only (`system prune`): no image is
    /// verified and no container judged by its image.
    pub verify: Option<Verify>,
    pub repair: bool,
    /// With `repair`: also remove the stopped containers of a damaged or missing image.
    pub force: bool,
}

/// The sections of a report, in the order they are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    StoreFiles,
    DamagedImages,
    Containers,
    Leftovers,
    Unused,
}

impl Group {
    pub fn heading(self) -> &'static str {
        match self {
            Group::StoreFiles => "Store files",
            Group::DamagedImages => "Damaged images",
            Group::Containers => "Containers",
            Group::Leftovers => "Leftovers of interrupted commands",
            Group::Unused => "Data no image uses",
        }
    }
}

/// A container as a finding names it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRef {
    pub id: String,
    pub name: String,
    pub running: bool,
}

/// What `--repair` does about a finding.
#[derive(Debug, Clone, PartialEq)]
pub enum Fix {
    /// Delete this file or directory.
    Remove(PathBuf),
    /// Delete a staged layer, holding that layer's lock (so no extraction is using it).
    RemoveStaged(PathBuf, Digest),
    /// Delete a container directory that has no record (checked again under the metadata
    /// lock).
    RemoveOrphanDir(PathBuf),
    RemoveLayer(Digest),
    RemoveBlob(Digest),
    /// Remove a damaged image; these containers use it (removed first, with `force`).
    RemoveImage(Digest, Vec<ContainerRef>),
    /// Drop the record of a container whose directory is gone.
    ForgetContainer(String),
    /// Remove a container whose image is gone (with `force`).
    RemoveContainer(ContainerRef),
    /// Nothing a repair can do: what the user can.
    Manual(String),
}

impl Fix {
    /// What `--repair` (with `force` or not) does, or why it does nothing.
    pub fn remedy(&self, force: bool) -> std::result::Result<String, String> {
        let names = |cs: &[ContainerRef]| {
            cs.iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Fix::Remove(_)
            | Fix::RemoveStaged(..)
            | Fix::RemoveOrphanDir(_)
            | Fix::RemoveLayer(_)
            | Fix::RemoveBlob(_) => Ok("--repair removes it".into()),
            Fix::RemoveImage(_, cs) if cs.is_empty() => Ok("--repair removes the image".into()),
            Fix::RemoveImage(_, cs) if cs.iter().any(|c| c.running) => Err(format!(
                "used by running container {}: stop it, then --repair --force removes the image and its containers",
                names(&cs.iter().filter(|c| c.running).cloned().collect::<Vec<_>>())
            )),
            Fix::RemoveImage(_, cs) if force => Ok(format!(
                "--repair --force removes the image and container {}",
                names(cs)
            )),
            Fix::RemoveImage(_, cs) => Err(format!(
                "used by container {}: --repair --force removes the image and its containers",
                names(cs)
            )),
            Fix::ForgetContainer(_) => Ok("--repair removes the record".into()),
            Fix::RemoveContainer(c) if c.running => {
                Err("it is running: stop it, then --repair --force removes it".into())
            }
            Fix::RemoveContainer(_) if force => Ok("--repair --force removes the container".into()),
            Fix::RemoveContainer(_) => {
                Err("remove it with `nook rm`, or use --repair --force".into())
            }
            Fix::Manual(what) => Err(what.clone()),
        }
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub group: Group,
    /// What it is about: a path relative to the store, or an image or container.
    pub subject: String,
    pub detail: String,
    pub fix: Fix,
}

/// What a check found, and with `repair`, what it did.
#[derive(Debug, Default)]
pub struct Report {
    pub root: PathBuf,
    pub images: usize,
    pub layers: usize,
    pub containers: usize,
    pub findings: Vec<Finding>,
    pub repaired: Vec<String>,
    pub not_repaired: Vec<String>,
    /// Bytes a repair freed.
    pub reclaimed: u64,
}

impl Report {
    /// Findings by section, in printing order.
    pub fn grouped(&self) -> Vec<(Group, Vec<&Finding>)> {
        let mut groups: Vec<(Group, Vec<&Finding>)> = Vec::new();
        let mut sorted: Vec<&Finding> = self.findings.iter().collect();
        sorted.sort_by_key(|f| f.group);
        for f in sorted {
            match groups.last_mut() {
                Some((g, list)) if *g == f.group => list.push(f),
                _ => groups.push((f.group, vec![f])),
            }
        }
        groups
    }

    /// The report of a check without `--repair`, and its exit status (0 clean, 1 problems).
    pub fn render_check(&self, force: bool) -> (String, i32) {
        if self.findings.is_empty() {
            return (self.clean_line(), 0);
        }
        let mut out = String::new();
        let mut fixable = 0;
        for (group, findings) in self.grouped() {
            out.push_str(&format!("{}:\n", group.heading()));
            for f in findings {
                let remedy = match f.fix.remedy(force) {
                    Ok(r) => {
                        fixable += 1;
                        r
                    }
                    Err(r) => format!("not repaired: {r}"),
                };
                out.push_str(&format!("  {}: {} [{remedy}]\n", f.subject, f.detail));
            }
        }
        let n = self.findings.len();
        out.push_str(&format!(
            "\n{} in the store at {}; `nook system check --repair{}` fixes {}.\n",
            plural(n, "problem"),
            self.root.display(),
            if force { " --force" } else { "" },
            if fixable == n {
                if n == 1 { "it" } else { "all of them" }.to_string()
            } else {
                format!("{fixable} of them")
            }
        ));
        (out, 1)
    }

    /// The report of `--repair`, and its exit status (0 when nothing is left to fix).
    pub fn render_repair(&self) -> (String, i32) {
        if self.findings.is_empty() {
            return (self.clean_line(), 0);
        }
        let mut out = String::new();
        if !self.repaired.is_empty() {
            out.push_str("Repaired:\n");
            for line in &self.repaired {
                out.push_str(&format!("  {line}\n"));
            }
        }
        if !self.not_repaired.is_empty() {
            out.push_str("Not repaired:\n");
            for line in &self.not_repaired {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out.push_str(&format!(
            "\nReclaimed {} in the store at {}.\n",
            crate::format::human_size_precise(self.reclaimed),
            self.root.display()
        ));
        (out, i32::from(!self.not_repaired.is_empty()))
    }

    fn clean_line(&self) -> String {
        format!(
            "No problems in the store at {} ({}, {}, {} checked).\n",
            self.root.display(),
            plural(self.images, "image"),
            plural(self.layers, "layer"),
            plural(self.containers, "container")
        )
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Checks the store (and with `repair`, repairs it). Run inside nook's user namespace: layer
/// and container files belong to subordinate ids.
pub fn run(store: &Store, opts: &Options) -> Result<Report> {
    let mut checker = Checker {
        store,
        opts,
        report: Report {
            root: store.root().to_path_buf(),
            ..Report::default()
        },
    };
    checker.run()?;
    Ok(checker.report)
}

struct Checker<'a> {
    store: &'a Store,
    opts: &'a Options,
    report: Report,
}

impl Checker<'_> {
    fn find(
        &mut self,
        group: Group,
        subject: impl Into<String>,
        detail: impl Into<String>,
        fix: Fix,
    ) {
        self.report.findings.push(Finding {
            group,
            subject: subject.into(),
            detail: detail.into(),
            fix,
        });
    }

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(self.store.root())
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn run(&mut self) -> Result<()> {
        let first = self.read_images()?;
        if let (Some(index), Some(verify)) = (&first, self.opts.verify) {
            self.verify_images(index, verify);
        }
        let _collecting = self.store.lock_collection()?;
        // Images may have been removed while they were verified: their findings go.
        let images = match first {
            Some(_) => self.store.images().ok(),
            None => None,
        };
        if let Some(index) = &images {
            self.report.findings.retain(|f| match &f.fix {
                Fix::RemoveImage(id, _) => index.get(id).is_some(),
                _ => true,
            });
            self.report.images = index.images.len();
        }
        self.check_containers(images.as_ref())?;
        self.find_leftovers()?;
        if let Some(index) = &images {
            self.find_unused(index)?;
        }
        if self.opts.repair {
            self.repair(images.is_some())?;
        }
        Ok(())
    }

    /// The image index, or None (and a finding) when it cannot be parsed.
    fn read_images(&mut self) -> Result<Option<ImageIndex>> {
        match self.store.images() {
            Ok(index) => Ok(Some(index)),
            Err(StoreError::Corrupt { path, message }) => {
                let subject = self.relative(&path);
                self.find(
                    Group::StoreFiles,
                    subject,
                    format!("cannot be read: {message}"),
                    Fix::Manual(
                        "restore it from a backup, or start afresh with `nook system reset`".into(),
                    ),
                );
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn verify_images(&mut self, index: &ImageIndex, verify: Verify) {
        let containers = self.store.containers().unwrap_or_default();
        let mut layers: HashMap<Digest, Option<String>> = HashMap::new();
        for image in &index.images {
            let mut problems = Vec::new();
            match self.store.read_blob(&image.id) {
                Ok(config) => match ConfigSummary::parse(&config) {
                    Ok(summary) if summary.diff_ids != image.layers => {
                        problems.push("its config lists other layers than its record".to_string())
                    }
                    Ok(_) => {}
                    Err(e) => problems.push(format!("its config cannot be parsed: {e}")),
                },
                Err(e) => problems.push(blob_problem("config", &e)),
            }
            if let Err(e) = self.store.read_blob(&image.manifest) {
                problems.push(blob_problem("manifest", &e));
            }
            for diff_id in &image.layers {
                let result = layers
                    .entry(diff_id.clone())
                    .or_insert_with(|| check_layer(self.store, diff_id, verify));
                if let Some(why) = result {
                    problems.push(format!("layer {}: {why}", diff_id.short()));
                }
            }
            if problems.is_empty() {
                continue;
            }
            let users: Vec<ContainerRef> = containers
                .iter()
                .filter(|c| c.image_id == image.id)
                .map(|c| self.container_ref(c))
                .collect();
            self.find(
                Group::DamagedImages,
                image_subject(&image.id, &image.names),
                problems.join("; "),
                Fix::RemoveImage(image.id.clone(), users),
            );
        }
        self.report.layers = layers.len();
    }

    fn container_ref(&self, c: &ContainerRecord) -> ContainerRef {
        let running = self
            .store
            .observed_container_state(&c.id)
            .is_ok_and(|s| s.status == Status::Running);
        ContainerRef {
            id: c.id.clone(),
            name: c.name.clone(),
            running,
        }
    }

    /// Records without directories, directories without records, and (when images are
    /// verified) containers whose image is gone. Read under the metadata lock, which
    /// `create_container` holds while it makes a directory and its record.
    fn check_containers(&mut self, images: Option<&ImageIndex>) -> Result<()> {
        let dir = self.store.root().join("containers");
        let (records, dirs) = {
            let _guard = self.store.lock_metadata()?;
            let records = match self.store.containers() {
                Ok(r) => r,
                Err(StoreError::Corrupt { path, message }) => {
                    let subject = self.relative(&path);
                    self.find(
                        Group::StoreFiles,
                        subject,
                        format!("cannot be read: {message}"),
                        Fix::Manual(
                            "restore it from a backup, or start afresh with `nook system reset`"
                                .into(),
                        ),
                    );
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            (records, list_dir(&dir)?)
        };
        self.report.containers = records.len();
        let ids: HashSet<&str> = records.iter().map(|c| c.id.as_str()).collect();
        for record in &records {
            let subject = format!("container {} ({})", record.name, &record.id[..12]);
            if !self.store.container_dir(&record.id).is_dir() {
                self.find(
                    Group::Containers,
                    subject,
                    format!(
                        "its directory {} is missing",
                        self.relative(&self.store.container_dir(&record.id))
                    ),
                    Fix::ForgetContainer(record.id.clone()),
                );
                continue;
            }
            if self.opts.verify.is_some()
                && let Some(index) = images
                && index.get(&record.image_id).is_none()
            {
                let c = self.container_ref(record);
                self.find(
                    Group::Containers,
                    subject,
                    format!(
                        "its image {} ({}) is no longer in the store",
                        record.image_id.short(),
                        record.image
                    ),
                    Fix::RemoveContainer(c),
                );
            }
        }
        for name in dirs {
            if name.starts_with('.') || ids.contains(name.as_str()) {
                continue;
            }
            let path = dir.join(&name);
            self.find(
                Group::Containers,
                self.relative(&path),
                "a container directory without a record",
                Fix::RemoveOrphanDir(path),
            );
        }
        Ok(())
    }

    fn find_leftovers(&mut self) -> Result<()> {
        let root = self.store.root().to_path_buf();
        let staging = root.join("layers/.staging");
        for name in list_dir(&staging)? {
            let path = staging.join(&name);
            if let Ok(diff_id) = Digest::from_hex(&name) {
                // Whoever extracts this layer holds its lock; without it, this is what a
                // killed extraction left (the next pull of the layer would replace it).
                let lock = self.store.layer_lock_path(&diff_id);
                if lock::try_exclusive(&lock)?.is_none() {
                    continue;
                }
                self.find(
                    Group::Leftovers,
                    self.relative(&path),
                    "a layer whose extraction was interrupted",
                    Fix::RemoveStaged(path, diff_id),
                );
                continue;
            }
            let detail = match staged_pid(&name) {
                Some(pid) if process_alive(Some(pid), None) => continue,
                Some(pid) => format!("a new layer being stored by process {pid}, which is gone"),
                None => "not a name nook stages layers under".to_string(),
            };
            self.find(
                Group::Leftovers,
                self.relative(&path),
                detail,
                Fix::Remove(path),
            );
        }
        for (dir, what) in [
            ("layers/.trash", "a removed layer"),
            ("containers/.trash", "a removed container"),
            ("volumes/.trash", "a removed volume"),
        ] {
            let dir = root.join(dir);
            for name in list_dir(&dir)? {
                let pid = owner_pid(&name);
                if pid.is_some_and(|p| process_alive(Some(p), None)) {
                    // Its remover is deleting it right now.
                    continue;
                }
                let path = dir.join(&name);
                self.find(
                    Group::Leftovers,
                    self.relative(&path),
                    format!("{what} not yet deleted"),
                    Fix::Remove(path),
                );
            }
        }
        let tmp = root.join("tmp");
        for name in list_dir(&tmp)? {
            let path = tmp.join(&name);
            let detail = match owner_pid(&name) {
                Some(pid) if process_alive(Some(pid), None) => continue,
                Some(pid) => format!("a file being written by process {pid}, which is gone"),
                None if modified_within(&path, std::time::Duration::from_secs(3600)) => {
                    // A name nook does not make: someone's, and recent; leave it be.
                    continue;
                }
                None => "an unfinished file".to_string(),
            };
            self.find(
                Group::Leftovers,
                self.relative(&path),
                detail,
                Fix::Remove(path),
            );
        }
        Ok(())
    }

    fn find_unused(&mut self, index: &ImageIndex) -> Result<()> {
        let used_layers: HashSet<&Digest> = index.images.iter().flat_map(|i| &i.layers).collect();
        let layers_dir = self.store.root().join("layers");
        let mut seen = 0;
        for name in list_dir(&layers_dir)? {
            if name.starts_with('.') {
                continue;
            }
            seen += 1;
            let path = layers_dir.join(&name);
            match Digest::from_hex(&name) {
                Ok(d) if used_layers.contains(&d) => {}
                Ok(d) => {
                    let size = self.store.layer_info(&d).map(|i| i.size).ok();
                    let detail = match size {
                        Some(s) => format!(
                            "a layer no image uses ({})",
                            crate::format::human_size_precise(s)
                        ),
                        None => "an incomplete layer no image uses".to_string(),
                    };
                    self.find(
                        Group::Unused,
                        self.relative(&path),
                        detail,
                        Fix::RemoveLayer(d),
                    );
                }
                Err(_) => self.find(
                    Group::Unused,
                    self.relative(&path),
                    "not a layer (its name is no diff id)",
                    Fix::Remove(path),
                ),
            }
        }
        self.report.layers = self.report.layers.max(seen);
        let used_blobs = blobs_in_use(index);
        let blobs_dir = self.store.root().join("blobs/sha256");
        for name in list_dir(&blobs_dir)? {
            let path = blobs_dir.join(&name);
            match Digest::from_hex(&name) {
                Ok(d) if used_blobs.contains(&d) => {}
                Ok(d) => self.find(
                    Group::Unused,
                    self.relative(&path),
                    "a blob no image uses",
                    Fix::RemoveBlob(d),
                ),
                Err(_) => self.find(
                    Group::Unused,
                    self.relative(&path),
                    "not a blob (its name is no digest)",
                    Fix::Remove(path),
                ),
            }
        }
        Ok(())
    }

    fn repair(&mut self, index_readable: bool) -> Result<()> {
        let findings = self.report.findings.clone();
        let force = self.opts.force;
        for f in &findings {
            let what = format!("{}: {}", f.subject, f.detail);
            if matches!(f.fix, Fix::RemoveLayer(_) | Fix::RemoveBlob(_)) {
                continue; // below, once images are gone
            }
            if let Err(why) = f.fix.remedy(force) {
                self.report.not_repaired.push(format!("{what}: {why}"));
                continue;
            }
            match self.apply(&f.fix) {
                Ok(Applied::Done(line)) => self.report.repaired.push(line),
                Ok(Applied::Skipped) => {}
                Ok(Applied::Refused(why)) => {
                    self.report.not_repaired.push(format!("{what}: {why}"))
                }
                Err(e) => self
                    .report
                    .not_repaired
                    .push(format!("{what}: {}", error_chain(&e))),
            }
        }
        if index_readable {
            self.remove_unused(&findings)?;
        }
        // What this repair put in the trash goes now; what another live process put there is
        // that process's to delete.
        for dir in ["layers/.trash", "containers/.trash"] {
            let dir = self.store.root().join(dir);
            for name in list_dir(&dir)? {
                let pid = owner_pid(&name);
                if pid
                    .is_some_and(|p| p as u32 != std::process::id() && process_alive(Some(p), None))
                {
                    continue;
                }
                let path = dir.join(name);
                remove_tree(&path).map_err(io_err("remove", &path))?;
            }
        }
        Ok(())
    }

    /// Carries out one fix.
    fn apply(&mut self, fix: &Fix) -> Result<Applied> {
        let store = self.store;
        let removed = |checker: &Self, path: &Path| {
            Applied::Done(format!("removed {}", checker.relative(path)))
        };
        match fix {
            Fix::Remove(path) => {
                if !self.remove_path(path)? {
                    return Ok(Applied::Skipped);
                }
                Ok(removed(self, path))
            }
            Fix::RemoveStaged(path, diff_id) => {
                // An extraction of that layer may have started since: then it is its own.
                let Some(_lock) = lock::try_exclusive(&store.layer_lock_path(diff_id))? else {
                    return Ok(Applied::Skipped);
                };
                if !self.remove_path(path)? {
                    return Ok(Applied::Skipped);
                }
                Ok(removed(self, path))
            }
            Fix::RemoveOrphanDir(path) => {
                let trash = store.root().join("containers/.trash");
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("dir");
                let target = trash.join(format!(
                    "{name}.{}.{}",
                    std::process::id(),
                    super::unique_suffix()
                ));
                {
                    let _guard = store.lock_metadata()?;
                    if store.containers()?.iter().any(|c| c.id == name) {
                        return Ok(Applied::Refused(
                            "a container with this ID exists now".into(),
                        ));
                    }
                    if !path.exists() {
                        return Ok(Applied::Skipped);
                    }
                    fs::create_dir_all(&trash).map_err(io_err("create directory", &trash))?;
                    fs::rename(path, &target).map_err(io_err("move to the trash", path))?;
                }
                self.report.reclaimed += dir_size(&target);
                remove_tree(&target).map_err(io_err("remove", &target))?;
                Ok(removed(self, path))
            }
            Fix::ForgetContainer(id) => {
                store.remove_container(id)?;
                Ok(Applied::Done(format!(
                    "removed the record of container {}",
                    &id[..12.min(id.len())]
                )))
            }
            Fix::RemoveContainer(c) => self.remove_stopped_container(c),
            Fix::RemoveImage(id, users) => {
                let mut lines = Vec::new();
                for c in users {
                    match self.remove_stopped_container(c)? {
                        Applied::Done(line) => lines.push(line),
                        Applied::Skipped => {}
                        refused @ Applied::Refused(_) => return Ok(refused),
                    }
                }
                match store.remove_image_if(id, Condition::Unused)? {
                    Removal::Removed(removed) => {
                        self.report.reclaimed += removed.reclaimed;
                        lines.push(format!(
                            "removed the damaged {}",
                            image_subject(id, &removed.record.names)
                        ));
                    }
                    Removal::InUse(names) => {
                        return Ok(Applied::Refused(format!(
                            "container {} uses it now",
                            names.join(", ")
                        )));
                    }
                    Removal::Gone | Removal::Named => {}
                }
                if lines.is_empty() {
                    return Ok(Applied::Skipped);
                }
                Ok(Applied::Done(lines.join("; ")))
            }
            Fix::RemoveLayer(_) | Fix::RemoveBlob(_) | Fix::Manual(_) => Ok(Applied::Skipped),
        }
    }

    /// Removes a container unless it is running now.
    fn remove_stopped_container(&mut self, c: &ContainerRef) -> Result<Applied> {
        let state = match self.store.observed_container_state(&c.id) {
            Ok(s) => Some(s),
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if state.is_some_and(|s| s.status == Status::Running) {
            return Ok(Applied::Refused(format!(
                "container {} is running: stop it first",
                c.name
            )));
        }
        self.report.reclaimed += dir_size(&self.store.container_dir(&c.id));
        self.store.remove_container(&c.id)?;
        Ok(Applied::Done(format!(
            "removed container {} ({})",
            c.name,
            &c.id[..12.min(c.id.len())]
        )))
    }

    /// Deletes a file or directory tree; false when it was gone already.
    fn remove_path(&mut self, path: &Path) -> Result<bool> {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("look at", path)(e)),
        };
        if meta.is_dir() {
            self.report.reclaimed += dir_size(path);
            remove_tree(path).map_err(io_err("remove", path))?;
        } else {
            self.report.reclaimed += meta.len();
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err("remove", path)(e));
                }
                _ => {}
            }
        }
        Ok(true)
    }

    /// Removes every layer and blob no image uses, decided under the metadata lock once the
    /// damaged images are gone: the layers they alone used go too.
    fn remove_unused(&mut self, findings: &[Finding]) -> Result<()> {
        let store = self.store;
        let reported: HashSet<&Digest> = findings
            .iter()
            .filter_map(|f| match &f.fix {
                Fix::RemoveLayer(d) | Fix::RemoveBlob(d) => Some(d),
                _ => None,
            })
            .collect();
        let layers_dir = store.root().join("layers");
        let blobs_dir = store.root().join("blobs/sha256");
        let (layers, blobs) = {
            let _guard = store.lock_metadata()?;
            let index = store.images()?;
            let used: HashSet<&Digest> = index.images.iter().flat_map(|i| &i.layers).collect();
            let mut layers = Vec::new();
            for name in list_dir(&layers_dir)? {
                if let Ok(d) = Digest::from_hex(&name)
                    && !used.contains(&d)
                {
                    let size = dir_size(&layers_dir.join(&name));
                    store.trash_layer(&d)?;
                    layers.push((d, size));
                }
            }
            let used = blobs_in_use(&index);
            let mut blobs = Vec::new();
            for name in list_dir(&blobs_dir)? {
                if let Ok(d) = Digest::from_hex(&name)
                    && !used.contains(&d)
                {
                    let size = fs::metadata(blobs_dir.join(&name)).map_or(0, |m| m.len());
                    store.remove_blob(&d)?;
                    blobs.push((d, size));
                }
            }
            (layers, blobs)
        };
        for (d, size) in layers {
            self.report.reclaimed += size;
            let path = self.relative(&layers_dir.join(d.hex()));
            self.report.repaired.push(if reported.contains(&d) {
                format!("removed {path}")
            } else {
                format!("removed {path}, which only removed images used")
            });
        }
        for (d, size) in blobs {
            self.report.reclaimed += size;
            let path = self.relative(&blobs_dir.join(d.hex()));
            self.report.repaired.push(if reported.contains(&d) {
                format!("removed {path}")
            } else {
                format!("removed {path}, which only removed images used")
            });
        }
        // A reported layer or blob that is not gone now is used again (impossible while the
        // collection lock is held, but said rather than assumed).
        for f in findings {
            if let Fix::RemoveLayer(d) | Fix::RemoveBlob(d) = &f.fix {
                let gone = match &f.fix {
                    Fix::RemoveLayer(_) => !layers_dir.join(d.hex()).exists(),
                    _ => !blobs_dir.join(d.hex()).exists(),
                };
                if !gone {
                    self.report
                        .not_repaired
                        .push(format!("{}: an image uses it now", f.subject));
                }
            }
        }
        Ok(())
    }
}

/// What carrying out a fix came to.
enum Applied {
    Done(String),
    /// Nothing was left to do (it went meanwhile, or is in use now).
    Skipped,
    Refused(String),
}

/// `3f57d9401f8d (busybox:latest, busybox:1)`, or the ID alone for an untagged image.
fn image_subject(id: &Digest, names: &[String]) -> String {
    if names.is_empty() {
        return format!("image {}", id.short());
    }
    // As Docker shows them: `busybox:latest` for docker.io/library/busybox:latest.
    let names: Vec<String> = names
        .iter()
        .map(|n| match crate::image::reference::Reference::parse(n) {
            Ok(r) => format!("{}:{}", r.familiar_name(), r.tag_or_latest()),
            Err(_) => n.clone(),
        })
        .collect();
    format!("image {} ({})", id.short(), names.join(", "))
}

fn blob_problem(which: &str, err: &StoreError) -> String {
    match err {
        StoreError::BlobMissing { .. } => format!("its {which} blob is missing"),
        StoreError::BlobDamaged { actual, .. } => {
            format!("its {which} blob is damaged (its content hashes to {actual})")
        }
        other => format!("its {which} blob cannot be read: {}", error_chain(other)),
    }
}

/// Why layer `diff_id` is not whole, or None when it is.
fn check_layer(store: &Store, diff_id: &Digest, verify: Verify) -> Option<String> {
    let dir = store.root().join("layers").join(diff_id.hex());
    if !dir.is_dir() {
        return Some("it is missing".into());
    }
    let info = match store.layer_info(diff_id) {
        Ok(info) => info,
        Err(e) => return Some(format!("its record is unusable: {}", error_chain(&e))),
    };
    if &info.diff_id != diff_id {
        return Some(format!("its record names another layer, {}", info.diff_id));
    }
    let diff = dir.join("diff");
    if !diff.is_dir() {
        return Some("its diff/ directory is missing".into());
    }
    let record = dir.join(split::FILE_NAME);
    if !record.exists() {
        // Layers stored before nook kept tar-splits have none (and say so by having no
        // tar_size); they cannot be verified, but are not damaged.
        return info
            .tar_size
            .map(|_| format!("its {} is missing", split::FILE_NAME));
    }
    match verify {
        Verify::Quick => match split::check_sizes(&diff, &record) {
            Ok(why) => why,
            Err(e) => Some(error_chain(&e)),
        },
        Verify::Full => {
            let mut tar = match store.layer_tar(diff_id) {
                Ok(t) => t,
                Err(e) => return Some(error_chain(&e)),
            };
            match io::copy(&mut tar, &mut io::sink()) {
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            }
        }
    }
}

/// An error and its causes on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// The names in a directory, sorted; a missing directory is empty.
fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read directory", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("read directory", dir))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// The process that stages a layer as `new-PID-N` (commit, import).
fn staged_pid(name: &str) -> Option<i32> {
    let (pid, n) = name.strip_prefix("new-")?.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// The process a trash entry or `tmp/` file belongs to: `NAME.PID.N` (what `write_atomic`,
/// `trash_layer`, `remove_container` and `load` make) or `NAME-PID` (the storage-driver probe).
fn owner_pid(name: &str) -> Option<i32> {
    let mut parts = name.rsplitn(3, '.');
    if let (Some(n), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next())
        && n.parse::<u64>().is_ok()
        && let Ok(pid) = pid.parse()
    {
        return Some(pid);
    }
    name.rsplit_once('-')?.1.parse().ok()
}

fn modified_within(path: &Path, age: std::time::Duration) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|elapsed| elapsed < age)
}

#[cfg(test)]
mod tests;
