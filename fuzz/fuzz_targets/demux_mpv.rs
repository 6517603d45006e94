//! The MPEG-1/2 video elementary stream demuxer on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mediaredir_fuzz::demux(Some("mpv"), data));
