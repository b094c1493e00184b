//! The users CSV: a header line naming the columns (`login` required, then any of the
//! [`Field`] keys, in any order), one user per record, RFC 4180 quoting (`"a, ""b"""`,
//! line breaks inside quotes). An empty cell means "not known" (`--default` may fill it).

use std::path::{Path, PathBuf};

use ::csv::{ErrorKind, ReaderBuilder, StringRecord};

use super::{Field, Fields, Source, UserEntry};

/// A users file that cannot be read as such.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// Nothing, not even a header.
    #[error("{}: the file is empty; its first line must name the columns, e.g. login,name,email", .file.display())]
    Empty {
        /// The file.
        file: PathBuf,
    },
    /// The header has no `login`.
    #[error("{}:{line}: the header has no login column (it must name login and any of {})", .file.display(), Field::list())]
    NoLogin {
        /// The file.
        file: PathBuf,
        /// The header's line.
        line: u64,
    },
    /// Columns that are not fields.
    #[error("{}:{line}: unknown column(s) {}: the columns are login, {}", .file.display(), quoted(.names), Field::list())]
    UnknownColumns {
        /// The file.
        file: PathBuf,
        /// The header's line.
        line: u64,
        /// The unknown names, in header order.
        names: Vec<String>,
    },
    /// A column named twice.
    #[error("{}:{line}: column {name:?} is named twice", .file.display())]
    RepeatedColumn {
        /// The file.
        file: PathBuf,
        /// The header's line.
        line: u64,
        /// The name.
        name: String,
    },
    /// A record the CSV reader refuses (another number of cells, bad UTF-8, …).
    #[error("{}:{line}: {reason}", .file.display())]
    Record {
        /// The file.
        file: PathBuf,
        /// Where the record starts.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    quoted.join(", ")
}

/// The users in `bytes`, a CSV file read from `file` (named in errors and sources).
pub fn parse(bytes: &[u8], file: &Path) -> Result<Vec<UserEntry>, CsvError> {
    // Spreadsheets save UTF-8 with a byte order mark; it is not part of the header.
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut reader = ReaderBuilder::new().has_headers(false).from_reader(bytes);
    let mut records = reader.records();
    let header = match records.next() {
        None => return Err(CsvError::Empty { file: file.into() }),
        Some(record) => record.map_err(|e| record_error(e, file))?,
    };
    let columns = columns(&header, file)?;
    let mut users = Vec::new();
    for record in records {
        let record = record.map_err(|e| record_error(e, file))?;
        users.push(user(&record, &columns, file));
    }
    Ok(users)
}

/// What each column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Login,
    Field(Field),
}

fn columns(header: &StringRecord, file: &Path) -> Result<Vec<Column>, CsvError> {
    let line = header.position().map_or(1, |p| p.line());
    let mut columns = Vec::new();
    let mut unknown = Vec::new();
    for name in header.iter().map(str::trim) {
        let column = match name {
            "login" => Column::Login,
            _ => match Field::from_key(name) {
                Some(field) => Column::Field(field),
                None => {
                    unknown.push(name.to_owned());
                    continue;
                }
            },
        };
        if columns.contains(&column) {
            return Err(CsvError::RepeatedColumn {
                file: file.into(),
                line,
                name: name.to_owned(),
            });
        }
        columns.push(column);
    }
    if !unknown.is_empty() {
        return Err(CsvError::UnknownColumns {
            file: file.into(),
            line,
            names: unknown,
        });
    }
    if !columns.contains(&Column::Login) {
        return Err(CsvError::NoLogin {
            file: file.into(),
            line,
        });
    }
    Ok(columns)
}

fn user(record: &StringRecord, columns: &[Column], file: &Path) -> UserEntry {
    let mut login = String::new();
    let mut fields = Fields::default();
    for (column, value) in columns.iter().zip(record.iter()) {
        match column {
            Column::Login => value.clone_into(&mut login),
            Column::Field(field) => fields.set(*field, value),
        }
    }
    UserEntry {
        login,
        fields,
        source: Source {
            file: file.into(),
            line: record.position().map_or(0, |p| p.line()),
            element: None,
        },
    }
}

fn record_error(err: ::csv::Error, file: &Path) -> CsvError {
    let line = err.position().map_or(0, |p| p.line());
    let reason = match err.kind() {
        ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("this record has {len} cell(s), the header {expected_len}"),
        ErrorKind::Utf8 { .. } => "this record is not UTF-8 text".to_owned(),
        _ => err.to_string(),
    };
    CsvError::Record {
        file: file.into(),
        line,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(text: &str) -> Vec<UserEntry> {
        parse(text.as_bytes(), Path::new("u.csv")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn error(text: &str) -> String {
        match parse(text.as_bytes(), Path::new("u.csv")) {
            Ok(users) => panic!("parsed: {users:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn quoted_cells_keep_commas_quotes_and_line_breaks() {
        let text = "login,name,textTo\n\
                    1008@example.com,\"Doe, \"\"Ada\"\"\",1000\n\
                    \"1009@example.com\",\"two\nlines\",\n\
                    1010@example.com,plain,\n";
        let got = users(text);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].fields.get(Field::Name), Some("Doe, \"Ada\""));
        assert_eq!(got[0].fields.get(Field::TextTo), Some("1000"));
        assert_eq!(got[1].login, "1009@example.com");
        assert_eq!(got[1].fields.get(Field::Name), Some("two\nlines"));
        assert_eq!(got[1].fields.get(Field::TextTo), None);
        let lines: Vec<u64> = got.iter().map(|u| u.source.line).collect();
        assert_eq!(lines, [2, 3, 5], "a record's line is where it starts");
    }

    #[test]
    fn columns_come_in_any_order_and_a_byte_order_mark_is_skipped() {
        let got = users("\u{feff}email, login ,password\r\na@x.test,1@x.test,secret\r\n");
        assert_eq!(got[0].login, "1@x.test");
        assert_eq!(got[0].fields.get(Field::Email), Some("a@x.test"));
        assert_eq!(got[0].fields.get(Field::Password), Some("secret"));
        assert!(
            !format!("{got:?}").contains("secret"),
            "Debug hides passwords"
        );
    }

    #[test]
    fn unknown_columns_are_named_in_one_error() {
        assert_eq!(
            error("login,name,phone,Email\n1@x.test,a,b,c\n"),
            "u.csv:1: unknown column(s) \"phone\", \"Email\": the columns are login, name, \
             email, cid, extension, textTo, autologin, autocall, password"
        );
    }

    #[test]
    fn a_header_without_login_a_repeated_column_or_nothing_at_all_is_an_error() {
        assert!(error("name,email\nA,a@x\n").starts_with("u.csv:1: the header has no login column"));
        assert_eq!(
            error("login,name,name\n"),
            "u.csv:1: column \"name\" is named twice"
        );
        assert!(error("").starts_with("u.csv: the file is empty"));
    }

    #[test]
    fn a_record_with_another_number_of_cells_is_an_error_at_its_line() {
        assert_eq!(
            error("login,name\n1@x.test,a\n2@x.test\n"),
            "u.csv:3: this record has 1 cell(s), the header 2"
        );
        let bad = b"login,name\n1@x.test,\xff\n";
        let err = parse(bad, Path::new("u.csv")).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("u.csv:2: this record is not UTF-8 text")
        );
    }

    #[test]
    fn a_header_alone_is_no_users_and_an_empty_login_is_kept_for_the_router_to_refuse() {
        assert!(users("login,name\n").is_empty());
        let got = users("login,name\n,Nobody\n");
        assert_eq!((got[0].login.as_str(), got[0].source.line), ("", 2));
    }
}
