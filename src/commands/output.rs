//! Output files named with `-o` (`save`, `export`): written under a temporary name (or none)
//! beside the target and renamed when complete, so the name asked for never holds half an
//! archive, and checked before any work so a typo costs nothing.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Refuses a target that cannot become a file: a directory, or one in a directory that does
/// not exist. Called before anything is read, so the error comes at once.
pub fn check_file_target(path: &Path) -> Result<()> {
    if path.is_dir() {
        bail!(
            "`{}` is a directory; -o names the archive file to write",
            path.display()
        );
    }
    let parent = parent_of(path);
    match fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!(
            "cannot write `{}`: `{}` is not a directory",
            path.display(),
            parent.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "cannot write `{}`: the directory `{}` does not exist",
            path.display(),
            parent.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot look up `{}`", parent.display())),
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `.NAME.nook-PID` beside `path`: same directory, so the final rename is atomic.
pub fn temporary_beside(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("`{}` names no file", path.display()))?;
    Ok(parent_of(path).join(format!(
        ".{}.nook-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Removes what it guards unless disarmed.
pub struct Cleanup {
    pub path: Option<PathBuf>,
    pub dir: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = if self.dir {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            };
        }
    }
}

/// Makes file `path` from what `write` puts in the file it is given (and hands back when
/// done, flushed): nothing appears under `path` unless `write` succeeds, and an old file
/// there is replaced in one rename.
pub fn write_file_atomically(
    path: &Path,
    write: impl FnOnce(fs::File) -> Result<fs::File>,
) -> Result<()> {
    let tmp = temporary_beside(path)?;
    let dir = parent_of(path);
    // An unnamed file in the target's directory, where the file system has them: a command
    // killed while writing (Ctrl-C, the long part) then leaves nothing at all behind.
    let (file, named) = match unnamed_file(dir) {
        Some(file) => (file, false),
        None => (
            fs::File::create(&tmp).with_context(|| format!("cannot create `{}`", tmp.display()))?,
            true,
        ),
    };
    let mut cleanup = Cleanup {
        path: named.then(|| tmp.clone()),
        dir: false,
    };
    let file = write(file)?;
    file.sync_all()
        .with_context(|| format!("cannot flush `{}`", tmp.display()))?;
    if !named {
        // linkat cannot replace a file, so the archive gets the temporary name first and is
        // renamed over any old one.
        use std::os::fd::AsRawFd;
        let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        nix::unistd::linkat(
            None,
            Path::new(&proc_path),
            None,
            tmp.as_path(),
            nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
        )
        .with_context(|| format!("cannot create `{}`", tmp.display()))?;
        cleanup.path = Some(tmp.clone());
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot rename `{}`", tmp.display()))?;
    cleanup.path = None;
    Ok(())
}

/// An `O_TMPFILE` file in `dir`, or `None` where the file system (or /proc) does not
/// offer them; the caller then uses a named temporary file.
fn unnamed_file(dir: &Path) -> Option<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if !Path::new("/proc/self/fd").is_dir() {
        return None;
    }
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o666)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.tar");
        let err = write_file_atomically(&target, |mut file| {
            use std::io::Write;
            file.write_all(b"half")?;
            bail!("stopped")
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "stopped");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        write_file_atomically(&target, |mut file| {
            use std::io::Write;
            file.write_all(b"whole")?;
            Ok(file)
        })
        .unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"whole");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn targets_that_cannot_be_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_file_target(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        let err = check_file_target(&dir.path().join("none/out.tar")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        fs::write(dir.path().join("file"), b"").unwrap();
        let err = check_file_target(&dir.path().join("file/out.tar")).unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
        check_file_target(&dir.path().join("out.tar")).unwrap();
        check_file_target(Path::new("relative.tar")).unwrap();
    }
}
