//! The cJSON-faithful reader against the readings of FreeSWITCH's cJSON.

use super::*;

fn object(text: &str) -> Request<'_> {
    match read(text) {
        Ok(Document::Object(req)) => req,
        other => panic!("{text}: {other:?}"),
    }
}

fn login_of(text: &str) -> Option<String> {
    let req = object(text);
    let params = req.params?;
    params.login.as_str().map(str::to_owned)
}

#[test]
fn keys_match_case_insensitively_and_the_first_match_wins() {
    let req = object(
        r#"{"JsonRPC":"2.0","METHOD":"login","method":"echo","Params":{"LOGIN":"a@A","login":"b@B","PassWd":"x"},"params":{}}"#,
    );
    assert!(req.is_login());
    let params = req.params.unwrap_or_default();
    assert_eq!(params.login.as_str(), Some("a@A"));
    assert_eq!(params.passwd.as_str(), Some("x"));
}

#[test]
fn a_first_match_that_is_not_a_string_hides_later_ones() {
    let req = object(
        r#"{"jsonrpc":"2.0","method":7,"method":"login","params":{"login":1,"login":"b@B"}}"#,
    );
    assert_eq!(req.method, Slot::NotString);
    assert!(!req.is_login());
    assert_eq!(req.params.unwrap_or_default().login, Slot::NotString);
}

#[test]
fn escapes_are_decoded_in_keys_and_values() {
    let text = r#"{"jsonrpc":"2.0","\u006Dethod":"\u006cogin","params":{"log\u0069n":"\ud83d\ude00@x\/y\n"}}"#;
    let req = object(text);
    assert!(req.is_login());
    assert_eq!(login_of(text).as_deref(), Some("\u{1f600}@x/y\n"));
}

#[test]
fn whitespace_is_any_low_byte_and_trailing_text_is_ignored() {
    let text = "\u{feff}\x0b{\x01\"jsonrpc\"\x1f:\"2.0\",\"method\":\"login\"} and then garbage";
    assert!(object(text).is_login());
    assert!(object("{\"jsonrpc\":\"2.0\",\"method\":\"login\"}\0{\"method\":\"echo\"}").is_login());
}

#[test]
fn raw_control_characters_inside_strings_are_kept() {
    let text = "{\"params\":{\"login\":\"a\x01b@c\"},\"pad\":\"\x02\"}";
    assert_eq!(login_of(text).as_deref(), Some("a\x01b@c"));
}

#[test]
fn what_cjson_generations_read_differently_is_unreadable() {
    for text in [
        r#"{"method":"\login"}"#,
        r#"{"method":"log\u0000in"}"#,
        r#"{"method":"\u6c"}"#,
        r#"{"method":"\udc00"}"#,
        r#"{"method":"\ud800x"}"#,
        r#"{"method":"login"#,
        r#"{"method":"login","#,
        r#"{"method" "login"}"#,
        r#"{"a":1,}"#,
        r#"{"a":-}"#,
        r#"{"a":.5}"#,
        r#"{"a":nul}"#,
        "",
        "   ",
        "#SPU 1000",
    ] {
        assert_eq!(read(text), Err(Unreadable), "{text:?}");
    }
    let deep = format!(
        "{}1{}",
        "[".repeat(MAX_DEPTH + 1),
        "]".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(read(&format!("{{\"a\":{deep}}}")), Err(Unreadable));
    let ok = format!(
        "{}1{}",
        "[".repeat(MAX_DEPTH - 2),
        "]".repeat(MAX_DEPTH - 2)
    );
    assert!(read(&format!("{{\"a\":{ok}}}")).is_ok());
}

#[test]
fn numbers_are_read_as_strtod_reads_them() {
    for number in [
        "0", "-1", "1.5", "1.", "-.5", "1e5", "1E+5", "2e-3", "01", "10",
    ] {
        assert!(read(&format!("{{\"a\":{number}}}")).is_ok(), "{number}");
    }
    // "1e" is the number 1 followed by a stray "e": malformed inside an object.
    assert_eq!(read(r#"{"a":1e}"#), Err(Unreadable));
    assert_eq!(read("1e"), Ok(Document::Scalar));
}

#[test]
fn ids_keep_their_raw_text_and_results_are_noticed() {
    let req = object(r#"{"jsonrpc":"2.0","id":"x\"y","ID":5,"Result":null}"#);
    assert_eq!(req.id, Some(r#""x\"y""#));
    assert!(req.has_result);
}

#[test]
fn batches_read_each_object_and_mark_the_rest() {
    let Ok(Document::Array(elements)) = read(r#"[1,{"jsonrpc":"2.0","method":"login"},"s",[]]"#)
    else {
        panic!("not a batch");
    };
    assert_eq!(elements.len(), 4);
    assert!(elements[1].as_ref().is_some_and(Request::is_login));
    assert!(elements[0].is_none() && elements[2].is_none() && elements[3].is_none());
    assert_eq!(read("[]"), Ok(Document::Array(Vec::new())));
    assert_eq!(read(r#""s""#), Ok(Document::Scalar));
}

#[test]
fn params_that_are_not_an_object_read_as_empty() {
    let req = object(r#"{"params":["login"]}"#);
    assert_eq!(req.params, Some(Params::default()));
}

#[test]
fn a_login_needs_jsonrpc_2_and_no_result() {
    assert!(!object(r#"{"method":"login"}"#).is_login());
    assert!(!object(r#"{"jsonrpc":"2.0","method":"login","result":{}}"#).is_login());
    assert!(!object(r#"{"jsonrpc":"2.0","method":"Login"}"#).is_login());
}
