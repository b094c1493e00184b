//! A cheap classifier for incoming Verto messages: the top-level `id` and whether the
//! message is a reply (`result` / `error`) or a server request (`method`), found by one
//! scan of the bytes instead of a full JSON parse.

/// What a top-level JSON-RPC message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A reply carrying `result`.
    Result,
    /// A reply carrying `error`.
    Error,
    /// A request or notification from the server (it has `method`).
    Request,
    /// None of these keys at the top level (or not a JSON object).
    Other,
}

/// The outcome of [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// The top-level `id` when it is a non-negative integer (string ids are `None`).
    pub id: Option<u64>,
    /// What the message is.
    pub kind: Kind,
}

/// Scans a JSON-RPC text for its top-level `id` and kind. Keys inside nested objects
/// and look-alikes inside strings are ignored; the scan stops as soon as both are known.
pub fn scan(text: &[u8]) -> Scan {
    let mut out = Scan {
        id: None,
        kind: Kind::Other,
    };
    let mut depth = 0usize;
    let mut id_seen = false;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                let Some(end) = string_end(text, i + 1) else {
                    return out;
                };
                let key = &text[i + 1..end];
                i = end + 1;
                if depth != 1 {
                    continue;
                }
                let Some(colon) = skip_ws(text, i).filter(|&c| text.get(c) == Some(&b':')) else {
                    continue;
                };
                i = colon + 1;
                match key {
                    b"id" => {
                        id_seen = true;
                        out.id = skip_ws(text, i).and_then(|v| integer(&text[v..]));
                    }
                    b"result" => out.kind = Kind::Result,
                    b"error" => out.kind = Kind::Error,
                    b"method" => out.kind = Kind::Request,
                    _ => {}
                }
                if id_seen && out.kind != Kind::Other {
                    return out;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Index of the closing quote of a string whose body starts at `from`.
fn string_end(text: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let rel = text
            .get(i..)?
            .iter()
            .position(|&b| b == b'"' || b == b'\\')?;
        i += rel;
        if text[i] == b'"' {
            return Some(i);
        }
        i += 2;
    }
}

fn skip_ws(text: &[u8], from: usize) -> Option<usize> {
    let rel = text
        .get(from..)?
        .iter()
        .position(|b| !b.is_ascii_whitespace())?;
    Some(from + rel)
}

/// A non-negative integer at the start of `text`, followed by a delimiter.
fn integer(text: &[u8]) -> Option<u64> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    match text.get(digits) {
        None | Some(b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n') => {}
        _ => return None,
    }
    std::str::from_utf8(&text[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Scan {
        scan(text.as_bytes())
    }

    #[test]
    fn a_result_reply_yields_its_id() {
        let r = s(r#"{"jsonrpc":"2.0","id":42,"result":{"pad":"xx","sessid":"a"}}"#);
        assert_eq!(
            r,
            Scan {
                id: Some(42),
                kind: Kind::Result
            }
        );
    }

    #[test]
    fn the_id_may_come_after_the_result() {
        let r = s(r#"{"jsonrpc":"2.0","result":{"id":7},"id":8}"#);
        assert_eq!(
            r,
            Scan {
                id: Some(8),
                kind: Kind::Result
            }
        );
    }

    #[test]
    fn an_error_reply_is_an_error() {
        let r = s(
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Authentication Required"}}"#,
        );
        assert_eq!(
            r,
            Scan {
                id: Some(1),
                kind: Kind::Error
            }
        );
    }

    #[test]
    fn a_server_request_is_a_request_even_with_an_id() {
        let r = s(r#"{"jsonrpc":"2.0","id":32,"method":"verto.ping","params":{"serno":1}}"#);
        assert_eq!(
            r,
            Scan {
                id: Some(32),
                kind: Kind::Request
            }
        );
        let n = s(r#"{"jsonrpc":"2.0","method":"verto.clientReady","params":{}}"#);
        assert_eq!(
            n,
            Scan {
                id: None,
                kind: Kind::Request
            }
        );
    }

    #[test]
    fn keys_inside_strings_and_nested_objects_are_ignored() {
        let r =
            s(r#"{"params":{"id":5,"method":"x"},"pad":"\"id\":9,\"result\"","id":6,"result":1}"#);
        assert_eq!(
            r,
            Scan {
                id: Some(6),
                kind: Kind::Result
            }
        );
    }

    #[test]
    fn whitespace_around_colons_is_allowed() {
        let r = s("{ \"id\" : 12 , \"result\" : {} }");
        assert_eq!(
            r,
            Scan {
                id: Some(12),
                kind: Kind::Result
            }
        );
    }

    #[test]
    fn string_negative_and_fractional_ids_are_not_integers() {
        assert_eq!(s(r#"{"id":"7","result":1}"#).id, None);
        assert_eq!(s(r#"{"id":-7,"result":1}"#).id, None);
        assert_eq!(s(r#"{"id":7.5,"result":1}"#).id, None);
        assert_eq!(s(r#"{"id":99999999999999999999999,"result":1}"#).id, None);
    }

    #[test]
    fn garbage_and_truncated_text_never_panic() {
        for text in [
            "",
            "{",
            "{\"id",
            "{\"id\":",
            "{\"id\":3",
            "\"\\",
            "}}]]",
            "{\"a\":\"\\",
        ] {
            let _ = s(text);
        }
        assert_eq!(s("not json").kind, Kind::Other);
    }
}
