//! Reads a browser message the way mod_verto's cJSON does, so the gateway and
//! FreeSWITCH never disagree about whether a message is a `login`, or for whom.
//!
//! What cJSON does, and so what this does:
//! - the text ends at the first NUL byte (cJSON reads a C string);
//! - any byte up to 0x20 is whitespace, a UTF-8 byte-order mark may open the text, and
//!   whatever follows the first complete value is ignored;
//! - object keys are looked up case-insensitively (ASCII) and the first match wins,
//!   later duplicates are never seen;
//! - a member read as a string (`method`, `jsonrpc`, `login`, `passwd`) counts only when
//!   the first match is a string: a first match of another type hides every later one;
//! - escapes are decoded, `\uXXXX` with surrogate pairs; raw control characters may
//!   appear inside strings.
//!
//! Two cJSON generations differ on malformed input (unknown escapes such as `\l`, short
//! `\u` escapes, `\u0000`, unterminated strings, nesting depth). This reader refuses all
//! of those with [`Unreadable`], and callers treat an unreadable message that could be a
//! login as hostile: a message is then never read as "not a login" by the gateway while
//! some FreeSWITCH reads it as one.

use std::borrow::Cow;

mod dialog;

pub use dialog::{read_dialog, DialogFields};

/// Deepest nesting read; deeper documents are [`Unreadable`] (Verto needs fewer than 10).
pub const MAX_DEPTH: usize = 64;

/// The text is not JSON as every cJSON generation reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable;

/// What a lookup of a string member finds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Slot<'a> {
    /// No member of that name.
    #[default]
    Absent,
    /// The first member of that name is not a string (cJSON then returns NULL).
    NotString,
    /// The first member of that name, decoded.
    Str(Cow<'a, str>),
}

impl Slot<'_> {
    /// The string, if the first match was one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Slot::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The string when present and non-empty (mod_verto's `zstr` test).
    pub fn non_empty(&self) -> Option<&str> {
        self.as_str().filter(|s| !s.is_empty())
    }
}

/// The members of `params` that decide authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params<'a> {
    /// `params.login`.
    pub login: Slot<'a>,
    /// `params.passwd` (never logged, never kept beyond classification).
    pub passwd: Slot<'a>,
    /// `params.sessid`: the browser's session id, which sticky routing keys on.
    pub sessid: Slot<'a>,
}

/// One JSON-RPC object as mod_verto's `process_jrpc` sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request<'a> {
    /// `jsonrpc`.
    pub jsonrpc: Slot<'a>,
    /// `method`.
    pub method: Slot<'a>,
    /// The raw text of the first `id` member (echoed in replies).
    pub id: Option<&'a str>,
    /// Whether a `result` member exists (mod_verto then ignores the message).
    pub has_result: bool,
    /// The first `params` member: `None` when absent; a non-object reads as empty.
    pub params: Option<Params<'a>>,
}

impl Request<'_> {
    /// Whether mod_verto runs its login (authentication) path for this object: a
    /// `"jsonrpc":"2.0"` request, not a response, whose `method` is exactly `login`.
    pub fn is_login(&self) -> bool {
        self.jsonrpc.as_str() == Some("2.0")
            && !self.has_result
            && self.method.as_str() == Some("login")
    }
}

/// A whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document<'a> {
    /// An object.
    Object(Request<'a>),
    /// A batch: one entry per element, `None` for an element that is not an object.
    Array(Vec<Option<Request<'a>>>),
    /// A string, number, boolean or null.
    Scalar,
}

/// Reads `text` as cJSON would.
pub fn read(text: &str) -> Result<Document<'_>, Unreadable> {
    let text = text.split('\0').next().unwrap_or_default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut r = Reader { text, pos: 0 };
    r.skip_ws();
    match r.peek() {
        Some(b'{') => r.request(1).map(Document::Object),
        Some(b'[') => r.batch(),
        _ => r.skip_value(1).map(|()| Document::Scalar),
    }
}

/// Where one member of an object sits in the text (byte offsets).
#[derive(Debug, Clone)]
pub(super) struct MemberSpan<'a> {
    /// The decoded key.
    pub key: Cow<'a, str>,
    /// Where the member starts (its key's opening quote).
    pub start: usize,
    /// Its value.
    pub value: std::ops::Range<usize>,
}

/// An object's members in order, and where its braces are.
#[derive(Debug, Clone)]
pub(super) struct ObjectSpan<'a> {
    /// The `{`.
    pub open: usize,
    /// The `}`.
    pub close: usize,
    /// The members, duplicates included.
    pub members: Vec<MemberSpan<'a>>,
}

