//! SDP for calls without media: reading a browser's offer, answering it (RFC 3264, with
//! RFC 8843 BUNDLE and RFC 8839 ICE) and the offers the node sends.
//!
//! Text in, text out. Nothing ever flows to the ports written here, so the SDP only has
//! to satisfy a browser's `setRemoteDescription`: the right m-lines in the right order,
//! matching mids, ICE credentials, a fingerprint and a candidate.

use std::collections::HashMap;
use std::fmt::Write;

/// The address of every candidate and connection line.
const ADDRESS: &str = "127.0.0.1";

/// The msid stream id and RTCP cname of the node's one audio track.
const STREAM: &str = "vertogw-sim";

/// Audio codecs the node takes, best first.
const AUDIO_CODECS: [&str; 3] = ["opus", "PCMU", "PCMA"];

/// What differs between two SDPs the node writes.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    /// `a=ice-ufrag`.
    pub ufrag: String,
    /// `a=ice-pwd`.
    pub pwd: String,
    /// `a=fingerprint:sha-256` value.
    pub fingerprint: String,
    /// The audio port (m-line and candidate).
    pub port: u16,
    /// The `o=` session id.
    pub session_id: u64,
}

/// A session description, borrowed from its text.
#[derive(Debug)]
pub(crate) struct Sdp<'a> {
    /// Session-level attributes (the text after `a=`).
    session: Vec<&'a str>,
    /// The m-sections, in order.
    pub sections: Vec<Section<'a>>,
}

/// One m-section.
#[derive(Debug)]
pub(crate) struct Section<'a> {
    pub kind: &'a str,
    pub proto: &'a str,
    pub formats: Vec<&'a str>,
    /// Media-level attributes (the text after `a=`).
    attributes: Vec<&'a str>,
}

/// One payload type with its `rtpmap` encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Codec<'a> {
    pt: &'a str,
    /// `opus/48000/2`.
    encoding: &'a str,
}

impl Codec<'_> {
    fn name(&self) -> &str {
        self.encoding.split('/').next().unwrap_or_default()
    }

    fn clock(&self) -> &str {
        self.encoding.split('/').nth(1).unwrap_or_default()
    }
}

/// Reads an SDP: `v=0` first, every line `<letter>=<value>`, at least one m-line.
/// `None` for anything else (the captures' `"v=0"` and `"this is not sdp"`).
pub(crate) fn parse(text: &str) -> Option<Sdp<'_>> {
    let mut lines = text.lines().filter(|l| !l.is_empty());
    if lines.next()? != "v=0" {
        return None;
    }
    let mut sdp = Sdp {
        session: Vec::new(),
        sections: Vec::new(),
    };
    for line in lines {
        let (kind, value) = line.split_once('=')?;
        match kind {
            "m" => sdp.sections.push(Section::parse(value)?),
            "a" => match sdp.sections.last_mut() {
                Some(section) => section.attributes.push(value),
                None => sdp.session.push(value),
            },
            _ if kind.len() == 1 => {}
            _ => return None,
        }
    }
    (!sdp.sections.is_empty()).then_some(sdp)
}

/// The value of attribute `name` among `attributes`: the text after `name:`, or `""`
/// for a flag.
fn find<'a>(attributes: &[&'a str], name: &str) -> Option<&'a str> {
    attributes.iter().find_map(|a| match a.split_once(':') {
        Some((n, value)) if n == name => Some(value),
        None if *a == name => Some(""),
        _ => None,
    })
}

