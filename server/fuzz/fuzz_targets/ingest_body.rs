#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| server::fuzz::ingest_body(data));
