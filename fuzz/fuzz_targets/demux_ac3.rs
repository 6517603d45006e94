//! The raw AC-3 demuxer on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mediaredir_fuzz::demux(Some("ac3"), data));
