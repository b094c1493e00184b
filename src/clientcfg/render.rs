//! The JSON bytes of the output: one config per login (keys in the order of the Verto
//! demo's config file), `index.json`, and the single object printed without `--out`.
//! Pretty-printed, sorted by login, no timestamps: the same input gives the same bytes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Document, Field, Output, INDEX_FILE};

/// One file to write.
#[derive(Clone, PartialEq, Eq)]
pub struct OutFile {
    /// Its name inside the output folder.
    pub name: String,
    /// Its content.
    pub bytes: Vec<u8>,
    /// It holds a password: readable by its owner only (mode 0600).
    pub secret: bool,
}

impl std::fmt::Debug for OutFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bytes may hold a password.
        f.debug_struct("OutFile")
            .field("name", &self.name)
            .field("bytes", &self.bytes.len())
            .field("secret", &self.secret)
            .finish()
    }
}

/// A client config; the field order is the output's key order.
#[derive(Serialize)]
struct ClientJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cid: Option<&'a str>,
    #[serde(rename = "textTo", skip_serializing_if = "Option::is_none")]
    text_to: Option<&'a str>,
    login: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    autologin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    autocall: Option<&'a str>,
    #[serde(rename = "wsURL")]
    ws_url: &'a str,
    #[serde(rename = "wsFallbackURL", skip_serializing_if = "Option::is_none")]
    ws_fallback_url: Option<&'a str>,
}

impl<'a> ClientJson<'a> {
    fn of(doc: &'a Document) -> ClientJson<'a> {
        let get = |field| doc.fields.get(field);
        ClientJson {
            extension: get(Field::Extension),
            name: get(Field::Name),
            email: get(Field::Email),
            cid: get(Field::Cid),
            text_to: get(Field::TextTo),
            login: &doc.login,
            password: get(Field::Password),
            autologin: get(Field::Autologin),
            autocall: get(Field::Autocall),
            ws_url: &doc.urls.ws_url,
            ws_fallback_url: doc.urls.fallback_url.as_deref(),
        }
    }
}

/// One entry of `index.json`: never a password.
#[derive(Serialize)]
struct IndexJson<'a> {
    file: &'a str,
    partition: &'a str,
    #[serde(rename = "wsURL")]
    ws_url: &'a str,
}

/// Pretty JSON and a final newline; serializing these maps and structs of strings
/// cannot fail, so a failure yields what was written (nothing).
fn pretty(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

impl Output {
    /// Each login's config file, then `index.json`.
    pub fn files(&self) -> Vec<OutFile> {
        let mut files: Vec<OutFile> = self
            .documents
            .iter()
            .map(|doc| OutFile {
                name: doc.file.clone(),
                bytes: pretty(&ClientJson::of(doc)),
                secret: doc.fields.get(Field::Password).is_some(),
            })
            .collect();
        files.push(OutFile {
            name: INDEX_FILE.to_owned(),
            bytes: self.index(),
            secret: false,
        });
        files
    }

    /// `index.json`: login → `{"file","partition","wsURL"}`, sorted by login.
    pub fn index(&self) -> Vec<u8> {
        let index: BTreeMap<&str, IndexJson<'_>> = self
            .documents
            .iter()
            .map(|doc| {
                let entry = IndexJson {
                    file: &doc.file,
                    partition: &doc.partition,
                    ws_url: &doc.urls.ws_url,
                };
                (doc.login.as_str(), entry)
            })
            .collect();
        pretty(&index)
    }

    /// One object login → config, sorted by login (what is printed without `--out`).
    pub fn combined(&self) -> Vec<u8> {
        let all: BTreeMap<&str, ClientJson<'_>> = self
            .documents
            .iter()
            .map(|doc| (doc.login.as_str(), ClientJson::of(doc)))
            .collect();
        pretty(&all)
    }
}
