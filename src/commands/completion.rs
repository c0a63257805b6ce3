//! `nook completion SHELL`, and answering the shell when it asks for completions.
//!
//! The script `nook completion SHELL` prints is clap_complete's dynamic registration: on each
//! TAB the shell runs `NOOK_COMPLETE=SHELL nook -- WORDS…`, and nook answers from its own
//! command tree. We chose this over static scripts plus a hidden `__complete` helper because
//! one engine then serves bash, zsh and fish alike, and subcommands, flags, enum values and the
//! names of containers and images all come from the binary that will run them, so a script
//! written by an older nook never offers stale flags.
//!
//! Names come from the store's index files, read without a lock (they are only replaced whole
//! by rename) and without entering a user namespace; any failure completes nothing.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use anyhow::Result;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::EnvCompleter;

use crate::cli::{CompletionArgs, Shell};
use crate::store::Store;

/// Set by the registered script when the shell asks for completions; a nook-specific name, so
/// that a `COMPLETE` variable meant for another program cannot hijack a normal run.
pub const COMPLETE_VAR: &str = "NOOK_COMPLETE";

/// Answers the shell and exits when [`COMPLETE_VAR`] is set; returns otherwise.
pub fn complete_if_asked() {
    clap_complete::CompleteEnv::with_factory(command)
        .var(COMPLETE_VAR)
        .complete();
}

pub fn run(args: CompletionArgs) -> Result<i32> {
    let cmd = command();
    let completer = completer_path();
    let mut out = Vec::new();
    let shell: &dyn EnvCompleter = match args.shell {
        Shell::Bash => &clap_complete::env::Bash,
        Shell::Zsh => &clap_complete::env::Zsh,
        Shell::Fish => &clap_complete::env::Fish,
    };
    shell.write_registration(COMPLETE_VAR, cmd.get_name(), "nook", &completer, &mut out)?;
    match args.shell {
        Shell::Bash => out.extend_from_slice(BASH_COLONS.as_bytes()),
        Shell::Zsh => out.extend_from_slice(ZSH_AUTOLOADED.as_bytes()),
        Shell::Fish => {}
    }
    super::print_out(&String::from_utf8_lossy(&out))?;
    Ok(0)
}

