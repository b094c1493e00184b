//! Client configs for web apps: users (a CSV file or FreeSWITCH directory XML) and the
//! map become one Verto client config (JSON) per login, plus an index. Pure: reading
//! the inputs is [`csv`]'s and [`directory`]'s, writing is `commands::client_config`'s.
//!
//! Every value of one user comes from its row (or `<user>`), else from `--default`,
//! and `wsURL`/`wsFallbackURL` from [`Config::client_urls`] of the partition the login
//! routes to, so a config and `/verto-config?login=` always agree.

pub mod csv;
mod defaults;
pub mod directory;
mod render;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;

pub use defaults::{Defaults, DefaultsError};
pub use render::OutFile;

use crate::config::{ClientUrls, Config};
use crate::routing::{RouteError, Router};

/// Longest file name stem (the login, made safe) a config is written under: file
/// systems allow 255 bytes per name, and `.json` plus the temporary name's decoration
/// must fit too.
pub const MAX_FILE_STEM_BYTES: usize = 200;

/// The file listing every config written: login → `{"file","partition","wsURL"}`.
pub const INDEX_FILE: &str = "index.json";

/// A field of a client config other than `login` and the URLs, in CSV column order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// `name`: the user's display name.
    Name,
    /// `email`.
    Email,
    /// `cid`: the caller id number the client shows.
    Cid,
    /// `extension`: the number the client dials by default.
    Extension,
    /// `textTo`: where chat messages go.
    TextTo,
    /// `autologin`.
    Autologin,
    /// `autocall`: a number called right after login.
    Autocall,
    /// `password`: written only with `--include-passwords`.
    Password,
}

impl Field {
    /// Every field, in CSV column order.
    pub const ALL: [Field; 8] = [
        Field::Name,
        Field::Email,
        Field::Cid,
        Field::Extension,
        Field::TextTo,
        Field::Autologin,
        Field::Autocall,
        Field::Password,
    ];

    /// Its key in CSV headers, `--default` and the JSON output.
    pub fn key(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Email => "email",
            Field::Cid => "cid",
            Field::Extension => "extension",
            Field::TextTo => "textTo",
            Field::Autologin => "autologin",
            Field::Autocall => "autocall",
            Field::Password => "password",
        }
    }

    /// The field called `key` (exact spelling).
    pub fn from_key(key: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.key() == key)
    }

    /// `name, email, …, password`, for messages.
    pub fn list() -> String {
        Field::ALL.map(Field::key).join(", ")
    }
}

/// The field values known for one user; empty values are never stored. Its `Debug`
/// shows whether a password is set, never the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields(BTreeMap<Field, String>);

impl Fields {
    /// The value of `field`, if known.
    pub fn get(&self, field: Field) -> Option<&str> {
        self.0.get(&field).map(String::as_str)
    }

    /// Sets `field`; an empty value unsets it (an empty CSV cell means "not known").
    pub fn set(&mut self, field: Field, value: impl Into<String>) {
        let value = value.into();
        if value.is_empty() {
            self.0.remove(&field);
        } else {
            self.0.insert(field, value);
        }
    }

    /// Removes `field`.
    pub fn remove(&mut self, field: Field) {
        self.0.remove(&field);
    }

    /// These values, with `fallback`'s for the fields these lack.
    fn or(&self, fallback: &Fields) -> Fields {
        let mut merged = fallback.clone();
        merged.0.extend(self.0.clone());
        merged
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (field, value) in &self.0 {
            match field {
                Field::Password => map.entry(&field.key(), &"<redacted>"),
                _ => map.entry(&field.key(), value),
            };
        }
        map.finish()
    }
}

/// Where a user was read: a CSV record's first line, or a `<user>` element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The file, as it was reached (the `--users` path, joined with includes).
    pub file: PathBuf,
    /// 1-based line.
    pub line: u64,
    /// The XML element, `<user id="1000">`; `None` for CSV.
    pub element: Option<String>,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        match &self.element {
            Some(element) => write!(f, ": {element}"),
            None => Ok(()),
        }
    }
}

/// One user as read from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEntry {
    /// The Verto login, as written (`user@domain`, or `user` with the map's default domain).
    pub login: String,
    /// Its fields from the input.
    pub fields: Fields,
    /// Where it was read.
    pub source: Source,
}

/// Choices of the generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Keep `password` in the configs (otherwise it is dropped, whatever its source).
    pub include_passwords: bool,
}

/// The config of one login, ready to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The login, as written in the input.
    pub login: String,
    /// Its file name: the login as routed (`user@domain`, the domain lower-case, the
    /// default domain added to a login without one), filesystem-safe ([`file_stem`]),
    /// and `.json`.
    pub file: String,
    /// The partition it routes to.
    pub partition: String,
    /// `wsURL` and `wsFallbackURL` from the map.
    pub urls: ClientUrls,
    /// Its fields, `--default`s filled in; `password` only with `include_passwords`.
    pub fields: Fields,
}

/// Every config, sorted by login.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// One per login, sorted by login (byte order).
    pub documents: Vec<Document>,
}

