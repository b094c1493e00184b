//! Why a directory cannot be read: each error names the file and line to look at.

use std::path::PathBuf;

/// A directory that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// A file or folder cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A folder without a top-level XML file.
    #[error(
        "{}: no *.xml file in this folder; give conf/directory/ (whose default.xml \
         includes the user files) or one XML file", .dir.display()
    )]
    NoFiles {
        /// The folder.
        dir: PathBuf,
    },
    /// Not well-formed XML, or an element without a required attribute.
    #[error("{}:{line}: {reason}", .file.display())]
    Xml {
        /// The file.
        file: PathBuf,
        /// Where.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A `$${NAME}` without a `--default NAME=…`.
    #[error("{}:{line}: $${{{name}}} has no value: pass --default {name}=VALUE", .file.display())]
    UnknownVariable {
        /// The file using it.
        file: PathBuf,
        /// Where.
        line: u64,
        /// The variable.
        name: String,
    },
    /// A file that includes itself, directly or not.
    #[error("{}:{line}: include cycle: {}", .file.display(), arrows(.chain))]
    Cycle {
        /// The including file.
        file: PathBuf,
        /// Where.
        line: u64,
        /// The files, from the outermost to the one included again.
        chain: Vec<PathBuf>,
    },
    /// Includes nested deeper than [`super::MAX_INCLUDE_DEPTH`].
    #[error("{}:{line}: includes nested deeper than {max} files", .file.display())]
    TooDeep {
        /// The including file.
        file: PathBuf,
        /// Where.
        line: u64,
        /// [`super::MAX_INCLUDE_DEPTH`].
        max: usize,
    },
    /// An include pattern that cannot be used.
    #[error("{}:{line}: include {pattern:?}: {reason}", .file.display())]
    Include {
        /// The including file.
        file: PathBuf,
        /// Where.
        line: u64,
        /// The `data` attribute, variables resolved.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// A `<user>` with no `<domain>` around it.
    #[error(
        "{}:{line}: <user id={id:?}> is outside any <domain>: give the folder or file \
         holding the <domain> (conf/directory/), which includes the user files", .file.display()
    )]
    OutsideDomain {
        /// The file.
        file: PathBuf,
        /// Where.
        line: u64,
        /// The user's id.
        id: String,
    },
}

fn arrows(chain: &[PathBuf]) -> String {
    let shown: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
    shown.join(" -> ")
}
