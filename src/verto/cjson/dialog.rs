//! The members that tie a Verto message to a call, read as mod_verto's cJSON reads them
//! (the same reader as logins: case-insensitive keys, first match wins, escapes
//! decoded), for the gateway's count of calls in progress.

use std::borrow::Cow;

use super::{Reader, Slot, Unreadable};

/// One JSON-RPC object's call members.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DialogFields<'a> {
    /// `method`.
    pub method: Slot<'a>,
    /// The raw text of the first `id` member.
    pub id: Option<&'a str>,
    /// `params.callID`, else `params.dialogParams.callID`.
    pub call_id: Option<Cow<'a, str>>,
    /// `result.callID`.
    pub result_call_id: Option<Cow<'a, str>>,
    /// `result.message`.
    pub result_message: Option<Cow<'a, str>>,
    /// Whether an `error` member exists.
    pub is_error: bool,
}

/// Reads every object of `text` (one, or each object element of a batch).
pub fn read_dialog(text: &str) -> Result<Vec<DialogFields<'_>>, Unreadable> {
    let text = text.split('\0').next().unwrap_or_default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut r = Reader { text, pos: 0 };
    r.skip_ws();
    match r.peek() {
        Some(b'{') => r.dialog(1).map(|d| vec![d]),
        Some(b'[') => {
            r.expect(b'[')?;
            let mut all = Vec::new();
            r.skip_ws();
            if r.peek() == Some(b']') {
                return Ok(all);
            }
            loop {
                r.skip_ws();
                if r.peek() == Some(b'{') {
                    all.push(r.dialog(2)?);
                } else {
                    r.skip_value(2)?;
                }
                if !r.next_or_close(b']')? {
                    return Ok(all);
                }
            }
        }
        _ => Ok(Vec::new()),
    }
}

impl<'a> Reader<'a> {
    fn dialog(&mut self, depth: usize) -> Result<DialogFields<'a>, Unreadable> {
        let mut d = DialogFields::default();
        let mut seen = [false; 5];
        self.object(depth, |r, key| {
            let mut first = |i: usize| !std::mem::replace(&mut seen[i], true);
            if key.eq_ignore_ascii_case("method") && first(0) {
                d.method = r.slot(depth + 1)?;
            } else if key.eq_ignore_ascii_case("id") && first(1) {
                let start = r.pos;
                r.skip_value(depth + 1)?;
                d.id = Some(&r.text[start..r.pos]);
            } else if key.eq_ignore_ascii_case("params") && first(2) {
                d.call_id = r.params_call_id(depth + 1)?;
            } else if key.eq_ignore_ascii_case("result") && first(3) {
                [d.result_call_id, d.result_message] = r.result_fields(depth + 1)?;
            } else if key.eq_ignore_ascii_case("error") && first(4) {
                d.is_error = true;
                r.skip_value(depth + 1)?;
            } else {
                r.skip_value(depth + 1)?;
            }
            Ok(())
        })?;
        Ok(d)
    }

    /// The string members `names` of the object here (each first match), in order;
    /// anything but an object reads as none of them.
    fn strings<const N: usize>(
        &mut self,
        depth: usize,
        names: [&str; N],
        mut nested: impl FnMut(&mut Self, &str) -> Result<bool, Unreadable>,
    ) -> Result<[Option<Cow<'a, str>>; N], Unreadable> {
        let mut found: [Option<Cow<'a, str>>; N] = std::array::from_fn(|_| None);
        if self.peek() != Some(b'{') {
            self.skip_value(depth)?;
            return Ok(found);
        }
        let mut seen = [false; N];
        self.object(depth, |r, key| {
            if let Some(i) = names.iter().position(|n| key.eq_ignore_ascii_case(n)) {
                if !std::mem::replace(&mut seen[i], true) {
                    found[i] = r
                        .slot(depth + 1)?
                        .as_str()
                        .map(|s| Cow::Owned(s.to_owned()));
                    return Ok(());
                }
            }
            if !nested(r, &key)? {
                r.skip_value(depth + 1)?;
            }
            Ok(())
        })?;
        Ok(found)
    }

    fn params_call_id(&mut self, depth: usize) -> Result<Option<Cow<'a, str>>, Unreadable> {
        let mut dialog: Option<Cow<'a, str>> = None;
        let mut seen_dialog = false;
        let [call_id] = self.strings(depth, ["callID"], |r, key| {
            if key.eq_ignore_ascii_case("dialogParams")
                && !std::mem::replace(&mut seen_dialog, true)
            {
                let [id] = r.strings(depth + 1, ["callID"], |_, _| Ok(false))?;
                dialog = id;
                return Ok(true);
            }
            Ok(false)
        })?;
        Ok(call_id.or(dialog))
    }

    /// `result.callID` and `result.message`.
    fn result_fields(&mut self, depth: usize) -> Result<[Option<Cow<'a, str>>; 2], Unreadable> {
        self.strings(depth, ["callID", "message"], |_, _| Ok(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> DialogFields<'_> {
        match read_dialog(text) {
            Ok(mut all) if all.len() == 1 => all.remove(0),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn the_call_id_comes_from_params_then_dialog_params() {
        let d = one(
            r#"{"jsonrpc":"2.0","method":"verto.invite","params":{"dialogParams":{"callID":"a"}},"id":3}"#,
        );
        assert_eq!(
            (d.method.as_str(), d.id, d.call_id.as_deref()),
            (Some("verto.invite"), Some("3"), Some("a"))
        );
        let d = one(
            r#"{"method":"verto.attach","params":{"dialogParams":{"callID":"a"},"callID":"b"}}"#,
        );
        assert_eq!(d.call_id.as_deref(), Some("b"), "params.callID first");
    }

    #[test]
    fn keys_are_read_as_cjson_reads_them() {
        let d = one(r#"{"METHOD":"verto.\u0062ye","Params":{"CALLID":"x","callID":"y"}}"#);
        assert_eq!(
            (d.method.as_str(), d.call_id.as_deref()),
            (Some("verto.bye"), Some("x"))
        );
        let d = one(r#"{"method":1,"method":"verto.invite"}"#);
        assert_eq!(
            d.method,
            Slot::NotString,
            "a first match of another type hides the rest"
        );
    }

    #[test]
    fn replies_carry_their_call_message_and_error() {
        let d = one(r#"{"jsonrpc":"2.0","id":7,"result":{"callID":"c","message":"CALL ENDED"}}"#);
        assert_eq!(
            (
                d.result_call_id.as_deref(),
                d.result_message.as_deref(),
                d.is_error
            ),
            (Some("c"), Some("CALL ENDED"), false)
        );
        assert!(one(r#"{"id":7,"error":{"code":-32002}}"#).is_error);
    }

    #[test]
    fn every_object_of_a_batch_is_read_and_others_are_skipped() {
        let all = read_dialog(r#"[{"method":"verto.bye","params":{"callID":"a"}},1,{"method":"verto.invite","params":{"callID":"b"}}]"#)
            .unwrap_or_default();
        let ids: Vec<_> = all.iter().map(|d| d.call_id.as_deref()).collect();
        assert_eq!(ids, [Some("a"), Some("b")]);
        assert!(read_dialog(r#"{"method":"verto.bye""#).is_err());
        assert_eq!(read_dialog("\"text\""), Ok(Vec::new()));
    }
}