/// What is wrong with one user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// The router refuses the login for its form (empty, no domain, bad domain).
    #[error("invalid login: {0}")]
    InvalidLogin(RouteError),
    /// No partition of the map serves the login.
    #[error("no partition: {0}")]
    NoPartition(RouteError),
    /// An earlier user has the same login (the domain compared case-insensitively,
    /// the default domain filled in); the earlier one is kept.
    #[error("duplicate of {first_login:?} at {first}; the first is kept")]
    Duplicate {
        /// The earlier user's login.
        first_login: String,
        /// Where it was read.
        first: Source,
    },
    /// Its file name equals another login's when compared case-insensitively (as
    /// FreeSWITCH compares user ids, and some file systems compare names).
    #[error("its file {file} clashes with that of {other:?} at {at}; the first is kept")]
    FileClash {
        /// The file name.
        file: String,
        /// The other login.
        other: String,
        /// Where that was read.
        at: Source,
    },
    /// The login is too long to be a file name.
    #[error("the login is too long for a file name ({bytes} bytes, at most {max})")]
    TooLong {
        /// The stem's length.
        bytes: usize,
        /// [`MAX_FILE_STEM_BYTES`].
        max: usize,
    },
}

/// One user left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The login as written.
    pub login: String,
    /// Where it was read.
    pub source: Source,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: login {:?}: {}", self.source, self.login, self.kind)
    }
}

/// The users that cannot be configured, in input order, and the output without them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} user(s) cannot be configured, the first: {}", .problems.len(), first(.problems))]
pub struct Problems {
    /// Each user left out.
    pub problems: Vec<Problem>,
    /// The configs of every other user (what `--skip-invalid` writes).
    pub valid: Output,
}

fn first(problems: &[Problem]) -> String {
    problems.first().map(Problem::to_string).unwrap_or_default()
}

/// A login accepted so far: its canonical form's owner and file name's owner.
struct Seen<'a> {
    by_login: HashMap<String, &'a UserEntry>,
    by_file: HashMap<String, &'a UserEntry>,
}

/// The configs of `users` routed with `router`: `Ok` when every user is fine, else
/// the problems and the configs of the other users (the first of duplicates kept).
pub fn generate(
    users: &[UserEntry],
    defaults: &Defaults,
    router: &Router,
    options: Options,
) -> Result<Output, Problems> {
    let config: &Config = router.config();
    let mut seen = Seen {
        by_login: HashMap::new(),
        by_file: HashMap::new(),
    };
    let mut problems = Vec::new();
    let mut documents = Vec::new();
    for user in users {
        match document(user, defaults, router, config, &mut seen, options) {
            Ok(doc) => documents.push(doc),
            Err(kind) => problems.push(Problem {
                login: user.login.clone(),
                source: user.source.clone(),
                kind,
            }),
        }
    }
    documents.sort_by(|a, b| a.login.cmp(&b.login));
    let output = Output { documents };
    if problems.is_empty() {
        Ok(output)
    } else {
        Err(Problems {
            problems,
            valid: output,
        })
    }
}

fn document<'a>(
    user: &'a UserEntry,
    defaults: &Defaults,
    router: &Router,
    config: &Config,
    seen: &mut Seen<'a>,
    options: Options,
) -> Result<Document, ProblemKind> {
    let route = router.route(&user.login).map_err(|e| match e {
        RouteError::UnknownDomain { .. } | RouteError::NoExtension { .. } => {
            ProblemKind::NoPartition(e)
        }
        _ => ProblemKind::InvalidLogin(e),
    })?;
    let canonical = format!("{}@{}", route.user, route.domain);
    if let Some(first) = seen.by_login.get(&canonical) {
        return Err(ProblemKind::Duplicate {
            first_login: first.login.clone(),
            first: first.source.clone(),
        });
    }
    let stem = file_stem(&canonical);
    if stem.len() > MAX_FILE_STEM_BYTES {
        return Err(ProblemKind::TooLong {
            bytes: stem.len(),
            max: MAX_FILE_STEM_BYTES,
        });
    }
    let file = format!("{stem}.json");
    if let Some(other) = seen.by_file.get(&file.to_ascii_lowercase()) {
        return Err(ProblemKind::FileClash {
            file,
            other: other.login.clone(),
            at: other.source.clone(),
        });
    }
    seen.by_login.insert(canonical, user);
    seen.by_file.insert(file.to_ascii_lowercase(), user);
    let mut fields = user.fields.or(&defaults.fields);
    if !options.include_passwords {
        fields.remove(Field::Password);
    }
    Ok(Document {
        login: user.login.clone(),
        file,
        partition: route.partition.name.clone(),
        urls: config.client_urls(route.partition),
        fields,
    })
}

/// `login` as a file name stem: every character outside `[A-Za-z0-9@._+-]` becomes
/// `_`, and so does a leading `.` (no hidden files, no `.`/`..`).
pub fn file_stem(login: &str) -> String {
    let mut stem: String = login
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '@' | '.' | '_' | '+' | '-' => c,
            _ => '_',
        })
        .collect();
    if stem.starts_with('.') {
        stem.replace_range(..1, "_");
    }
    stem
}

#[cfg(test)]
mod tests;
