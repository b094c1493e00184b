//! One directory XML file as the few things the walker needs: the elements that open
//! and close scopes, their attributes (raw: `$${…}` is resolved later), and includes.
//! Parsed by quick-xml; attribute values unescaped, positions turned into lines.

use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::DirectoryError;

/// An element the walker cares about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tag {
    /// `<domain name=…>`.
    Domain { name: String },
    /// `<group>`.
    Group,
    /// `<user id=…>`; `pointer` for `type="pointer"` (a group's reference to a user
    /// defined elsewhere).
    User { id: String, pointer: bool },
    /// `<params>`.
    Params,
    /// `<variables>`.
    Variables,
    /// `<param name=… value=…>` or `<variable name=… value=…>`.
    Setting { name: String, value: String },
    /// `<X-PRE-PROCESS cmd="include" data=…>`.
    Include { data: String },
    /// `<include>`: transparent, as FreeSWITCH drops it when it splices a file in.
    Transparent,
    /// Anything else (`groups`, `users`, `gateways`, other pre-processing commands, …).
    Other,
}

/// A start tag (with `line`, 1-based) or an end tag; an empty element is both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Item {
    Open { tag: Tag, line: u64 },
    Close,
}

/// The items of `text`, read from `file`.
pub(super) fn items(text: &str, file: &Path) -> Result<Vec<Item>, DirectoryError> {
    let lines = LineIndex::new(text);
    let mut reader = Reader::from_str(text);
    let mut items = Vec::new();
    let mut depth = 0usize;
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event().map_err(|e| DirectoryError::Xml {
            file: file.into(),
            line: lines.line(reader.error_position()),
            reason: e.to_string(),
        })?;
        let line = lines.line(at);
        let bad = |reason: String| DirectoryError::Xml {
            file: file.into(),
            line,
            reason,
        };
        match event {
            Event::Start(start) => {
                depth += 1;
                let tag = tag(&start).map_err(bad)?;
                items.push(Item::Open { tag, line });
            }
            Event::Empty(start) => {
                let tag = tag(&start).map_err(bad)?;
                items.extend([Item::Open { tag, line }, Item::Close]);
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                items.push(Item::Close);
            }
            Event::Eof if depth > 0 => {
                return Err(bad(format!("{depth} element(s) are not closed")));
            }
            Event::Eof => return Ok(items),
            _ => {}
        }
    }
}

fn tag(start: &BytesStart<'_>) -> Result<Tag, String> {
    let attr = |name: &str| attribute(start, name);
    let required = |name: &str, element: &str| {
        attr(name)?.ok_or_else(|| format!("<{element}> without {name}=\"…\""))
    };
    Ok(match start.name().as_ref() {
        b"domain" => Tag::Domain {
            name: required("name", "domain")?,
        },
        b"group" => Tag::Group,
        b"user" => Tag::User {
            id: required("id", "user")?,
            pointer: attr("type")?.is_some_and(|t| t.eq_ignore_ascii_case("pointer")),
        },
        b"params" => Tag::Params,
        b"variables" => Tag::Variables,
        b"param" | b"variable" => {
            let element = String::from_utf8_lossy(start.name().as_ref()).into_owned();
            Tag::Setting {
                name: required("name", &element)?,
                value: attr("value")?.unwrap_or_default(),
            }
        }
        b"X-PRE-PROCESS" => match attr("cmd")? {
            Some(cmd) if cmd.eq_ignore_ascii_case("include") => Tag::Include {
                data: required("data", "X-PRE-PROCESS cmd=\"include\"")?,
            },
            _ => Tag::Other,
        },
        b"include" => Tag::Transparent,
        _ => Tag::Other,
    })
}

/// The unescaped value of attribute `name`, if present.
fn attribute(start: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    let found = start.try_get_attribute(name).map_err(|e| e.to_string())?;
    let Some(attr) = found else {
        return Ok(None);
    };
    match attr.normalized_value(XmlVersion::Implicit1_0) {
        Ok(value) => Ok(Some(value.into_owned())),
        Err(e) => Err(format!("attribute {name}: {e}")),
    }
}

/// Byte offsets of line starts, to turn positions into 1-based lines.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let starts = text.match_indices('\n').map(|(i, _)| i + 1);
        LineIndex(std::iter::once(0).chain(starts).collect())
    }

    fn line(&self, offset: u64) -> u64 {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let line = self.0.partition_point(|&start| start <= offset);
        u64::try_from(line).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Item>, String> {
        items(text, Path::new("d.xml")).map_err(|e| e.to_string())
    }

    #[test]
    fn elements_become_items_with_their_lines_and_unescaped_values() {
        let text = "<include>\n  <domain name=\"$${domain}\">\n    <user id=\"a&amp;b\" type=\"pointer\"/>\n\
                    <X-PRE-PROCESS cmd=\"include\" data=\"default/*.xml\"/></domain>\n</include>\n";
        let got = parse(text).unwrap_or_else(|e| panic!("{e}"));
        let open = |tag, line| Item::Open { tag, line };
        assert_eq!(
            got,
            [
                open(Tag::Transparent, 1),
                open(
                    Tag::Domain {
                        name: "$${domain}".into()
                    },
                    2
                ),
                open(
                    Tag::User {
                        id: "a&b".into(),
                        pointer: true
                    },
                    3
                ),
                Item::Close,
                open(
                    Tag::Include {
                        data: "default/*.xml".into()
                    },
                    4
                ),
                Item::Close,
                Item::Close,
                Item::Close,
            ]
        );
    }

    #[test]
    fn malformed_xml_and_missing_attributes_are_errors_at_their_line() {
        let err = parse("<include>\n<domain name=\"x\">\n</include>\n").unwrap_err();
        assert!(err.starts_with("d.xml:3: "), "{err}");
        let err = parse("<include>\n\n<user/>\n</include>").unwrap_err();
        assert_eq!(err, "d.xml:3: <user> without id=\"…\"");
        let err = parse("<include>\n<domain name=\"x\">").unwrap_err();
        assert!(err.contains("not closed"), "{err}");
    }
}
