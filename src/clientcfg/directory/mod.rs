//! FreeSWITCH directory XML as users: a file, or a folder as operators keep
//! `conf/directory/` (its top-level `*.xml` files, each pulling user files in with
//! `<X-PRE-PROCESS cmd="include" data="default/*.xml"/>`, relative to the including
//! file as FreeSWITCH resolves it).
//!
//! Each `<user id>` inside a `<domain name>` is the login `id@name`; `name` comes from
//! the variable `effective_caller_id_name`, `cid` from `effective_caller_id_number`,
//! `password` from the param `password`, each looked up on the user, then its group,
//! then its domain (FreeSWITCH merges them the same way). Pointers (`<user type=
//! "pointer">`, a group listing a user defined elsewhere) and `number-alias` (another
//! number of the same user) add no login. `$${NAME}` is resolved from `--default`.

mod error;
mod vars;
mod xml;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use error::DirectoryError;
use xml::{Item, Tag};

use super::{Field, Fields, Source, UserEntry};

/// Deepest chain of includes followed (FreeSWITCH's own limit); cycles are reported
/// before, so this only bounds a very deep tree.
pub const MAX_INCLUDE_DEPTH: usize = 100;

/// The users of a directory, and the `$${NAME}`s its files use.
#[derive(Debug, Clone, Default)]
pub struct DirectoryUsers {
    /// In document order (top-level files by name, includes where they stand).
    pub users: Vec<UserEntry>,
    /// Every variable referenced by an attribute the reader looked at.
    pub variables: BTreeSet<String>,
}

/// Reads the directory at `path` (a file, or a folder's top-level `*.xml` files),
/// resolving `$${NAME}` from `values`; passwords only when `passwords` is set, so an
/// unset `$${default_password}` matters only then.
pub fn read(
    path: &Path,
    values: &BTreeMap<String, String>,
    passwords: bool,
) -> Result<DirectoryUsers, DirectoryError> {
    let mut walker = Walker {
        values,
        frames: Vec::new(),
        scopes: Vec::new(),
        pending: Vec::new(),
        variables: BTreeSet::new(),
    };
    for file in top_files(path)? {
        let canonical = canonical(&file)?;
        walker.file(&file, &mut vec![(canonical, file.clone())])?;
    }
    walker.finish(passwords)
}

fn top_files(path: &Path) -> Result<Vec<PathBuf>, DirectoryError> {
    let read = |source| DirectoryError::Read {
        path: path.into(),
        source,
    };
    if !std::fs::metadata(path).map_err(read)?.is_dir() {
        return Ok(vec![path.into()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read)? {
        let file = entry.map_err(read)?.path();
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or(".");
        if name.ends_with(".xml") && !name.starts_with('.') && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(DirectoryError::NoFiles { dir: path.into() });
    }
    Ok(files)
}

fn canonical(path: &Path) -> Result<PathBuf, DirectoryError> {
    std::fs::canonicalize(path).map_err(|source| DirectoryError::Read {
        path: path.into(),
        source,
    })
}

/// An attribute value as written, and where.
#[derive(Debug, Clone)]
struct Raw {
    value: String,
    file: PathBuf,
    line: u64,
}

/// A domain, group or user: its own params and variables, and the enclosing one.
#[derive(Debug, Default)]
struct Scope {
    parent: Option<usize>,
    /// The domain's name, for domain scopes.
    domain: Option<Raw>,
    params: BTreeMap<String, Raw>,
    variables: BTreeMap<String, Raw>,
}

/// An open element, as the walker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Scope(usize),
    Params,
    Variables,
    Transparent,
    Other,
}

/// A `<user>` found; resolved once every file is read.
struct Pending {
    id: Raw,
    scope: usize,
    domain: usize,
    source: Source,
}

struct Walker<'v> {
    values: &'v BTreeMap<String, String>,
    frames: Vec<Frame>,
    scopes: Vec<Scope>,
    pending: Vec<Pending>,
    variables: BTreeSet<String>,
}

