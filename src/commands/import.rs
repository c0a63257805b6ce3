//! `nook import [-c INSTRUCTION]… [-m MESSAGE] FILE|- [REPOSITORY[:TAG]]`: a tar of a root
//! file system (plain, gzip or zstd) becomes a single-layer image for this machine's
//! platform, as `docker import` makes one.
//!
//! The stream is decompressed as it is read and goes straight into `Store::import_layer`
//! (staged, hashed into its diff id, renamed into place when whole), so nothing is spooled and
//! an archive that turns out bad halfway leaves nothing behind; the image record comes last.
//! The first block is checked to be a tar header before anything is stored, so that a file
//! that is not a tar is called that rather than reported through the tar reader's complaint.

use std::io::{BufReader, IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::Ctx;
use crate::cli::ImportArgs;
use crate::image::archive::read::{decompressed, is_tar_header};
use crate::image::config::apply_change;
use crate::image::digest::Digest;
use crate::image::manifest::PlatformSpec;
use crate::runtime::userns;
use crate::store::Store;

pub fn run(args: ImportArgs, ctx: &Ctx) -> Result<i32> {
    // Everything that can be refused without reading the archive, before anything is read.
    if args.source.contains("://") {
        bail!(
            "cannot import `{}`: nook does not download archives; fetch it first (curl -fLo rootfs.tar URL) and import the file",
            args.source
        );
    }
    let name = args
        .repository
        .as_deref()
        .map(|r| super::new_image_name(r, "import to"))
        .transpose()?;
    let config_changes = {
        let mut config = json!({});
        for change in &args.change {
            apply_change(&mut config, change)?;
        }
        config
    };
    let stdin = args.source == "-";
    if stdin && std::io::stdin().is_terminal() {
        bail!("no archive on standard input: give a FILE or redirect it (nook import - < FILE)");
    }
    if !stdin && Path::new(&args.source).is_dir() {
        bail!(
            "`{}` is a directory; nook imports a tar archive of one (tar -C DIR -c . | nook import -)",
            args.source
        );
    }
    // Before any thread exists: the layer is extracted as root of the user namespace, so its
    // files keep the owners the archive gives them.
    let ns = userns::enter(&ctx.paths.runtime, &|m| crate::error::eprint_line(m))?;
    let store = ctx.store()?;
    // The new layer is stored before the image record names it: the store's clean-up must
    // wait (system check --repair, system prune).
    let _adding = store.hold_additions()?;
    let input: Box<dyn Read> = if stdin {
        use std::os::fd::AsFd;
        let fd = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot use standard input")?;
        Box::new(std::fs::File::from(fd))
    } else {
        Box::new(
            std::fs::File::open(&args.source)
                .with_context(|| format!("cannot open `{}`", args.source))?,
        )
    };
    let shown = if stdin {
        "standard input".to_string()
    } else {
        format!("`{}`", args.source)
    };
    let what = || format!("cannot import {shown}");
    let mut stream =
        first_block_checked(BufReader::with_capacity(256 * 1024, input)).with_context(what)?;
    let layer = store
        .import_layer(&mut stream, None, ns)
        .with_context(what)?;
    for warning in &layer.warnings {
        crate::error::warn(&warning.to_string());
    }
    let config = import_config(&layer.diff_id, &args, config_changes);
    let names: Vec<String> = name.into_iter().collect();
    let image = match store.add_local_image(&config, &names) {
        Ok(image) => image,
        Err(e) => {
            roll_back(&store, &layer.diff_id);
            return Err(e.context(what()));
        }
    };
    println!("{}", image.id);
    Ok(0)
}

/// The decompressed archive, once its first block is known to start a tar (or to be the end
/// of an empty one).
fn first_block_checked<'a>(input: impl Read + 'a) -> Result<impl Read + 'a> {
    let Some(mut stream) = decompressed(Box::new(input))? else {
        bail!("the input is empty; nook imports a tar archive");
    };
    let mut block = [0u8; 512];
    let mut filled = 0;
    while filled < block.len() {
        match stream.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("cannot read the archive"),
        }
    }
    if filled < block.len() {
        bail!("the input is not a tar archive (it is shorter than one tar block)");
    }
    if block.iter().any(|&b| b != 0) && !is_tar_header(&block) {
        bail!(
            "the input is not a tar archive (its first block is not a tar header); nook imports tar archives, uncompressed or compressed with gzip or zstd"
        );
    }
    Ok(EndChecked {
        inner: std::io::Cursor::new(block).chain(stream),
        trailing_zeros: 0,
    })
}

/// Two zero blocks: how every tar writer ends an archive.
const END_OF_ARCHIVE: u64 = 1024;

