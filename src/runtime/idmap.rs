//! Subordinate id ranges (`/etc/subuid`, `/etc/subgid`) and the mappings built from them.

use std::fmt;

/// One line of an id map: `count` ids from `inside` map to `outside`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// A subordinate range granted to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRange {
    pub start: u32,
    pub count: u32,
}

/// The ranges of `/etc/subuid`-format `text` that belong to the user, who may be named by
/// login name or by numeric id, in file order.
pub fn parse_subid(text: &str, user: &str, id: u32) -> Vec<SubRange> {
    let id = id.to_string();
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let mut fields = line.split(':');
            let (owner, start, count) = (fields.next()?, fields.next()?, fields.next()?);
            if fields.next().is_some() || (owner != user && owner != id) {
                return None;
            }
            let range = SubRange {
                start: start.trim().parse().ok()?,
                count: count.trim().parse().ok()?,
            };
            (range.count > 0).then_some(range)
        })
        .collect()
}

/// The user's own id as 0, then every subordinate range from 1 upwards.
pub fn mappings(own: u32, ranges: &[SubRange]) -> Vec<IdMapping> {
    let mut maps = vec![IdMapping {
        inside: 0,
        outside: own,
        count: 1,
    }];
    let mut next = 1u32;
    for r in ranges {
        maps.push(IdMapping {
            inside: next,
            outside: r.start,
            count: r.count,
        });
        next = next.saturating_add(r.count);
    }
    maps
}

/// `--userns=keep-id`: the standard layout (`mappings`) renumbered so that the user's own id
/// appears inside as `own_inside` (their id on the host) instead of 0. Standard id 0 moves to
/// `own_inside`, standard ids 1..=`own_inside` move down by one (the first subordinate id
/// becomes 0, root), and the ids above stay where they are; the host side of every id is
/// unchanged.
pub fn keep_id(own_inside: u32, standard: &[IdMapping]) -> Vec<IdMapping> {
    let mut out = Vec::new();
    for m in standard {
        let end = m.inside as u64 + m.count as u64;
        // The pieces of this range on either side of the renumbering's boundaries.
        let mut start = m.inside as u64;
        for boundary in [1u64, own_inside as u64 + 1, end] {
            if boundary <= start || start >= end {
                continue;
            }
            let stop = boundary.min(end);
            let inside = keep_id_inside(own_inside, start as u32);
            out.push(IdMapping {
                inside,
                outside: m.outside + (start - m.inside as u64) as u32,
                count: (stop - start) as u32,
            });
            start = stop;
        }
    }
    out.sort_by_key(|m| m.inside);
    out
}

/// Where standard id `standard` sits in a keep-id namespace.
fn keep_id_inside(own_inside: u32, standard: u32) -> u32 {
    match standard {
        0 => own_inside,
        s if s <= own_inside => s - 1,
        s => s,
    }
}

/// fuse-overlayfs's `uidmapping=`/`gidmapping=` value that undoes [`keep_id`] for the root file
/// system: layers keep the standard layout on disk, so a file the keep-id namespace sees as
/// `own_inside` is shown as root's, one it sees as 0 as 1's, and so on; ids up to `max_id`
/// exist. The format is STORAGE:SHOWN:COUNT, comma-separated.
pub fn keep_id_storage_map(own_inside: u32, max_id: u32) -> String {
    let pieces = [
        (own_inside, 0, 1),
        (0, 1, own_inside),
        (
            own_inside.saturating_add(1),
            own_inside.saturating_add(1),
            max_id.saturating_sub(own_inside),
        ),
    ];
    pieces
        .iter()
        .filter(|(_, _, count)| *count > 0)
        .map(|(storage, shown, count)| format!("{storage}:{shown}:{count}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The lines of `/proc/PID/uid_map` or `gid_map`.
pub fn parse_proc_map(text: &str) -> Vec<IdMapping> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace().map(|v| v.parse::<u32>().ok());
            Some(IdMapping {
                inside: f.next()??,
                outside: f.next()??,
                count: f.next()??,
            })
        })
        .collect()
}

/// The highest id inside the namespace.
pub fn max_inside(maps: &[IdMapping]) -> u32 {
    maps.iter()
        .map(|m| m.inside.saturating_add(m.count).saturating_sub(1))
        .max()
        .unwrap_or(0)
}

/// The arguments newuidmap/newgidmap take after the pid.
pub fn helper_args(maps: &[IdMapping]) -> Vec<String> {
    maps.iter()
        .flat_map(|m| {
            [
                m.inside.to_string(),
                m.outside.to_string(),
                m.count.to_string(),
            ]
        })
        .collect()
}

impl fmt::Display for IdMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.inside, self.outside, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_by_name_and_id() {
        let text = "alice:100000:65536\n# comment\nbob:165536:65536\n1001:300000:1000\nbad line\nalice:400000:0\n";
        assert_eq!(
            parse_subid(text, "alice", 1000),
            vec![SubRange {
                start: 100000,
                count: 65536
            }]
        );
        assert_eq!(
            parse_subid(text, "carol", 1001),
            vec![SubRange {
                start: 300000,
                count: 1000
            }]
        );
        assert!(parse_subid(text, "dave", 1002).is_empty());
    }

    #[test]
    fn builds_maps() {
        let maps = mappings(
            1000,
            &[
                SubRange {
                    start: 100000,
                    count: 65536,
                },
                SubRange {
                    start: 300000,
                    count: 10,
                },
            ],
        );
        assert_eq!(
            helper_args(&maps),
            [
                "0", "1000", "1", "1", "100000", "65536", "65537", "300000", "10"
            ]
        );
        assert_eq!(max_inside(&maps), 65546);
        assert_eq!(max_inside(&mappings(1000, &[])), 0);
        assert_eq!(
            parse_proc_map("         0       1000          1\n         1     100000      65536\n"),
            maps[..2]
        );
    }

    fn map(inside: u32, outside: u32, count: u32) -> IdMapping {
        IdMapping {
            inside,
            outside,
            count,
        }
    }

    #[test]
    fn keep_id_puts_the_user_at_their_own_id() {
        let standard = mappings(
            1000,
            &[SubRange {
                start: 100000,
                count: 65536,
            }],
        );
        assert_eq!(
            keep_id(1000, &standard),
            [
                map(0, 100000, 1000),
                map(1000, 1000, 1),
                map(1001, 101000, 64536)
            ]
        );
        assert_eq!(max_inside(&keep_id(1000, &standard)), 65536);
        assert_eq!(
            keep_id_storage_map(1000, 65536),
            "1000:0:1:0:1:1000:1001:1001:64536"
        );
    }

    #[test]
    fn keep_id_with_split_ranges_and_a_high_uid() {
        // Two subordinate ranges, the boundary inside the second one.
        let standard = mappings(
            5,
            &[
                SubRange {
                    start: 100,
                    count: 3,
                },
                SubRange {
                    start: 200,
                    count: 4,
                },
            ],
        );
        // Standard: 0→5, 1..=3→100.., 4..=7→200..
        assert_eq!(
            keep_id(5, &standard),
            [map(0, 100, 3), map(3, 200, 2), map(5, 5, 1), map(6, 202, 2)]
        );
        // A uid above every subordinate id: nothing stays in place.
        let small = mappings(
            70000,
            &[SubRange {
                start: 100000,
                count: 10,
            }],
        );
        assert_eq!(
            keep_id(70000, &small),
            [map(0, 100000, 10), map(70000, 70000, 1)]
        );
        assert_eq!(keep_id_storage_map(70000, 70000), "70000:0:1:0:1:70000");
    }
}