/// Bash splits the word being completed at `:` (it is in COMP_WORDBREAKS), and image names
/// hold one (`busybox:latest`, `host:5000/team/app:1`). This joins the pieces before the
/// cursor back into one word for nook, and hands readline back only what follows the last
/// `:`, the part it replaces (bash-completion's `__ltrim_colon_completions`, which not every
/// machine has).
const BASH_COLONS: &str = r#"
_nook_complete() {
    local i=$COMP_CWORD cur=${COMP_WORDS[COMP_CWORD]}
    while (( i > 1 )) && [[ $cur == :* || ${COMP_WORDS[i-1]} == *: ]]; do
        cur=${COMP_WORDS[i-1]}$cur
        i=$(( i - 1 ))
    done
    if (( i == COMP_CWORD )) || [[ $COMP_WORDBREAKS != *:* ]]; then
        _clap_complete_nook "$@"
        return
    fi
    local COMP_WORDS=("${COMP_WORDS[@]:0:i}" "$cur") COMP_CWORD=$i
    _clap_complete_nook "$1" "$cur" "${COMP_WORDS[i-1]}"
    local keep=${cur%"${cur##*:}"} n
    for n in "${!COMPREPLY[@]}"; do
        COMPREPLY[n]=${COMPREPLY[n]#"$keep"}
    done
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -o nospace -o bashdefault -o nosort -F _nook_complete nook
else
    complete -o nospace -o bashdefault -F _nook_complete nook
fi
"#;

/// The script's `#compdef nook` line lets it be installed as `_nook` in a directory of
/// `$fpath`, zsh's usual place for completions. compinit then autoloads the file as the
/// function `_nook` on the first TAB, and running it only defines the completer and re-registers
/// it: that first TAB would complete nothing. So when run as `_nook`, it completes right away
/// (as cobra's zsh scripts do). Sourced, `funcstack[1]` is the file and this does nothing.
const ZSH_AUTOLOADED: &str = r#"
if [[ "${funcstack[1]}" == _nook ]]; then
    _clap_dynamic_completer_nook "$@"
fi
"#;

/// How the script calls nook back: as it was called now (`nook` from PATH stays `nook`, so an
/// upgrade is picked up), with a relative path made absolute.
fn completer_path() -> String {
    let argv0 = PathBuf::from(std::env::args_os().next().unwrap_or_else(|| "nook".into()));
    let path = if argv0.components().count() > 1 && argv0.is_relative() {
        std::env::current_dir()
            .map(|d| d.join(&argv0))
            .unwrap_or(argv0)
    } else {
        argv0
    };
    path.to_string_lossy().into_owned()
}

/// What a positional argument names, for completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completes {
    Containers,
    Images,
    /// `inspect`: a container or an image.
    Both,
}

/// Which local objects `arg` of the command `command` names, if any; `parent` is the command
/// above it (`container` for `nook container inspect`, `nook` for `nook inspect`).
pub fn completes(parent: &str, command: &str, arg: &clap::Arg) -> Option<Completes> {
    if !arg.is_positional() {
        return None;
    }
    match (parent, command, arg.get_id().as_str()) {
        (_, _, "container" | "containers") => Some(Completes::Containers),
        // pull's image is one the registry has, not a local one.
        (_, "pull", _) => None,
        // The management forms inspect one kind only.
        ("container", "inspect", _) => Some(Completes::Containers),
        ("image", "inspect", _) => Some(Completes::Images),
        (_, "inspect", "image" | "images") => Some(Completes::Both),
        (_, _, "image" | "images") | (_, "tag", "source") => Some(Completes::Images),
        _ => None,
    }
}

/// The command tree, with container and image names completed where arguments take them.
pub fn command() -> clap::Command {
    with_completers(crate::cli::command(), "")
}

fn with_completers(cmd: clap::Command, parent: &str) -> clap::Command {
    let name = cmd.get_name().to_string();
    // mut_args keeps the arguments in place (mut_arg moves one last, reordering positionals).
    let mut cmd = cmd.mut_args(|arg| match completes(parent, &name, &arg) {
        Some(kind) => arg.add(ArgValueCompleter::new(move |current: &OsStr| {
            candidates(kind, current)
        })),
        None => arg,
    });
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for sub in subcommands {
        cmd = cmd.mut_subcommand(sub, |sub| with_completers(sub, &name));
    }
    cmd
}

fn candidates(kind: Completes, current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(current) = current.to_str() else {
        return Vec::new();
    };
    let words: Vec<OsString> = std::env::args_os().skip(1).collect();
    let kind = match (kind, inspect_type(&words).as_deref()) {
        (Completes::Both, Some("container")) => Completes::Containers,
        (Completes::Both, Some("image")) => Completes::Images,
        _ => kind,
    };
    let Some(root) = store_root(words.into_iter()) else {
        return Vec::new();
    };
    let store = Store::read_only(&root);
    let mut out = Vec::new();
    if matches!(kind, Completes::Containers | Completes::Both) {
        out.extend(container_candidates(&store, current));
    }
    if matches!(kind, Completes::Images | Completes::Both) {
        out.extend(image_candidates(&store, current));
    }
    out
}

/// Names first; IDs (12 characters, or whole once more is typed) only once the word typed so
/// far is the start of one, so a bare TAB lists names as Docker's completion does.
fn id_candidate(id: &str, current: &str) -> Option<String> {
    if current.is_empty() || !id.starts_with(current) {
        return None;
    }
    Some(if current.len() <= 12 { &id[..12] } else { id }.to_string())
}

fn container_candidates(store: &Store, current: &str) -> Vec<CompletionCandidate> {
    let Ok(mut records) = store.containers() else {
        return Vec::new();
    };
    records.sort_by(|a, b| a.name.cmp(&b.name));
    let names = records
        .iter()
        .filter(|r| r.name.starts_with(current))
        .map(|r| {
            CompletionCandidate::new(&r.name).help(Some(format!("container of {}", r.image).into()))
        });
    let ids = records.iter().filter_map(|r| {
        id_candidate(&r.id, current).map(|id| {
            CompletionCandidate::new(id).help(Some(format!("container {}", r.name).into()))
        })
    });
    names.chain(ids).collect()
}

fn image_candidates(store: &Store, current: &str) -> Vec<CompletionCandidate> {
    let Ok(index) = store.images() else {
        return Vec::new();
    };
    let mut values: Vec<(String, String)> = Vec::new();
    for image in &index.images {
        let short = image.id.short().to_string();
        for name in &image.names {
            let (repo, tag) = super::familiar_repo_tag(name);
            let familiar = format!("{repo}:{tag}");
            // Someone typing the full name (docker.io/…) gets it completed as typed.
            let shown = if familiar.starts_with(current) {
                familiar
            } else {
                name.clone()
            };
            if shown.starts_with(current) {
                values.push((shown, format!("image {short}")));
            }
        }
        if let Some(id) = id_candidate(image.id.hex(), current) {
            let label = image
                .names
                .first()
                .map(|n| super::familiar_repo_tag(n))
                .map(|(r, t)| format!("image {r}:{t}"))
                .unwrap_or_else(|| "untagged image".into());
            values.push((id, label));
        }
    }
    values.sort();
    values.dedup_by(|a, b| a.0 == b.0);
    values
        .into_iter()
        .map(|(v, help)| CompletionCandidate::new(v).help(Some(help.into())))
        .collect()
}

/// `inspect --type KIND`'s KIND on the command line being completed, if given.
fn inspect_type(words: &[OsString]) -> Option<String> {
    let mut kind = None;
    for (i, word) in words.iter().enumerate() {
        let word = word.to_string_lossy();
        if word == "--type" {
            kind = words.get(i + 1).map(|w| w.to_string_lossy().into_owned());
        } else if let Some(value) = word.strip_prefix("--type=") {
            kind = Some(value.to_string());
        }
    }
    kind
}

/// The store the command line being completed will use: its `--root`, else NOOK_ROOT, else
/// the default. `args` are the completion request's (`-- nook WORDS…`).
fn store_root(args: impl Iterator<Item = OsString>) -> Option<PathBuf> {
    let home = crate::paths::Paths::home()?;
    let words: Vec<OsString> = args.collect();
    let mut root = None;
    for (i, word) in words.iter().enumerate() {
        let Some(word) = word.to_str() else { continue };
        if word == "--root" {
            root = words
                .get(i + 1)
                .map(|w| as_the_shell_passes(&w.to_string_lossy(), Some(&home)));
        } else if let Some(value) = word.strip_prefix("--root=") {
            root = Some(as_the_shell_passes(value, None));
        }
    }
    let root = root.or_else(|| {
        std::env::var_os(crate::paths::ENV_ROOT)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    Some(crate::paths::Paths::data_dir(root, &home))
}

/// A word of the command line as nook will get it when the command runs. bash and zsh hand
/// completion the words as typed, quotes and a leading `~` included (`--root ~/store`,
/// `--root '/my store'`); fish unquotes them but leaves the `~`. Only a `~` that starts a
/// word, outside quotes, is the home directory (`--root=~/x` is not expanded by the shell
/// either). A word that does not parse as one shell word (fish's, already unquoted) is taken
/// as it is.
fn as_the_shell_passes(word: &str, home: Option<&std::path::Path>) -> PathBuf {
    let unquoted = |w: &str| match shlex::split(w).as_deref() {
        Some([one]) => one.clone(),
        _ => w.to_string(),
    };
    match (home, word.strip_prefix('~')) {
        (Some(home), Some("")) => home.to_path_buf(),
        (Some(home), Some(rest)) if rest.starts_with('/') => home.join(unquoted(&rest[1..])),
        _ => PathBuf::from(unquoted(word)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument that takes a container or an image completes names; a new command
    /// whose argument is called otherwise is listed here when it should too.
    #[test]
    fn the_completing_tree_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn container_and_image_arguments_complete_names() {
        let mut found = std::collections::BTreeMap::new();
        let mut todo = vec![(String::new(), String::new(), command())];
        while let Some((path, parent, cmd)) = todo.pop() {
            let path = format!("{path} {}", cmd.get_name()).trim().to_string();
            for arg in cmd.get_arguments() {
                if arg.get::<ArgValueCompleter>().is_some() {
                    found.insert(
                        format!("{path} {}", arg.get_id()),
                        completes(&parent, cmd.get_name(), arg),
                    );
                }
            }
            let name = cmd.get_name().to_string();
            todo.extend(
                cmd.get_subcommands()
                    .map(|s| (path.clone(), name.clone(), s.clone())),
            );
        }
        use Completes::*;
        for (arg, kind) in [
            ("nook rm containers", Containers),
            ("nook start containers", Containers),
            ("nook stop containers", Containers),
            ("nook kill containers", Containers),
            ("nook restart containers", Containers),
            ("nook wait containers", Containers),
            ("nook logs container", Containers),
            ("nook exec container", Containers),
            ("nook attach container", Containers),
            ("nook port container", Containers),
            ("nook rename container", Containers),
            ("nook diff container", Containers),
            ("nook commit container", Containers),
            ("nook export container", Containers),
            ("nook container diff container", Containers),
            ("nook container export container", Containers),
            ("nook container rm containers", Containers),
            ("nook container inspect images", Containers),
            ("nook image inspect images", Images),
            ("nook image rm images", Images),
            ("nook inspect images", Both),
            ("nook rmi images", Images),
            ("nook tag source", Images),
            ("nook push image", Images),
            ("nook save images", Images),
            ("nook history image", Images),
            ("nook run image", Images),
            ("nook create image", Images),
        ] {
            assert_eq!(found.get(arg), Some(&Some(kind)), "{arg}: {found:?}");
        }
        assert!(!found.contains_key("nook pull image"));
        assert!(!found.contains_key("nook image pull image"));
        assert!(!found.contains_key("nook tag target"));
    }

    #[test]
    fn the_store_is_the_one_the_command_line_names() {
        let words = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>().into_iter();
        assert_eq!(
            store_root(words(&["--", "nook", "--root", "/s", "rm", ""])),
            Some(PathBuf::from("/s"))
        );
        assert_eq!(
            store_root(words(&["--", "nook", "rm", "--root=/t", "x"])),
            Some(PathBuf::from("/t"))
        );
    }

    #[test]
    fn the_store_path_is_unquoted_and_its_tilde_expanded() {
        let home = std::path::Path::new("/home/u");
        for (typed, meant) in [
            ("~/store", "/home/u/store"),
            ("~", "/home/u"),
            ("'/my store'", "/my store"),
            ("~/'a b'", "/home/u/a b"),
            ("\"~/a b\"", "~/a b"),
            ("/my\\ store", "/my store"),
            // fish has unquoted these already.
            ("/my store", "/my store"),
            ("/it's", "/it's"),
            ("/x/~", "/x/~"),
        ] {
            assert_eq!(
                as_the_shell_passes(typed, Some(home)),
                PathBuf::from(meant),
                "{typed}"
            );
        }
        assert_eq!(as_the_shell_passes("'~/x'", None), PathBuf::from("~/x"));
        assert_eq!(as_the_shell_passes("~/x", None), PathBuf::from("~/x"));
    }

    #[test]
    fn ids_complete_only_once_typed() {
        let id = "0123456789abcdef0123";
        assert_eq!(id_candidate(id, ""), None);
        assert_eq!(id_candidate(id, "01").as_deref(), Some("0123456789ab"));
        assert_eq!(id_candidate(id, "0123456789abc").as_deref(), Some(id));
        assert_eq!(id_candidate(id, "1"), None);
    }
}
