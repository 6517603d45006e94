//! Format sniffing and whichever demuxer it picks, as the player opens files.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mediaredir_fuzz::demux(None, data));
