//! Audio files are recognised by their content, whatever their name.

mod common;

use common::tools::{ffmpeg, sine_wav};
use redir_demux::Codec;

#[test]
fn formats_are_found_by_content_not_name() {
    let scratch = common::scratch("renamed");
    let dir = scratch.path();
    for (file, codec) in [
        (
            ffmpeg(44_100, 2, &["-c:a", "libmp3lame"], "ffmpeg.mp3"),
            Codec::Mp3,
        ),
        (
            ffmpeg(44_100, 2, &["-c:a", "aac", "-f", "adts"], "plain.aac"),
            Codec::Aac,
        ),
        (
            ffmpeg(44_100, 2, &["-c:a", "flac"], "ffmpeg.flac"),
            Codec::Flac,
        ),
        (sine_wav(), Codec::PcmS16le),
    ] {
        let renamed = dir.join(format!("{codec}.bin"));
        std::fs::copy(&file, &renamed).expect("copy");
        let d = redir_demux::open(&renamed).unwrap_or_else(|e| panic!("{codec}: {e}"));
        assert_eq!(d.tracks()[0].codec, codec);
    }
}
