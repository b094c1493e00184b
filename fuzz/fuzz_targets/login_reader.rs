//! Fuzz target: `vertogw::fuzzing::login_reader` (its doc lists the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vertogw::fuzzing::login_reader(data));
