use super::*;

/// A Chromium offer for audio + video + a data channel, as Chromium 156 writes it after
/// ICE gathering (trimmed to a few video codecs; written by hand).
const CHROMIUM_OFFER: &str = "v=0\r\n\
o=- 4690792883059445503 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1 2\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS 5b1c1a4e-6f0e-4d55-9d07-0f7b4c9f2a11\r\n\
m=audio 51234 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 127.0.0.1\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1467250027 1 udp 2122260223 127.0.0.1 51234 typ host generation 0 network-id 1\r\n\
a=ice-ufrag:/hAM\r\n\
a=ice-pwd:XFzA+QM1mKeLW5PoBLjB98ZP\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 EA:B6:4C:9B:DB:8F:32:99:F4:E5:4E:AF:D2:C5:D1:35:15:C8:90:BC:25:BE:E6:DD:BF:6D:65:9F:6D:7E:EA:DD\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=sendrecv\r\n\
a=msid:5b1c1a4e-6f0e-4d55-9d07-0f7b4c9f2a11 08b92ff0-631e-4952-8c70-80d8609a32d8\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:2765172965 cname:8lg0IdqiPbhGR9RS\r\n\
a=ssrc:2765172965 msid:5b1c1a4e-6f0e-4d55-9d07-0f7b4c9f2a11 08b92ff0-631e-4952-8c70-80d8609a32d8\r\n\
m=video 51234 UDP/TLS/RTP/SAVPF 96 97 45 46\r\n\
c=IN IP4 127.0.0.1\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:/hAM\r\n\
a=ice-pwd:XFzA+QM1mKeLW5PoBLjB98ZP\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 EA:B6:4C:9B:DB:8F:32:99:F4:E5:4E:AF:D2:C5:D1:35:15:C8:90:BC:25:BE:E6:DD:BF:6D:65:9F:6D:7E:EA:DD\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=sendrecv\r\n\
a=msid:5b1c1a4e-6f0e-4d55-9d07-0f7b4c9f2a11 6ccc8fba-b6d5-4368-8d26-83f402a2a344\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=rtpmap:45 AV1/90000\r\n\
a=rtpmap:46 rtx/90000\r\n\
a=fmtp:46 apt=45\r\n\
a=ssrc-group:FID 1205757203 3298588089\r\n\
a=ssrc:1205757203 cname:8lg0IdqiPbhGR9RS\r\n\
a=ssrc:3298588089 cname:8lg0IdqiPbhGR9RS\r\n\
m=application 51234 UDP/DTLS/SCTP webrtc-datachannel\r\n\
c=IN IP4 127.0.0.1\r\n\
a=ice-ufrag:/hAM\r\n\
a=ice-pwd:XFzA+QM1mKeLW5PoBLjB98ZP\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 EA:B6:4C:9B:DB:8F:32:99:F4:E5:4E:AF:D2:C5:D1:35:15:C8:90:BC:25:BE:E6:DD:BF:6D:65:9F:6D:7E:EA:DD\r\n\
a=setup:actpass\r\n\
a=mid:2\r\n\
a=sctp-port:5000\r\n\
a=max-message-size:262144\r\n";

fn local() -> Local {
    Local {
        ufrag: "UfragUfragUfrag1".into(),
        pwd: "PwdPwdPwdPwdPwdPwdPwd123".into(),
        fingerprint: "AA:BB".into(),
        port: 10002,
        session_id: 0x1_0000_0007,
    }
}

fn lines(sdp: &str) -> Vec<&str> {
    assert!(sdp.ends_with("\r\n"), "every line ends with CRLF");
    sdp.split("\r\n").filter(|l| !l.is_empty()).collect()
}

#[test]
fn a_chromium_offer_gets_audio_accepted_and_video_and_data_rejected_with_their_mids() {
    let offer = parse(CHROMIUM_OFFER).unwrap();
    let answer = answer(&offer, &local()).unwrap();
    let expected = [
        "v=0",
        "o=FreeSWITCH 4294967303 4294967304 IN IP4 127.0.0.1",
        "s=FreeSWITCH",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic: WMS vertogw-sim",
        "m=audio 10002 UDP/TLS/RTP/SAVPF 111 110",
        "c=IN IP4 127.0.0.1",
        "a=mid:0",
        "a=sendrecv",
        "a=msid:vertogw-sim audio",
        "a=rtcp-mux",
        "a=ice-ufrag:UfragUfragUfrag1",
        "a=ice-pwd:PwdPwdPwdPwdPwdPwdPwd123",
        "a=fingerprint:sha-256 AA:BB",
        "a=setup:active",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:110 telephone-event/48000",
        "a=ssrc:7 cname:vertogw-sim",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 10002 typ host",
        "a=end-of-candidates",
        "m=video 0 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=inactive",
        "m=application 0 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=mid:2",
    ];
    assert_eq!(lines(&answer), expected);
    // The answer is itself readable, with the offer's m-lines in the offer's order.
    let reread = parse(&answer).unwrap();
    let kinds: Vec<&str> = reread.sections.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, ["audio", "video", "application"]);
}

