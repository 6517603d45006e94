//! The avi demuxer on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mediaredir_fuzz::demux(Some("avi"), data));
