//! Fuzz target: `vertogw::fuzzing::upgrade_request` (its doc lists the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vertogw::fuzzing::upgrade_request(data));
