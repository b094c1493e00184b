//! Fuzz target: `vertogw::fuzzing::ws_frames` (its doc lists the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vertogw::fuzzing::ws_frames(data));