/// Passes the archive through, and at its end fails unless it ended with tar's end-of-archive
/// blocks. The tar reader stops quietly at an entry boundary, so a plain tar cut there would
/// read as a smaller complete one; and an `export` killed while writing leaves exactly that
/// (it writes in whole blocks).
struct EndChecked<R> {
    inner: R,
    /// How many zero bytes the stream has ended with so far.
    trailing_zeros: u64,
}

impl<R: Read> Read for EndChecked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.trailing_zeros < END_OF_ARCHIVE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the archive is truncated: it ends without tar's end-of-archive blocks",
            ));
        }
        match buf[..n].iter().rposition(|&b| b != 0) {
            Some(last) => self.trailing_zeros = (n - last - 1) as u64,
            None => self.trailing_zeros += n as u64,
        }
        Ok(n)
    }
}

/// A config as `docker import` writes one: this machine's platform, the `-c` instructions,
/// the one layer and a history entry.
fn import_config(diff_id: &Digest, args: &ImportArgs, config: Value) -> Vec<u8> {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    let platform = PlatformSpec::host();
    let comment = args
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {}", args.source));
    let mut image = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "created": now,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{
            "created": now,
            "created_by": format!("import {}", args.source),
            "comment": comment,
        }],
    });
    if let Some(variant) = platform.variant {
        image["variant"] = json!(variant);
    }
    serde_json::to_vec(&image).expect("a JSON value serialises")
}

/// Removes the imported layer again if no image uses it. Best effort: the import has failed
/// already, and its error is the one to report.
fn roll_back(store: &Store, diff_id: &Digest) {
    let trashed = store.update_images(|index| -> Result<()> {
        for layer in index.unused_layers(std::slice::from_ref(diff_id)) {
            store.trash_layer(layer)?;
        }
        Ok(())
    });
    if let Err(e) = trashed.and_then(|()| Ok(store.purge_trash()?)) {
        crate::error::warn(&format!(
            "cannot remove the layer of the failed import: {e:#}"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(name: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(1);
        b.append_data(&mut h, name, &b"x"[..]).unwrap();
        b.into_inner().unwrap()
    }

    fn read_all(input: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        first_block_checked(input)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn tars_pass_whole_and_compressed_ones_decompressed() {
        let tar = tar_of("f");
        assert_eq!(read_all(&tar).unwrap(), tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(read_all(&gz).unwrap(), tar);
        let zst = zstd::encode_all(tar.as_slice(), 1).unwrap();
        assert_eq!(read_all(&zst).unwrap(), tar);
        // An empty archive is only its end blocks.
        assert_eq!(read_all(&[0; 1024]).unwrap(), [0; 1024]);
        // Cut at an entry boundary: the end blocks are missing.
        let two = [tar_of("a"), tar_of("b")].concat();
        let err = read_all(&two[..1024]).unwrap_err();
        assert!(format!("{err:#}").contains("truncated"), "{err:#}");
        let err = read_all(&[0; 512]).unwrap_err();
        assert!(format!("{err:#}").contains("truncated"), "{err:#}");
        // Cut short: the gzip stream says so (when read to its end).
        let err = read_all(&gz[..gz.len() - 10]).unwrap_err();
        assert!(format!("{err:#}").contains("truncated"), "{err:#}");
    }

    #[test]
    fn what_is_not_a_tar_is_called_that() {
        for input in [&b"hello\n"[..], &[b'x'; 2000][..]] {
            let err = read_all(input).unwrap_err();
            assert!(format!("{err:#}").contains("not a tar archive"), "{err:#}");
        }
        let err = read_all(b"").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn the_config_has_the_platform_changes_layer_and_history() {
        let args = ImportArgs {
            change: vec![],
            message: Some("from tests".into()),
            source: "-".into(),
            repository: None,
        };
        let mut inner = json!({});
        apply_change(&mut inner, r#"CMD ["cat", "/x"]"#).unwrap();
        let diff_id = Digest::of(b"layer");
        let config: Value = serde_json::from_slice(&import_config(&diff_id, &args, inner)).unwrap();
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], PlatformSpec::host().architecture);
        assert_eq!(config["config"]["Cmd"], json!(["cat", "/x"]));
        assert_eq!(config["rootfs"]["diff_ids"], json!([diff_id.to_string()]));
        assert_eq!(config["history"][0]["created_by"], "import -");
        assert_eq!(config["history"][0]["comment"], "from tests");
        let summary =
            crate::image::config::ConfigSummary::parse(&import_config(&diff_id, &args, json!({})))
                .unwrap();
        assert_eq!(summary.diff_ids, [diff_id]);
        assert!(summary.created.is_some());
    }
}
