//! A second, independent reading of strict JSON (serde_json, members kept in order with
//! duplicates), and what mod_verto's lookups find in it: the oracle the login reader is
//! compared with wherever both read a message.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::verto::cjson::{Document, Params, Request, Slot, MAX_DEPTH};

/// A JSON value with object members in text order, duplicates kept.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Nesting depth, a scalar being 0.
    fn depth(&self) -> usize {
        match self {
            Json::Array(items) => 1 + items.iter().map(Json::depth).max().unwrap_or(0),
            Json::Object(members) => 1 + members.iter().map(|(_, v)| v.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Whether a key or string anywhere holds a NUL, which strict JSON allows as
    /// `\u0000` and the reader refuses on purpose.
    fn has_nul(&self) -> bool {
        match self {
            Json::String(s) => s.contains('\0'),
            Json::Array(items) => items.iter().any(Json::has_nul),
            Json::Object(members) => members.iter().any(|(k, v)| k.contains('\0') || v.has_nul()),
            _ => false,
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v as f64))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v as f64))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Number(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, Json>()? {
            members.push(member);
        }
        Ok(Json::Object(members))
    }
}

/// Where `text` is strict JSON that the reader must read alike (no NUL, not nested
/// beyond the reader's depth), checks that `doc`, the reader's result, finds the same
/// members: case-insensitive keys, first match wins, strings only where one is wanted.
pub(super) fn agrees_with_reader(text: &str, doc: &Document<'_>) {
    let Ok(json) = serde_json::from_str::<Json>(text) else {
        return;
    };
    if json.has_nul() || json.depth() + 2 > MAX_DEPTH {
        return;
    }
    match (&json, doc) {
        (Json::Object(members), Document::Object(req)) => same_request(members, req),
        (Json::Array(items), Document::Array(elements)) => {
            assert_eq!(items.len(), elements.len(), "batch length");
            for (item, element) in items.iter().zip(elements) {
                match (item, element) {
                    (Json::Object(members), Some(req)) => same_request(members, req),
                    (Json::Object(_), None) | (_, Some(_)) => {
                        panic!("batch element {item:?} read as {element:?}")
                    }
                    (_, None) => {}
                }
            }
        }
        (Json::Object(_) | Json::Array(_), _) | (_, Document::Object(_) | Document::Array(_)) => {
            panic!("{json:?} read as {doc:?}")
        }
        _ => {}
    }
}

fn same_request(members: &[(String, Json)], req: &Request<'_>) {
    assert_eq!(req.jsonrpc, slot(members, "jsonrpc"), "jsonrpc");
    assert_eq!(req.method, slot(members, "method"), "method");
    let id = req.id.map(|raw| {
        serde_json::from_str::<Json>(raw)
            .unwrap_or_else(|e| panic!("the raw id {raw:?} is no JSON value: {e}"))
    });
    assert_eq!(id.as_ref(), lookup(members, "id"), "id");
    let has_result = members
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("result"));
    assert_eq!(req.has_result, has_result, "result");
    let params = lookup(members, "params").map(|p| match p {
        Json::Object(inner) => Params {
            login: slot(inner, "login"),
            passwd: slot(inner, "passwd"),
            sessid: slot(inner, "sessid"),
        },
        _ => Params::default(),
    });
    assert_eq!(req.params, params, "params");
}

/// The first member whose key equals `name` ignoring ASCII case, as cJSON finds it.
fn lookup<'j>(members: &'j [(String, Json)], name: &str) -> Option<&'j Json> {
    members
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// What cJSON's string lookup of `name` gives.
fn slot<'a>(members: &[(String, Json)], name: &str) -> Slot<'a> {
    match lookup(members, name) {
        None => Slot::Absent,
        Some(Json::String(s)) => Slot::Str(s.clone().into()),
        Some(_) => Slot::NotString,
    }
}

/// Where `text` and its stamped version `out` are strict JSON: in the first `params`,
/// the first `loginParams` and `userVariables` objects (FreeSWITCH's lookups) each hold
/// `name` only with the value `ip`, in any letter case of `name`.
pub(super) fn stamped_address(text: &str, out: &str, name: &str, ip: &str) {
    if serde_json::from_str::<Json>(text).is_err() {
        return;
    }
    let json = serde_json::from_str::<Json>(out)
        .unwrap_or_else(|e| panic!("stamping made strict JSON invalid ({e}): {out:?}"));
    let Json::Object(top) = &json else {
        panic!("stamped text is no object: {out:?}");
    };
    let Some(Json::Object(params)) = lookup(top, "params") else {
        panic!("stamped login has no params object: {out:?}");
    };
    for target in ["loginParams", "userVariables"] {
        let Some(Json::Object(members)) = lookup(params, target) else {
            panic!("stamped login has no {target} object: {out:?}");
        };
        let values: Vec<&Json> = members
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(values, [&Json::String(ip.to_owned())], "{target}: {out:?}");
    }
}
