//! Fuzz target: `vertogw::fuzzing::proxy_header` (its doc lists the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vertogw::fuzzing::proxy_header(data));
