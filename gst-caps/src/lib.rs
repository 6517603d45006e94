//! The mapping between the protocol's codecs and formats
//! (`mediaredir-proto`) and GStreamer caps, one copy for both ends: the
//! client engine builds its `appsrc` caps on it, the guest's GStreamer
//! plugin reads stream formats from caps with it.
//!
//! - [`codec_structure`]: a codec's media type and the fields that tell it
//!   from the other codecs of that media type (MPEG audio's version and
//!   layer, MPEG video's version, PCM's sample format).
//! - [`gst_channel_mask`] and [`wave_channel_mask`]: a PCM stream's
//!   speaker positions, which the protocol carries as a WAVE
//!   `dwChannelMask` (spec 7.18), as GStreamer's channel mask and back.

use gstreamer as gst;
use gstreamer_audio::AudioChannelPosition;
use mediaredir_proto::codec::Codec;

/// The caps structure of `codec` without any stream detail: its media type
/// and the fields that tell it from the other codecs of that media type.
/// What the client's decoders are asked about; each end adds its own
/// fields to it (the stream's format, a parser's guarantees).
pub fn codec_structure(codec: Codec) -> gst::Structure {
    match codec {
        Codec::H264 => gst::Structure::new_empty("video/x-h264"),
        Codec::H265 => gst::Structure::new_empty("video/x-h265"),
        Codec::Vp8 => gst::Structure::new_empty("video/x-vp8"),
        Codec::Vp9 => gst::Structure::new_empty("video/x-vp9"),
        Codec::Av1 => gst::Structure::new_empty("video/x-av1"),
        Codec::Mjpeg => gst::Structure::new_empty("image/jpeg"),
        Codec::Theora => gst::Structure::new_empty("video/x-theora"),
        Codec::Opus => gst::Structure::new_empty("audio/x-opus"),
        Codec::Vorbis => gst::Structure::new_empty("audio/x-vorbis"),
        Codec::Aac => mpeg_audio(4, None),
        Codec::Mp3 => mpeg_audio(1, Some(3)),
        Codec::Mp2 => mpeg_audio(1, Some(2)),
        Codec::Flac => gst::Structure::new_empty("audio/x-flac"),
        Codec::Mpeg2Video => mpeg_video(2),
        Codec::Mpeg4Part2 => mpeg_video(4),
        Codec::Ac3 => gst::Structure::new_empty("audio/x-ac3"),
        Codec::Eac3 => gst::Structure::new_empty("audio/x-eac3"),
        // Raw PCM, as wavparse gives it.
        Codec::PcmS16le | Codec::PcmS24le | Codec::PcmS32le | Codec::PcmF32le | Codec::PcmU8 => {
            gst::Structure::builder("audio/x-raw")
                .field("format", pcm_format(codec))
                .field("layout", "interleaved")
                .build()
        }
    }
}

/// `audio/mpeg` of an MPEG version (and layer, for MPEG-1 audio).
fn mpeg_audio(version: i32, layer: Option<i32>) -> gst::Structure {
    gst::Structure::builder("audio/mpeg")
        .field("mpegversion", version)
        .field_if_some("layer", layer)
        .build()
}

/// `video/mpeg` elementary video (not a system stream) of an MPEG version.
fn mpeg_video(version: i32) -> gst::Structure {
    gst::Structure::builder("video/mpeg")
        .field("mpegversion", version)
        .field("systemstream", false)
        .build()
}

/// GStreamer's sample format of a PCM codec (S16LE for any other codec).
fn pcm_format(codec: Codec) -> &'static str {
    match codec {
        Codec::PcmU8 => "U8",
        Codec::PcmS24le => "S24LE",
        Codec::PcmS32le => "S32LE",
        Codec::PcmF32le => "F32LE",
        _ => "S16LE",
    }
}

/// GStreamer's channel position of each bit of a WAVE dwChannelMask, in
/// bit order (WAVEFORMATEXTENSIBLE: FL, FR, FC, LFE, BL, BR, FLC, FRC, BC,
/// SL, SR, TC, TFL, TFC, TFR, TBL, TBC, TBR), as GStreamer's RIFF library
/// maps them for wavparse. From bit 9 on GStreamer's own bit order differs
/// (its bit 9 is a second LFE), so neither mask can be taken for the other.
pub const WAVE_POSITIONS: [AudioChannelPosition; 18] = {
    use AudioChannelPosition as P;
    [
        P::FrontLeft,
        P::FrontRight,
        P::FrontCenter,
        P::Lfe1,
        P::RearLeft,
        P::RearRight,
        P::FrontLeftOfCenter,
        P::FrontRightOfCenter,
        P::RearCenter,
        P::SideLeft,
        P::SideRight,
        P::TopCenter,
        P::TopFrontLeft,
        P::TopFrontCenter,
        P::TopFrontRight,
        P::TopRearLeft,
        P::TopRearCenter,
        P::TopRearRight,
    ]
};

