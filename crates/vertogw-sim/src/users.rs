//! The simulated user directory: explicit users, numeric id ranges, and the TOML file form.
//!
//! The directory ignores domains: every user exists in every domain, because the
//! simulator has one profile and the gateway, not the node, decides which domain a
//! login belongs to.

use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

/// The allow-list a user gets when none is given: vanilla FreeSWITCH's
/// `jsonrpc-allowed-methods=verto`.
pub const DEFAULT_ALLOWED_METHODS: &[&str] = &["verto"];

/// Why a users file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The file could not be read.
    #[error("cannot read users file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("users file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: toml::de::Error,
    },
    /// A value is out of bounds.
    #[error("users file {path}: {key}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Which setting.
        key: String,
        /// What to change.
        reason: String,
    },
}

/// What the directory holds for one user: the password and the method allow-list.
#[derive(Clone)]
pub(crate) struct Account {
    password: Arc<str>,
    allowed: Arc<[String]>,
}

impl Account {
    fn new(password: &str, allowed: &[String]) -> Account {
        Account {
            password: password.into(),
            allowed: allowed.into(),
        }
    }

    /// Whether `passwd` is this user's password.
    pub(crate) fn password_matches(&self, passwd: &str) -> bool {
        *self.password == *passwd
    }

    /// The method allow-list (`login` is always allowed on top).
    pub(crate) fn allowed(&self) -> Arc<[String]> {
        Arc::clone(&self.allowed)
    }
}

#[derive(Clone)]
struct IdRange {
    ids: RangeInclusive<u64>,
    account: Account,
}

/// The simulated directory: explicit users plus rules "every all-digit id in a range".
#[derive(Clone, Default)]
pub struct SimUsers {
    explicit: HashMap<String, Account>,
    ranges: Vec<IdRange>,
}

impl fmt::Debug for SimUsers {
    // Passwords stay out of debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges: Vec<_> = self.ranges.iter().map(|r| r.ids.clone()).collect();
        f.debug_struct("SimUsers")
            .field("explicit", &self.explicit.len())
            .field("ranges", &ranges)
            .finish()
    }
}

fn owned(methods: &[&str]) -> Vec<String> {
    methods.iter().map(|m| (*m).to_owned()).collect()
}

impl SimUsers {
    /// An empty directory (every login gets "Login Incorrect").
    pub fn new() -> SimUsers {
        SimUsers::default()
    }

    /// Every all-digit id in `ids` exists with `password` and the default allow-list.
    pub fn range(ids: RangeInclusive<u64>, password: &str) -> SimUsers {
        SimUsers::new().with_range(ids, password, DEFAULT_ALLOWED_METHODS)
    }

    /// The users of the real captures: 1000 (`verto,echo`), 1001 (nothing) and 1008
    /// (`verto`), all with password `1234`.
    pub fn transcript_users() -> SimUsers {
        SimUsers::new()
            .with_user("1000", "1234", &["verto", "echo"])
            .with_user("1001", "1234", &[])
            .with_user("1008", "1234", &["verto"])
    }

    /// Adds (or replaces) one user; an empty `allowed_methods` allows only `login`.
    pub fn with_user(mut self, id: &str, password: &str, allowed_methods: &[&str]) -> SimUsers {
        let account = Account::new(password, &owned(allowed_methods));
        self.explicit.insert(id.to_owned(), account);
        self
    }

    /// Adds a range rule; explicit users take precedence over ranges.
    pub fn with_range(
        mut self,
        ids: RangeInclusive<u64>,
        password: &str,
        allowed_methods: &[&str],
    ) -> SimUsers {
        let account = Account::new(password, &owned(allowed_methods));
        self.ranges.push(IdRange { ids, account });
        self
    }

    /// Loads the users of a TOML users file (its `force_domain` is ignored here; see
    /// [`UsersFile::load`]).
    pub fn from_toml_file(path: &Path) -> Result<SimUsers, UsersError> {
        UsersFile::load(path).map(|file| file.users)
    }

    /// A short description for logs: counts only, never passwords.
    pub fn summary(&self) -> String {
        let ranges: Vec<String> = self
            .ranges
            .iter()
            .map(|r| format!("{}..={}", r.ids.start(), r.ids.end()))
            .collect();
        format!(
            "{} explicit, ranges [{}]",
            self.explicit.len(),
            ranges.join(", ")
        )
    }

    /// Finds a user by id, the way the directory lookup would.
    pub(crate) fn lookup(&self, id: &str) -> Option<&Account> {
        if let Some(account) = self.explicit.get(id) {
            return Some(account);
        }
        let n = numeric_id(id)?;
        self.ranges
            .iter()
            .find(|r| r.ids.contains(&n))
            .map(|r| &r.account)
    }
}