impl<'a> Sdp<'a> {
    /// The mids of the offer's `a=group:BUNDLE`, if it has one.
    fn bundle(&self) -> Option<Vec<&'a str>> {
        let group = self
            .session
            .iter()
            .find_map(|a| a.strip_prefix("group:BUNDLE"))?;
        Some(group.split_ascii_whitespace().collect())
    }

    /// A media attribute, falling back to the session level.
    fn attr(&self, section: &Section<'a>, name: &str) -> Option<&'a str> {
        section.attr(name).or_else(|| find(&self.session, name))
    }

    /// The offer's direction for `section` (`sendrecv` when it says none).
    fn direction(&self, section: &Section<'a>) -> &'a str {
        let directions = ["sendrecv", "sendonly", "recvonly", "inactive"];
        let pick = |attrs: &[&'a str]| attrs.iter().copied().find(|a| directions.contains(a));
        pick(&section.attributes)
            .or_else(|| pick(&self.session))
            .unwrap_or("sendrecv")
    }
}

impl<'a> Section<'a> {
    /// `<media> <port> <proto> <fmt> …` (the port is not needed: the answer has its own).
    fn parse(value: &'a str) -> Option<Section<'a>> {
        let mut fields = value.split_ascii_whitespace();
        let (kind, _port, proto) = (fields.next()?, fields.next()?, fields.next()?);
        let formats: Vec<&str> = fields.collect();
        (!formats.is_empty()).then_some(Section {
            kind,
            proto,
            formats,
            attributes: Vec::new(),
        })
    }

    /// The value of media attribute `name` (see [`find`]).
    pub(crate) fn attr(&self, name: &str) -> Option<&'a str> {
        find(&self.attributes, name)
    }

    /// The value of `a=<name>:<pt> <value>` for payload type `pt`.
    fn per_format(&self, name: &str, pt: &str) -> Option<&'a str> {
        self.attributes.iter().find_map(|a| {
            let (n, rest) = a.split_once(':')?;
            let (p, value) = rest.split_once(' ')?;
            (n == name && p == pt).then_some(value)
        })
    }

    /// The offered formats with their encodings (static 0 and 8 need no rtpmap). One
    /// pass over the attributes, so a hostile offer costs linear time.
    fn codecs(&self) -> Vec<Codec<'a>> {
        let rtpmaps: HashMap<&str, &str> = self
            .attributes
            .iter()
            .filter_map(|a| a.strip_prefix("rtpmap:")?.split_once(' '))
            .collect();
        let codec = |pt: &'a str| {
            let encoding = rtpmaps.get(pt).copied().or(match pt {
                "0" => Some("PCMU/8000"),
                "8" => Some("PCMA/8000"),
                _ => None,
            })?;
            Some(Codec { pt, encoding })
        };
        self.formats.iter().filter_map(|pt| codec(pt)).collect()
    }

    /// The audio codec the node answers with, and the telephone-event to keep.
    fn audio_choice(&self) -> Option<(Codec<'a>, Option<Codec<'a>>)> {
        if self.kind != "audio" || !self.proto.contains("RTP") {
            return None;
        }
        let codecs = self.codecs();
        let find = |name: &str, clock: Option<&str>| {
            codecs.iter().copied().find(|c| {
                c.name().eq_ignore_ascii_case(name) && clock.is_none_or(|k| c.clock() == k)
            })
        };
        let audio = AUDIO_CODECS.iter().find_map(|name| find(name, None))?;
        // Prefer the telephone-event of the codec's clock rate (RFC 4733 §2.1).
        let event =
            find("telephone-event", Some(audio.clock())).or_else(|| find("telephone-event", None));
        Some((audio, event))
    }
}

/// The answer direction for an offered one (RFC 3264 §6.1).
fn mirror(direction: &str) -> &'static str {
    match direction {
        "sendonly" => "recvonly",
        "recvonly" => "sendonly",
        "inactive" => "inactive",
        _ => "sendrecv",
    }
}

/// The answer: the first audio m-line with opus, PCMU or PCMA is accepted, every other
/// m-line rejected with port 0. `None` when no m-line can be accepted (the node then
/// hangs up with `INCOMPATIBLE_DESTINATION`, as FreeSWITCH does).
pub(crate) fn answer(offer: &Sdp<'_>, local: &Local) -> Option<String> {
    let (audio, (codec, event)) = offer
        .sections
        .iter()
        .enumerate()
        .find_map(|(i, s)| Some((i, s.audio_choice()?)))?;
    let section = &offer.sections[audio];
    let mut out = header(local);
    let mid = section.attr("mid");
    if let (Some(group), Some(mid)) = (offer.bundle(), mid) {
        if group.contains(&mid) {
            line(&mut out, format_args!("a=group:BUNDLE {mid}"));
        }
    }
    line(&mut out, format_args!("a=msid-semantic: WMS {STREAM}"));
    for (i, s) in offer.sections.iter().enumerate() {
        if i != audio {
            rejected(&mut out, s);
            continue;
        }
        let pts = match event {
            Some(e) => format!("{} {}", codec.pt, e.pt),
            None => codec.pt.to_owned(),
        };
        line(
            &mut out,
            format_args!("m=audio {} {} {pts}", local.port, s.proto),
        );
        line(&mut out, format_args!("c=IN IP4 {ADDRESS}"));
        if let Some(mid) = mid {
            line(&mut out, format_args!("a=mid:{mid}"));
        }
        let direction = mirror(offer.direction(s));
        let setup = match offer.attr(s, "setup") {
            Some("active") => "passive",
            _ => "active",
        };
        let muxed = s.attr("rtcp-mux").is_some();
        transport(&mut out, local, direction, setup, muxed);
        for c in [Some(codec), event].into_iter().flatten() {
            line(&mut out, format_args!("a=rtpmap:{} {}", c.pt, c.encoding));
            if let Some(fmtp) = s.per_format("fmtp", c.pt) {
                line(&mut out, format_args!("a=fmtp:{} {fmtp}", c.pt));
            }
        }
        candidates(&mut out, local, direction, muxed);
    }
    Some(out)
}

