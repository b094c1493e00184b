//! Fuzz target: `vertogw::fuzzing::prelogin` (its doc lists the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vertogw::fuzzing::prelogin(data));
