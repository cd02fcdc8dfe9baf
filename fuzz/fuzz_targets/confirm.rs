#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vodprobe::fuzz::confirm(data));
