//! `-u user[:group]` resolved against the container's own /etc/passwd and /etc/group, as
//! Docker does: names or numbers, the user's primary group, and the groups that list it.

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// (name, gid, members)
fn groups(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            let members = f[3]
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            Some((f[0].to_string(), f[2].parse().ok()?, members))
        })
        .collect()
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`) inside the file system at
/// `root`. An unknown name is an error; an unknown number is allowed, as in Docker.
pub fn resolve(root: &Path, spec: &str) -> Result<User, String> {
    let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap_or_default();
    resolve_in(&read("etc/passwd"), &read("etc/group"), spec)
}

/// [`resolve`] against the text of an /etc/passwd and an /etc/group (empty when missing).
pub fn resolve_in(passwd_text: &str, group_text: &str, spec: &str) -> Result<User, String> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = passwd(passwd_text);
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => users.iter().find(|e| e.uid == uid),
        Err(_) => Some(users.iter().find(|e| e.name == user_part).ok_or_else(|| {
            format!("unable to find user {user_part}: no matching entries in passwd file")
        })?),
    };
    let uid = entry
        .map(|e| e.uid)
        .unwrap_or_else(|| user_part.parse().unwrap_or(0));
    let all_groups = groups(group_text);
    let gid = match group_part {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => all_groups
                .iter()
                .find(|(name, _, _)| name == g)
                .map(|(_, gid, _)| *gid)
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        },
        None => entry.map(|e| e.gid).unwrap_or(0),
    };
    let supplementary = match (group_part, entry) {
        // An explicit group replaces the user's memberships, as in Docker.
        (None, Some(e)) => all_groups
            .iter()
            .filter(|(_, g, members)| members.contains(&e.name) && *g != gid)
            .map(|(_, g, _)| *g)
            .collect(),
        _ => vec![],
    };
    Ok(User {
        uid,
        gid,
        groups: supplementary,
        home: entry
            .map(|e| e.home.clone())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".into()),
    })
}

/// The user `--userns=keep-id` adds to a container whose image does not know their ids.
pub struct Account<'a> {
    pub name: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub home: &'a str,
}

/// The container's `/etc/passwd` and `/etc/group` (given as text, empty when missing) with
/// a line added for `account`'s uid and gid where the image has none, so that names,
/// `whoami` and `HOME` work; `None` for a file that needs nothing added.
pub fn with_account(
    passwd: &str,
    group: &str,
    account: &Account,
) -> (Option<String>, Option<String>) {
    let has_id = |text: &str, field: usize, id: u32| {
        text.lines()
            .any(|l| l.split(':').nth(field).and_then(|f| f.parse().ok()) == Some(id))
    };
    let append = |text: &str, line: String| {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&line);
        out
    };
    let passwd = (!has_id(passwd, 2, account.uid)).then(|| {
        append(
            passwd,
            format!(
                "{}:x:{}:{}:{}:{}:/bin/sh\n",
                account.name, account.uid, account.gid, account.name, account.home
            ),
        )
    });
    let group = (!has_id(group, 2, account.gid))
        .then(|| append(group, format!("{}:x:{}:\n", account.name, account.gid)));
    (passwd, group)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn names_numbers_and_groups() {
        let r = root();
        let root_user = resolve(r.path(), "").unwrap();
        assert_eq!(
            (root_user.uid, root_user.gid, root_user.home.as_str()),
            (0, 0, "/root")
        );
        let app = resolve(r.path(), "app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.groups.clone()),
            (1000, 1000, vec![10])
        );
        assert_eq!(app.home, "/home/app");
        assert_eq!(resolve(r.path(), "app:wheel").unwrap().gid, 10);
        assert_eq!(
            resolve(r.path(), "1234:55").unwrap(),
            User {
                uid: 1234,
                gid: 55,
                groups: vec![],
                home: "/".into()
            }
        );
        assert!(
            resolve(r.path(), "nobody")
                .unwrap_err()
                .contains("unable to find user nobody")
        );
        assert!(
            resolve(r.path(), "app:nogroup")
                .unwrap_err()
                .contains("unable to find group")
        );
    }

    #[test]
    fn keep_id_account_added_only_when_missing() {
        let me = Account {
            name: "me",
            uid: 1001,
            gid: 1001,
            home: "/home/me",
        };
        let (passwd, group) = with_account("root:x:0:0:root:/root:/bin/sh", "", &me);
        assert_eq!(
            passwd.as_deref(),
            Some("root:x:0:0:root:/root:/bin/sh\nme:x:1001:1001:me:/home/me:/bin/sh\n")
        );
        assert_eq!(group.as_deref(), Some("me:x:1001:\n"));
        let (passwd, group) =
            with_account("app:x:1001:5:app:/app:/bin/sh\n", "staff:x:1001:\n", &me);
        assert_eq!((passwd, group), (None, None));
    }
}