impl Walker<'_> {
    /// Walks `file`, the last of `chain` (canonical and shown paths of the files being
    /// read, outermost first); its elements nest inside the including element.
    fn file(
        &mut self,
        file: &Path,
        chain: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<(), DirectoryError> {
        let text = std::fs::read_to_string(file).map_err(|source| DirectoryError::Read {
            path: file.into(),
            source,
        })?;
        for item in xml::items(&text, file)? {
            match item {
                Item::Open { tag, line } => {
                    let raw = |value: String| Raw {
                        value,
                        file: file.into(),
                        line,
                    };
                    let frame = self.open(tag, raw, chain)?;
                    self.frames.push(frame);
                }
                Item::Close => {
                    self.frames.pop();
                }
            }
        }
        Ok(())
    }

    fn open(
        &mut self,
        tag: Tag,
        raw: impl Fn(String) -> Raw,
        chain: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<Frame, DirectoryError> {
        let frame = match tag {
            Tag::Domain { name } => {
                let name = self.seen(raw(name));
                self.scope(None, Some(name))
            }
            Tag::Group => match self.innermost(|f| matches!(f, Frame::Scope(_))) {
                Some(Frame::Scope(parent)) => self.scope(Some(parent), None),
                _ => Frame::Other,
            },
            Tag::User { pointer: true, .. } => Frame::Other,
            Tag::User { id, .. } => {
                let id = self.seen(raw(id));
                self.user(id)?
            }
            Tag::Params => Frame::Params,
            Tag::Variables => Frame::Variables,
            Tag::Setting { name, value } => {
                let value = self.seen(raw(value));
                self.setting(name, value);
                Frame::Other
            }
            Tag::Include { data } => {
                let data = self.seen(raw(data));
                self.include(data, chain)?;
                Frame::Other
            }
            Tag::Transparent => Frame::Transparent,
            Tag::Other => Frame::Other,
        };
        Ok(frame)
    }

    /// Notes the variables `raw` refers to.
    fn seen(&mut self, raw: Raw) -> Raw {
        let names = vars::names(&raw.value).into_iter().map(str::to_owned);
        self.variables.extend(names);
        raw
    }

    fn scope(&mut self, parent: Option<usize>, domain: Option<Raw>) -> Frame {
        self.scopes.push(Scope {
            parent,
            domain,
            ..Scope::default()
        });
        Frame::Scope(self.scopes.len() - 1)
    }

    /// The innermost open frame that `wanted` accepts.
    fn innermost(&self, wanted: impl Fn(Frame) -> bool) -> Option<Frame> {
        self.frames.iter().rev().copied().find(|f| wanted(*f))
    }

    fn user(&mut self, id: Raw) -> Result<Frame, DirectoryError> {
        let domain = self
            .frames
            .iter()
            .rev()
            .find_map(|f| match f {
                Frame::Scope(i) if self.scopes.get(*i).is_some_and(|s| s.domain.is_some()) => {
                    Some(*i)
                }
                _ => None,
            })
            .ok_or_else(|| DirectoryError::OutsideDomain {
                file: id.file.clone(),
                line: id.line,
                id: id.value.clone(),
            })?;
        let parent = match self.innermost(|f| matches!(f, Frame::Scope(_))) {
            Some(Frame::Scope(parent)) => parent,
            _ => domain,
        };
        let Frame::Scope(scope) = self.scope(Some(parent), None) else {
            return Ok(Frame::Other);
        };
        let source = Source {
            file: id.file.clone(),
            line: id.line,
            element: Some(format!("<user id={:?}>", id.value)),
        };
        self.pending.push(Pending {
            id,
            scope,
            domain,
            source,
        });
        Ok(Frame::Scope(scope))
    }

    /// Files a `<param>` or `<variable>` under its scope, when it stands in the
    /// scope's own `<params>` or `<variables>` (not, say, in a user's `<gateways>`).
    fn setting(&mut self, name: String, value: Raw) {
        let mut open = self
            .frames
            .iter()
            .rev()
            .filter(|f| **f != Frame::Transparent);
        let (Some(&list), Some(&Frame::Scope(scope))) = (open.next(), open.next()) else {
            return;
        };
        let Some(scope) = self.scopes.get_mut(scope) else {
            return;
        };
        match list {
            Frame::Params => scope.params.insert(name, value),
            Frame::Variables => scope.variables.insert(name, value),
            _ => None,
        };
    }

    fn include(
        &mut self,
        data: Raw,
        chain: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<(), DirectoryError> {
        let pattern = self.expand(&data)?;
        let base = data.file.parent().unwrap_or(Path::new(""));
        let targets = if pattern.contains(['*', '?', '[']) {
            matching(base, &pattern).map_err(|reason| DirectoryError::Include {
                file: data.file.clone(),
                line: data.line,
                pattern: pattern.clone(),
                reason,
            })?
        } else {
            vec![base.join(&pattern)]
        };
        for target in targets {
            if chain.len() >= MAX_INCLUDE_DEPTH {
                return Err(DirectoryError::TooDeep {
                    file: data.file.clone(),
                    line: data.line,
                    max: MAX_INCLUDE_DEPTH,
                });
            }
            let canonical = canonical(&target)?;
            if chain.iter().any(|(c, _)| *c == canonical) {
                let mut shown: Vec<PathBuf> = chain.iter().map(|(_, s)| s.clone()).collect();
                shown.push(target);
                return Err(DirectoryError::Cycle {
                    file: data.file.clone(),
                    line: data.line,
                    chain: shown,
                });
            }
            chain.push((canonical, target.clone()));
            self.file(&target, chain)?;
            chain.pop();
        }
        Ok(())
    }

    fn expand(&self, raw: &Raw) -> Result<String, DirectoryError> {
        vars::expand(&raw.value, self.values).map_err(|name| DirectoryError::UnknownVariable {
            file: raw.file.clone(),
            line: raw.line,
            name: name.to_owned(),
        })
    }

    /// The `key` of `scope` or the nearest enclosing scope that has it.
    fn lookup(&self, scope: usize, params: bool, key: &str) -> Option<&Raw> {
        let mut at = Some(scope);
        while let Some(scope) = at.and_then(|i| self.scopes.get(i)) {
            let list = if params {
                &scope.params
            } else {
                &scope.variables
            };
            if let Some(raw) = list.get(key) {
                return Some(raw);
            }
            at = scope.parent;
        }
        None
    }

    fn finish(self, passwords: bool) -> Result<DirectoryUsers, DirectoryError> {
        let mut users = Vec::with_capacity(self.pending.len());
        for user in &self.pending {
            let domain = self.scopes.get(user.domain).and_then(|s| s.domain.as_ref());
            let domain = domain.map(|raw| self.expand(raw)).transpose()?;
            let id = self.expand(&user.id)?;
            let mut fields = Fields::default();
            let mut wanted = vec![
                (Field::Name, false, "effective_caller_id_name"),
                (Field::Cid, false, "effective_caller_id_number"),
            ];
            if passwords {
                wanted.push((Field::Password, true, "password"));
            }
            for (field, params, key) in wanted {
                if let Some(raw) = self.lookup(user.scope, params, key) {
                    fields.set(field, self.expand(raw)?);
                }
            }
            users.push(UserEntry {
                login: format!("{id}@{}", domain.unwrap_or_default()),
                fields,
                source: user.source.clone(),
            });
        }
        Ok(DirectoryUsers {
            users,
            variables: self.variables,
        })
    }
}

/// The files matching `pattern` relative to `base`, sorted; like FreeSWITCH's glob, a
/// `*` matches no leading dot, and a pattern matching nothing includes nothing.
fn matching(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let full = if Path::new(pattern).is_absolute() || base.as_os_str().is_empty() {
        pattern.to_owned()
    } else {
        let base = base
            .to_str()
            .ok_or("the including file's folder is not UTF-8")?;
        format!("{}/{pattern}", glob::Pattern::escape(base))
    };
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let mut files = Vec::new();
    for found in glob::glob_with(&full, options).map_err(|e| e.to_string())? {
        let path = found.map_err(|e| e.to_string())?;
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests;