/// The number an id spells, if it is all digits without a leading zero ("01000" is not
/// user 1000 in a FreeSWITCH directory either).
fn numeric_id(id: &str) -> Option<u64> {
    let digits = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    if !digits || (id.len() > 1 && id.starts_with('0')) {
        return None;
    }
    id.parse().ok()
}

/// A parsed users file: the directory plus the profile's optional
/// `force-register-domain`.
#[derive(Debug, Clone)]
pub struct UsersFile {
    /// Overrides the domain of every login, like `force-register-domain`.
    pub force_domain: Option<String>,
    /// The directory.
    pub users: SimUsers,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    force_domain: Option<String>,
    #[serde(default)]
    user: Vec<RawUser>,
    #[serde(default)]
    range: Vec<RawRange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    id: String,
    password: String,
    allowed_methods: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    start: u64,
    end: u64,
    password: String,
    allowed_methods: Option<Vec<String>>,
}

fn allowed_or_default(allowed: Option<Vec<String>>) -> Vec<String> {
    allowed.unwrap_or_else(|| owned(DEFAULT_ALLOWED_METHODS))
}

impl UsersFile {
    /// Reads and validates a users file.
    pub fn load(path: &Path) -> Result<UsersFile, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
            path: path.to_owned(),
            source,
        })?;
        UsersFile::parse(&text, path)
    }

    /// Parses users-file text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<UsersFile, UsersError> {
        let raw: RawFile = toml::from_str(text).map_err(|source| UsersError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |key: String, reason: &str| UsersError::Invalid {
            path: path.to_owned(),
            key,
            reason: reason.to_owned(),
        };
        let mut users = SimUsers::new();
        for (i, u) in raw.user.into_iter().enumerate() {
            if u.id.is_empty() || u.id.contains('@') {
                return Err(invalid(
                    format!("user[{i}].id"),
                    "give a non-empty id without '@'",
                ));
            }
            let account = Account::new(&u.password, &allowed_or_default(u.allowed_methods));
            users.explicit.insert(u.id, account);
        }
        for (i, r) in raw.range.into_iter().enumerate() {
            if r.start > r.end {
                return Err(invalid(format!("range[{i}]"), "start must be <= end"));
            }
            let account = Account::new(&r.password, &allowed_or_default(r.allowed_methods));
            users.ranges.push(IdRange {
                ids: r.start..=r.end,
                account,
            });
        }
        let force_domain = raw.force_domain.filter(|d| !d.is_empty());
        Ok(UsersFile {
            force_domain,
            users,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_users_exist_only_for_canonical_digit_ids_in_range() {
        let users = SimUsers::range(1000..=1999, "1234");
        assert!(users
            .lookup("1500")
            .is_some_and(|a| a.password_matches("1234")));
        assert!(users.lookup("2000").is_none());
        assert!(users.lookup("01500").is_none());
        assert!(users.lookup("15a0").is_none());
        assert!(users.lookup("").is_none());
    }

    #[test]
    fn explicit_users_take_precedence_over_ranges() {
        let users = SimUsers::range(1000..=1999, "1234").with_user("1008", "x", &[]);
        let account = users.lookup("1008").unwrap();
        assert!(account.password_matches("x"));
        assert!(account.allowed().is_empty());
    }

    #[test]
    fn a_users_file_with_every_key_parses() {
        let text = r#"
force_domain = "example.com"
[[user]]
id = "1008"
password = "1234"
[[user]]
id = "1001"
password = "1234"
allowed_methods = []
[[range]]
start = 1002
end = 1999
password = "1234"
allowed_methods = ["verto", "echo"]
"#;
        let file = UsersFile::parse(text, Path::new("u.toml")).unwrap();
        assert_eq!(file.force_domain.as_deref(), Some("example.com"));
        assert_eq!(&*file.users.lookup("1008").unwrap().allowed(), ["verto"]);
        assert!(file.users.lookup("1001").unwrap().allowed().is_empty());
        assert_eq!(
            &*file.users.lookup("1999").unwrap().allowed(),
            ["verto", "echo"]
        );
    }

    #[test]
    fn a_backwards_range_names_the_offending_key() {
        let text = "[[range]]\nstart = 5\nend = 1\npassword = \"p\"\n";
        let err = UsersFile::parse(text, Path::new("u.toml")).unwrap_err();
        assert!(err.to_string().contains("range[0]"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = "[[user]]\nid = \"1\"\npassword = \"p\"\npasswd = \"p\"\n";
        assert!(UsersFile::parse(text, Path::new("u.toml")).is_err());
    }

    #[test]
    fn debug_output_never_shows_a_password() {
        let users = SimUsers::new().with_user("1008", "sekrit", &[]);
        assert!(!format!("{users:?}").contains("sekrit"));
    }
}