#[test]
fn without_opus_pcmu_is_chosen_with_the_8000_hz_telephone_event() {
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
                 m=audio 4000 RTP/SAVPF 9 0 8 126 110\r\na=rtpmap:9 G722/8000\r\n\
                 a=rtpmap:126 telephone-event/8000\r\na=rtpmap:110 telephone-event/48000\r\n\
                 a=sendonly\r\na=setup:active\r\n";
    let answer = answer(&parse(offer).unwrap(), &local()).unwrap();
    let lines = lines(&answer);
    assert!(lines.contains(&"m=audio 10002 RTP/SAVPF 0 126"), "{answer}");
    assert!(lines.contains(&"a=rtpmap:0 PCMU/8000"));
    assert!(lines.contains(&"a=recvonly"), "sendonly is mirrored");
    assert!(
        lines.contains(&"a=setup:passive"),
        "an active offerer gets passive"
    );
    assert!(
        !answer.contains("a=msid:"),
        "a recvonly answer sends no track"
    );
    assert!(!answer.contains("a=mid:") && !answer.contains("a=group:"));
    // No rtcp-mux offered: a separate RTCP port and its candidate.
    assert!(lines.contains(&"a=rtcp:10003 IN IP4 127.0.0.1"));
    assert!(lines.contains(&"a=candidate:1 2 udp 2130706430 127.0.0.1 10003 typ host"));
}

#[test]
fn static_pcma_needs_no_rtpmap_and_telephone_event_is_optional() {
    let offer = "v=0\r\ns=-\r\nm=audio 4000 RTP/AVP 8\r\na=inactive\r\n";
    let answer = answer(&parse(offer).unwrap(), &local()).unwrap();
    assert!(answer.contains("m=audio 10002 RTP/AVP 8\r\n"), "{answer}");
    assert!(answer.contains("a=rtpmap:8 PCMA/8000\r\n"));
    assert!(answer.contains("a=inactive\r\n"));
}

#[test]
fn a_session_level_direction_and_setup_apply_to_the_audio_m_line() {
    let offer = "v=0\r\na=recvonly\r\na=setup:actpass\r\nm=audio 4000 RTP/SAVPF 0\r\n";
    let answer = answer(&parse(offer).unwrap(), &local()).unwrap();
    assert!(answer.contains("a=sendonly\r\n"), "{answer}");
    assert!(answer.contains("a=setup:active\r\n"));
}

#[test]
fn only_the_first_usable_audio_m_line_is_accepted() {
    let offer = "v=0\r\na=group:BUNDLE a b c\r\n\
                 m=audio 1 RTP/SAVPF 9\r\na=mid:a\r\na=rtpmap:9 G722/8000\r\n\
                 m=audio 1 RTP/SAVPF 0\r\na=mid:b\r\n\
                 m=audio 1 RTP/SAVPF 0\r\na=mid:c\r\n";
    let answer = answer(&parse(offer).unwrap(), &local()).unwrap();
    let m_lines: Vec<&str> = lines(&answer)
        .into_iter()
        .filter(|l| l.starts_with("m="))
        .collect();
    assert_eq!(
        m_lines,
        [
            "m=audio 0 RTP/SAVPF 9",
            "m=audio 10002 RTP/SAVPF 0",
            "m=audio 0 RTP/SAVPF 0"
        ]
    );
    assert!(answer.contains("a=group:BUNDLE b\r\n"), "{answer}");
}

#[test]
fn an_offer_without_a_usable_audio_codec_gets_no_answer() {
    let video_only = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
    assert!(answer(&parse(video_only).unwrap(), &local()).is_none());
    let g722_only = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 9\r\na=rtpmap:9 G722/8000\r\n";
    assert!(answer(&parse(g722_only).unwrap(), &local()).is_none());
}

#[test]
fn text_that_is_not_sdp_is_not_read() {
    for text in [
        "",
        "v=0",
        "v=0\r\n",
        "this is not sdp",
        "v=1\r\nm=audio 1 RTP/AVP 0\r\n",
        "v=0\r\nm=audio 1 RTP/AVP\r\n",
        "v=0\r\nnot a line\r\nm=audio 1 RTP/AVP 0\r\n",
        "v=0\r\nxx=1\r\nm=audio 1 RTP/AVP 0\r\n",
    ] {
        assert!(parse(text).is_none(), "{text:?}");
    }
    assert!(
        parse("v=0\nm=audio 1 RTP/AVP 0\n").is_some(),
        "LF-only lines are fine"
    );
}

#[test]
fn the_node_offer_is_a_bundled_actpass_audio_offer_with_a_candidate() {
    let offer = offer(&local());
    let lines = lines(&offer);
    for expected in [
        "a=group:BUNDLE 0",
        "m=audio 10002 UDP/TLS/RTP/SAVPF 111 0 8 110 101",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=ice-ufrag:UfragUfragUfrag1",
        "a=ice-pwd:PwdPwdPwdPwdPwdPwdPwd123",
        "a=fingerprint:sha-256 AA:BB",
        "a=setup:actpass",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:101 telephone-event/8000",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 10002 typ host",
        "a=end-of-candidates",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected} missing from\n{offer}"
        );
    }
    // The node can answer its own offer: it is what a browser's answer mirrors.
    let reread = parse(&offer).unwrap();
    let echoed = answer(&reread, &local()).unwrap();
    assert!(
        echoed.contains("m=audio 10002 UDP/TLS/RTP/SAVPF 111 110\r\n"),
        "{echoed}"
    );
}

#[test]
fn a_hostile_offer_of_the_largest_message_is_read_in_linear_time() {
    // 999,999 bytes: 150,000 payload types without rtpmap, then 100,000 attributes.
    let formats = " 96".repeat(150_000);
    let mut offer = format!("v=0\r\nm=audio 1 RTP/SAVPF{formats}\r\n");
    while offer.len() + 7 < crate::MAX_MESSAGE_BYTES {
        offer.push_str("a=x:1\r\n");
    }
    offer.push_str("a=rtpmap:0 PCMU/8000\r\n");
    let started = std::time::Instant::now();
    let parsed = parse(&offer).unwrap();
    assert!(
        answer(&parsed, &local()).is_none(),
        "96 has no rtpmap, 0 is not offered"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