/// The object that starts at byte `at` of `text` (whitespace before it skipped), read
/// like [`read`] reads it, with where each member is.
pub(super) fn object_at(text: &str, at: usize) -> Result<ObjectSpan<'_>, Unreadable> {
    let mut r = Reader { text, pos: at };
    r.object_span(1)
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b <= b' ') {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), Unreadable> {
        self.skip_ws();
        if self.peek() != Some(byte) {
            return Err(Unreadable);
        }
        self.pos += 1;
        Ok(())
    }

    /// After a member or element: `true` on `,`, `false` on `close`.
    fn next_or_close(&mut self, close: u8) -> Result<bool, Unreadable> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(Unreadable),
        }
    }

    /// `{` … `}` calling `member(key, reader)` for each member, in order.
    fn object(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Result<(), Unreadable>,
    ) -> Result<(), Unreadable> {
        if depth > MAX_DEPTH {
            return Err(Unreadable);
        }
        self.expect(b'{')?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            self.expect(b':')?;
            self.skip_ws();
            member(self, key)?;
            if !self.next_or_close(b'}')? {
                return Ok(());
            }
        }
    }

    fn object_span(&mut self, depth: usize) -> Result<ObjectSpan<'a>, Unreadable> {
        if depth > MAX_DEPTH {
            return Err(Unreadable);
        }
        self.skip_ws();
        let open = self.pos;
        self.expect(b'{')?;
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(ObjectSpan {
                open,
                close: self.pos - 1,
                members,
            });
        }
        loop {
            self.skip_ws();
            let start = self.pos;
            let key = self.string()?;
            self.expect(b':')?;
            self.skip_ws();
            let value_start = self.pos;
            self.skip_value(depth + 1)?;
            members.push(MemberSpan {
                key,
                start,
                value: value_start..self.pos,
            });
            if !self.next_or_close(b'}')? {
                return Ok(ObjectSpan {
                    open,
                    close: self.pos - 1,
                    members,
                });
            }
        }
    }

    fn request(&mut self, depth: usize) -> Result<Request<'a>, Unreadable> {
        let mut req = Request::default();
        let (mut seen_jsonrpc, mut seen_method, mut seen_id, mut seen_params) =
            (false, false, false, false);
        self.object(depth, |r, key| {
            let first = |seen: &mut bool| !std::mem::replace(seen, true);
            if key.eq_ignore_ascii_case("jsonrpc") && first(&mut seen_jsonrpc) {
                req.jsonrpc = r.slot(depth + 1)?;
            } else if key.eq_ignore_ascii_case("method") && first(&mut seen_method) {
                req.method = r.slot(depth + 1)?;
            } else if key.eq_ignore_ascii_case("id") && first(&mut seen_id) {
                let start = r.pos;
                r.skip_value(depth + 1)?;
                req.id = Some(&r.text[start..r.pos]);
            } else if key.eq_ignore_ascii_case("params") && first(&mut seen_params) {
                req.params = Some(r.params(depth + 1)?);
            } else {
                req.has_result |= key.eq_ignore_ascii_case("result");
                r.skip_value(depth + 1)?;
            }
            Ok(())
        })?;
        Ok(req)
    }

    fn params(&mut self, depth: usize) -> Result<Params<'a>, Unreadable> {
        let mut params = Params::default();
        if self.peek() != Some(b'{') {
            self.skip_value(depth)?;
            return Ok(params);
        }
        let (mut seen_login, mut seen_passwd, mut seen_sessid) = (false, false, false);
        self.object(depth, |r, key| {
            let first = |seen: &mut bool| !std::mem::replace(seen, true);
            if key.eq_ignore_ascii_case("login") && first(&mut seen_login) {
                params.login = r.slot(depth + 1)?;
            } else if key.eq_ignore_ascii_case("passwd") && first(&mut seen_passwd) {
                params.passwd = r.slot(depth + 1)?;
            } else if key.eq_ignore_ascii_case("sessid") && first(&mut seen_sessid) {
                params.sessid = r.slot(depth + 1)?;
            } else {
                r.skip_value(depth + 1)?;
            }
            Ok(())
        })?;
        Ok(params)
    }

    fn batch(&mut self) -> Result<Document<'a>, Unreadable> {
        self.expect(b'[')?;
        let mut elements = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Document::Array(elements));
        }
        loop {
            self.skip_ws();
            if self.peek() == Some(b'{') {
                elements.push(Some(self.request(2)?));
            } else {
                self.skip_value(2)?;
                elements.push(None);
            }
            if !self.next_or_close(b']')? {
                return Ok(Document::Array(elements));
            }
        }
    }

    /// A member's value read as a string lookup would see it.
    fn slot(&mut self, depth: usize) -> Result<Slot<'a>, Unreadable> {
        if self.peek() == Some(b'"') {
            return self.string().map(Slot::Str);
        }
        self.skip_value(depth)?;
        Ok(Slot::NotString)
    }

    /// Any value, checked but not kept.
    fn skip_value(&mut self, depth: usize) -> Result<(), Unreadable> {
        if depth > MAX_DEPTH {
            return Err(Unreadable);
        }
        self.skip_ws();
        let rest = &self.text.as_bytes()[self.pos..];
        for literal in [&b"null"[..], b"false", b"true"] {
            if rest.starts_with(literal) {
                self.pos += literal.len();
                return Ok(());
            }
        }
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.pos += 1;
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if !self.next_or_close(b']')? {
                        return Ok(());
                    }
                }
            }
            Some(b'{') => self.object(depth, |r, _| r.skip_value(depth + 1)),
            _ => Err(Unreadable),
        }
    }

    /// What `strtod` accepts at a number's start: sign, digits with an optional
    /// fraction (at least one digit in all), and an exponent only when it has digits.
    fn number(&mut self) -> Result<(), Unreadable> {
        let bytes = self.text.as_bytes();
        let digits = |mut i: usize| {
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let mut i = self.pos + usize::from(bytes.get(self.pos) == Some(&b'-'));
        let int_end = digits(i);
        let mut mantissa = int_end - i;
        i = int_end;
        if bytes.get(i) == Some(&b'.') {
            let frac_end = digits(i + 1);
            mantissa += frac_end - (i + 1);
            i = frac_end;
        }
        if mantissa == 0 {
            return Err(Unreadable);
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(bytes.get(i + 1), Some(b'+' | b'-')));
            let exp_end = digits(i + 1 + sign);
            if exp_end > i + 1 + sign {
                i = exp_end;
            }
        }
        self.pos = i;
        Ok(())
    }

    /// A string, decoded; the strict escape set of current cJSON.
    fn string(&mut self) -> Result<Cow<'a, str>, Unreadable> {
        if self.peek() != Some(b'"') {
            return Err(Unreadable);
        }
        let start = self.pos + 1;
        let body = &self.text[start..];
        let close = body.find(['"', '\\']).ok_or(Unreadable)?;
        if body.as_bytes()[close] == b'"' {
            self.pos = start + close + 1;
            return Ok(Cow::Borrowed(&body[..close]));
        }
        let mut out = String::from(&body[..close]);
        let mut chars = body[close..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = start + close + i + 1;
                    return Ok(Cow::Owned(out));
                }
                '\\' => {
                    let decoded = match chars.next().map(|(_, e)| e) {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('/') => '/',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('u') => unicode_escape(&mut chars)?,
                        _ => return Err(Unreadable),
                    };
                    out.push(decoded);
                }
                c => out.push(c),
            }
        }
        Err(Unreadable)
    }
}

/// The character of `\uXXXX` (the `\u` already read), a surrogate pair included.
fn unicode_escape(chars: &mut std::str::CharIndices<'_>) -> Result<char, Unreadable> {
    let first = hex4(chars)?;
    let code = match first {
        // `\u0000` ends a C string in one cJSON and is dropped by another.
        0 | 0xDC00..=0xDFFF => return Err(Unreadable),
        0xD800..=0xDBFF => {
            let (Some((_, '\\')), Some((_, 'u'))) = (chars.next(), chars.next()) else {
                return Err(Unreadable);
            };
            let low = hex4(chars)?;
            if !(0xDC00..=0xDFFF).contains(&low) {
                return Err(Unreadable);
            }
            0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
        }
        code => code,
    };
    char::from_u32(code).ok_or(Unreadable)
}

fn hex4(chars: &mut std::str::CharIndices<'_>) -> Result<u32, Unreadable> {
    let mut value = 0;
    for _ in 0..4 {
        let digit = chars
            .next()
            .and_then(|(_, c)| c.to_digit(16))
            .ok_or(Unreadable)?;
        value = value * 16 + digit;
    }
    Ok(value)
}

#[cfg(test)]
mod tests;