/// The node's offer for a call it places or re-attaches: one bundled audio m-line with
/// opus, PCMU, PCMA and telephone-event, `a=setup:actpass`.
pub(crate) fn offer(local: &Local) -> String {
    let mut out = header(local);
    line(&mut out, format_args!("a=group:BUNDLE 0"));
    line(&mut out, format_args!("a=msid-semantic: WMS {STREAM}"));
    let port = local.port;
    line(
        &mut out,
        format_args!("m=audio {port} UDP/TLS/RTP/SAVPF 111 0 8 110 101"),
    );
    line(&mut out, format_args!("c=IN IP4 {ADDRESS}"));
    line(&mut out, format_args!("a=mid:0"));
    transport(&mut out, local, "sendrecv", "actpass", true);
    for rtpmap in [
        "111 opus/48000/2",
        "0 PCMU/8000",
        "8 PCMA/8000",
        "110 telephone-event/48000",
        "101 telephone-event/8000",
    ] {
        line(&mut out, format_args!("a=rtpmap:{rtpmap}"));
    }
    line(
        &mut out,
        format_args!("a=fmtp:111 minptime=10;useinbandfec=1"),
    );
    line(&mut out, format_args!("a=fmtp:101 0-16"));
    candidates(&mut out, local, "sendrecv", true);
    out
}

fn line(out: &mut String, text: std::fmt::Arguments<'_>) {
    // Writing to a String cannot fail.
    let _ = out.write_fmt(text);
    out.push_str("\r\n");
}

fn header(local: &Local) -> String {
    let mut out = String::with_capacity(1024);
    line(&mut out, format_args!("v=0"));
    let id = local.session_id;
    let version = id.wrapping_add(1);
    line(
        &mut out,
        format_args!("o=FreeSWITCH {id} {version} IN IP4 {ADDRESS}"),
    );
    line(&mut out, format_args!("s=FreeSWITCH"));
    line(&mut out, format_args!("t=0 0"));
    out
}

/// A rejected m-line (RFC 3264 §6: port 0, the mid kept, one format).
fn rejected(out: &mut String, s: &Section<'_>) {
    let format = s.formats.first().copied().unwrap_or("0");
    line(out, format_args!("m={} 0 {} {format}", s.kind, s.proto));
    line(out, format_args!("c=IN IP4 0.0.0.0"));
    if let Some(mid) = s.attr("mid") {
        line(out, format_args!("a=mid:{mid}"));
    }
    if s.proto.contains("RTP") {
        line(out, format_args!("a=inactive"));
    }
}

/// Direction, track, RTCP, ICE and DTLS lines of the audio m-section.
fn transport(out: &mut String, local: &Local, direction: &str, setup: &str, muxed: bool) {
    line(out, format_args!("a={direction}"));
    if sends(direction) {
        line(out, format_args!("a=msid:{STREAM} audio"));
    }
    match muxed {
        true => line(out, format_args!("a=rtcp-mux")),
        false => {
            let rtcp = local.port.saturating_add(1);
            line(out, format_args!("a=rtcp:{rtcp} IN IP4 {ADDRESS}"));
        }
    }
    line(out, format_args!("a=ice-ufrag:{}", local.ufrag));
    line(out, format_args!("a=ice-pwd:{}", local.pwd));
    line(
        out,
        format_args!("a=fingerprint:sha-256 {}", local.fingerprint),
    );
    line(out, format_args!("a=setup:{setup}"));
}

/// The SSRC line and the host candidates (RTP, and RTCP when not multiplexed).
fn candidates(out: &mut String, local: &Local, direction: &str, muxed: bool) {
    if sends(direction) {
        // Any non-zero 32-bit value; derived from the session id so one SDP is stable.
        let ssrc = (local.session_id as u32).max(1);
        line(out, format_args!("a=ssrc:{ssrc} cname:{STREAM}"));
    }
    let port = local.port;
    line(
        out,
        format_args!("a=candidate:1 1 udp 2130706431 {ADDRESS} {port} typ host"),
    );
    if !muxed {
        let rtcp = port.saturating_add(1);
        line(
            out,
            format_args!("a=candidate:1 2 udp 2130706430 {ADDRESS} {rtcp} typ host"),
        );
    }
    line(out, format_args!("a=end-of-candidates"));
}

fn sends(direction: &str) -> bool {
    matches!(direction, "sendrecv" | "sendonly")
}

#[cfg(test)]
mod tests;
