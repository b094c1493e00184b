//! Fuzz target: `vertogw::fuzzing::map_parser` (its doc lists the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vertogw::fuzzing::map_parser(data));
