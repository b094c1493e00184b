//! `[gateway] client_ip_param`: FreeSWITCH only ever sees the gateway's address, so the
//! gateway writes the browser's address into the `login` it forwards, as
//! `params.loginParams.<name>` (which mod_verto passes to the directory lookup, e.g. to
//! mod_xml_curl) and `params.userVariables.<name>` (which become the socket's, and so
//! its calls', channel variables).
//!
//! The edit is surgical: the text outside the two objects is untouched, key order
//! included, and inside them the member is appended after the others. A member of that
//! name the browser sent itself (in any letter case, as FreeSWITCH matches header names)
//! is removed first: a browser must not choose the address FreeSWITCH sees.

use std::ops::Range;

use super::cjson::{self, ObjectSpan, Unreadable};

/// The two objects the address goes into, as mod_verto names them.
const TARGETS: [&str; 2] = ["loginParams", "userVariables"];

/// `text` (a `login` request, as read by [`cjson`]) with `"<name>":"<ip>"` in
/// `params.loginParams` and `params.userVariables`, each created when missing.
/// `Err` when the message has no `params` object to put them in.
pub fn add_client_ip(text: &str, name: &str, ip: &str) -> Result<String, Unreadable> {
    // FreeSWITCH stops reading at a NUL; an edit after it would be invisible.
    if text.contains('\0') {
        return Err(Unreadable);
    }
    let start = text.len() - text.trim_start_matches('\u{feff}').len();
    let top = cjson::object_at(text, start)?;
    let params = top
        .members
        .iter()
        .find(|m| m.key.eq_ignore_ascii_case("params"))
        .ok_or(Unreadable)?;
    let params = cjson::object_at(text, params.value.start)?;
    let entry = format!("{}:{}", quoted(name), quoted(ip));
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut missing = Vec::new();
    for target in TARGETS {
        let found = params
            .members
            .iter()
            .find(|m| m.key.eq_ignore_ascii_case(target));
        let Some(member) = found else {
            missing.push(format!("{}:{{{entry}}}", quoted(target)));
            continue;
        };
        match cjson::object_at(text, member.value.start) {
            Ok(object) => edits.push(with_entry(text, &object, name, &entry)),
            // Not an object: FreeSWITCH would read nothing from it; replace it.
            Err(_) => edits.push((member.value.clone(), format!("{{{entry}}}"))),
        }
    }
    if !missing.is_empty() {
        edits.push(appended(&params, &missing.join(",")));
    }
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    let mut out = text.to_owned();
    for (range, replacement) in edits {
        out.replace_range(range, &replacement);
    }
    Ok(out)
}

/// The edit that puts `entry` into `object`, dropping members named `name`.
fn with_entry(
    text: &str,
    object: &ObjectSpan<'_>,
    name: &str,
    entry: &str,
) -> (Range<usize>, String) {
    let kept: Vec<&str> = object
        .members
        .iter()
        .filter(|m| !m.key.eq_ignore_ascii_case(name))
        .map(|m| &text[m.start..m.value.end])
        .collect();
    if kept.len() == object.members.len() {
        return appended(object, entry);
    }
    // A member to drop: rebuild this one small object, the others kept verbatim.
    let mut body = kept.join(",");
    if !body.is_empty() {
        body.push(',');
    }
    body.push_str(entry);
    (object.open..object.close + 1, format!("{{{body}}}"))
}

/// The edit that appends `members` after an object's last member.
fn appended(object: &ObjectSpan<'_>, members: &str) -> (Range<usize>, String) {
    match object.members.last() {
        Some(last) => (last.value.end..last.value.end, format!(",{members}")),
        None => (object.open + 1..object.open + 1, members.to_owned()),
    }
}

fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: &str = "198.51.100.7";

    fn add(text: &str) -> String {
        add_client_ip(text, "vertogw_client_ip", IP).unwrap_or_else(|_| panic!("{text}"))
    }

    #[test]
    fn both_objects_are_created_after_the_last_param_and_nothing_else_moves() {
        let text = r#"{ "jsonrpc":"2.0", "method":"login", "params" : { "login":"1000@a.test" , "passwd":"x" }, "id": 3 }"#;
        assert_eq!(
            add(text),
            r#"{ "jsonrpc":"2.0", "method":"login", "params" : { "login":"1000@a.test" , "passwd":"x","loginParams":{"vertogw_client_ip":"198.51.100.7"},"userVariables":{"vertogw_client_ip":"198.51.100.7"} }, "id": 3 }"#
        );
    }

    #[test]
    fn existing_objects_get_the_member_appended() {
        let text =
            r#"{"method":"login","params":{"loginParams":{"a":1},"userVariables":{},"login":"u"}}"#;
        assert_eq!(
            add(text),
            r#"{"method":"login","params":{"loginParams":{"a":1,"vertogw_client_ip":"198.51.100.7"},"userVariables":{"vertogw_client_ip":"198.51.100.7"},"login":"u"}}"#
        );
    }

    #[test]
    fn a_browser_cannot_choose_its_own_address() {
        let text = r#"{"params":{"LoginParams":{"VERTOGW_client_ip":"6.6.6.6","a":1,"vertogw_client_ip":"7.7.7.7"},"loginParams":{"x":1},"userVariables":"nope"}}"#;
        let out = add(text);
        assert_eq!(
            out,
            r#"{"params":{"LoginParams":{"a":1,"vertogw_client_ip":"198.51.100.7"},"loginParams":{"x":1},"userVariables":{"vertogw_client_ip":"198.51.100.7"}}}"#
        );
        assert!(!out.contains("6.6.6.6") && !out.contains("7.7.7.7"));
    }

    #[test]
    fn what_cannot_carry_the_address_is_an_error() {
        for text in [
            r#"{"method":"login"}"#,
            r#"{"params":"x"}"#,
            "[1]",
            "{\"params\":{}}\0",
        ] {
            assert!(add_client_ip(text, "n", IP).is_err(), "{text}");
        }
        assert_eq!(
            add_client_ip(r#"{"params":{}}"#, "n", IP).as_deref(),
            Ok(
                r#"{"params":{"loginParams":{"n":"198.51.100.7"},"userVariables":{"n":"198.51.100.7"}}}"#
            )
        );
    }
}
