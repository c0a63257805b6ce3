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
    }
}
