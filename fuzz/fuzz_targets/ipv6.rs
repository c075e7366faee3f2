#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::targets::ipv6(data));