/// GStreamer's channel mask of a WAVE dwChannelMask (the client's side:
/// PCM codec data to caps), if it names exactly `channels` positions
/// GStreamer knows.
pub fn gst_channel_mask(wave: u32, channels: i32) -> Option<u64> {
    let positions: Vec<_> = WAVE_POSITIONS
        .iter()
        .enumerate()
        .filter(|(bit, _)| wave & (1 << bit) != 0)
        .map(|(_, p)| *p)
        .collect();
    if wave >> WAVE_POSITIONS.len() != 0 || i32::try_from(positions.len()).ok()? != channels {
        return None;
    }
    AudioChannelPosition::positions_to_mask(&positions, false).ok()
}

/// The WAVE dwChannelMask of a GStreamer channel mask (the guest's side:
/// caps to PCM codec data), if WAVE has a speaker for each of its
/// positions.
pub fn wave_channel_mask(gst_mask: u64) -> Option<u32> {
    let mut wave = 0u32;
    let mut covered = 0u64;
    for (bit, position) in WAVE_POSITIONS.iter().enumerate() {
        let m = position.to_mask();
        if gst_mask & m != 0 {
            wave |= 1 << bit;
            covered |= m;
        }
    }
    (covered == gst_mask).then_some(wave)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wave_channel_masks_become_gstreamer_positions() {
        gst::init().unwrap();
        // 5.1 (back: FL FR FC LFE BL BR): the same bits in both orders.
        assert_eq!(gst_channel_mask(0x3f, 6), Some(0x3f));
        // 5.1 (side): WAVE bits 9 and 10 are the sides, GStreamer's are
        // its bits 10 and 11 (its bit 9 is a second LFE).
        assert_eq!(gst_channel_mask(0x60f, 6), Some(0xc0f));
        // A mask that does not name the channel count is not used, nor one
        // with bits past WAVE's last speaker.
        assert_eq!(gst_channel_mask(0x3f, 8), None);
        assert_eq!(gst_channel_mask(0x8000_0003, 3), None);
    }

    #[test]
    fn gstreamer_channel_masks_become_wave_masks() {
        gst::init().unwrap();
        // 5.1 side: GStreamer's side left/right bits 10, 11 are WAVE's 9, 10.
        assert_eq!(wave_channel_mask(0xC0F), Some(0x60F));
        assert_eq!(wave_channel_mask(0x3F), Some(0x3F));
        // A second LFE (GStreamer bit 9) has no WAVE speaker.
        assert_eq!(wave_channel_mask(0x20F), None);
    }

    #[test]
    fn every_wave_speaker_maps_there_and_back() {
        gst::init().unwrap();
        for bit in 0..WAVE_POSITIONS.len() {
            let wave = 1u32 << bit;
            let gst_mask = gst_channel_mask(wave, 1).unwrap();
            assert_eq!(wave_channel_mask(gst_mask), Some(wave), "WAVE bit {bit}");
        }
        let all = (1u32 << WAVE_POSITIONS.len()) - 1;
        let channels = i32::try_from(WAVE_POSITIONS.len()).unwrap();
        let gst_mask = gst_channel_mask(all, channels).unwrap();
        assert_eq!(wave_channel_mask(gst_mask), Some(all));
    }

    /// The guest's plugin finds a codec by its structure: no two codecs
    /// may share one.
    #[test]
    fn no_two_codecs_share_a_structure() {
        gst::init().unwrap();
        for (i, a) in Codec::ALL.iter().enumerate() {
            for b in &Codec::ALL[i + 1..] {
                assert!(
                    !codec_structure(*a).can_intersect(&codec_structure(*b)),
                    "{a} and {b} share {}",
                    codec_structure(*a)
                );
            }
        }
        let pcm = codec_structure(Codec::PcmS24le);
        assert_eq!(pcm.get::<&str>("format").unwrap(), "S24LE");
    }
}
