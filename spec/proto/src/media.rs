//! The media parameters of a stream (picture size, frame rate, sample rate,
//! channels, bit rate): one type for the virtqueue's stream format
//! ([`StreamFormat`](crate::control::StreamFormat)) and the wire's stream
//! creation ([`CreateStream`](crate::wire::CreateStream)), which carry the
//! same seven fields, with the range rules both apply.
//!
//! The rules that differ between the two (the frame rate pair, what the
//! error names) stay with each side's `validate`.

use crate::codec::MediaKind;
use crate::control::{MAX_CHANNELS, MAX_DIMENSION, MAX_SAMPLE_RATE};

/// What a stream's media is like; each field is 0 where it does not apply
/// or is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MediaParams {
    /// Video width in pixels, 1..=[`MAX_DIMENSION`]; 0 for audio.
    pub width: u32,
    /// Video height in pixels, 1..=[`MAX_DIMENSION`]; 0 for audio.
    pub height: u32,
    /// Frame rate numerator; 0 if unknown.
    pub fps_num: u32,
    /// Frame rate denominator; 0 if unknown.
    pub fps_den: u32,
    /// Audio sample rate in Hz, 1..=[`MAX_SAMPLE_RATE`]; 0 for video.
    pub sample_rate: u32,
    /// Audio channels, 1..=[`MAX_CHANNELS`]; 0 for video.
    pub channels: u32,
    /// Bits per second, a hint (playback) or target (capture); 0 if unset.
    pub bitrate: u32,
}

/// A field of [`MediaParams`] whose allowed range depends on the media kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaField {
    /// [`MediaParams::width`].
    Width,
    /// [`MediaParams::height`].
    Height,
    /// [`MediaParams::sample_rate`].
    SampleRate,
    /// [`MediaParams::channels`].
    Channels,
}

impl MediaField {
    /// The order [`MediaParams::check_kind`] checks them in.
    pub const ALL: [MediaField; 4] = [
        MediaField::Width,
        MediaField::Height,
        MediaField::SampleRate,
        MediaField::Channels,
    ];

    /// The field's name as the specs write it.
    pub const fn name(self) -> &'static str {
        match self {
            MediaField::Width => "width",
            MediaField::Height => "height",
            MediaField::SampleRate => "sample_rate",
            MediaField::Channels => "channels",
        }
    }

    /// The values the field may hold in a stream of `kind`, and the rule in
    /// words: a video field is 0 for audio and an audio field 0 for video.
    pub const fn range(self, kind: MediaKind) -> KindRange {
        let (min, max, rule) = match (kind, self) {
            (MediaKind::Video, MediaField::Width | MediaField::Height) => {
                (1, MAX_DIMENSION, "video needs 1..=16384")
            }
            (MediaKind::Video, MediaField::SampleRate | MediaField::Channels) => {
                (0, 0, "must be 0 for video")
            }
            (MediaKind::Audio, MediaField::SampleRate) => {
                (1, MAX_SAMPLE_RATE, "audio needs 1..=384000")
            }
            (MediaKind::Audio, MediaField::Channels) => (1, MAX_CHANNELS, "audio needs 1..=8"),
            (MediaKind::Audio, MediaField::Width | MediaField::Height) => {
                (0, 0, "video fields must be 0 for audio")
            }
        };
        KindRange { min, max, rule }
    }
}

/// The inclusive range of values a [`MediaField`] allows for one media kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KindRange {
    /// Smallest value allowed.
    pub min: u32,
    /// Largest value allowed.
    pub max: u32,
    /// The rule in words, for error messages.
    pub rule: &'static str,
}

/// A media field outside the range its stream's kind allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutOfKindRange {
    /// Which field.
    pub field: MediaField,
    /// Its value.
    pub value: u32,
    /// What the kind allows.
    pub range: KindRange,
}

impl MediaParams {
    /// Video of `width`x`height` pixels at `fps_num`/`fps_den` frames a
    /// second (0/0 if unknown), no bit rate.
    pub const fn video(width: u32, height: u32, fps_num: u32, fps_den: u32) -> MediaParams {
        MediaParams {
            width,
            height,
            fps_num,
            fps_den,
            sample_rate: 0,
            channels: 0,
            bitrate: 0,
        }
    }

    /// Audio of `channels` channels at `sample_rate` Hz, no bit rate.
    pub const fn audio(sample_rate: u32, channels: u32) -> MediaParams {
        MediaParams {
            sample_rate,
            channels,
            ..MediaParams::video(0, 0, 0, 0)
        }
    }

    /// The value of `field`.
    pub const fn get(&self, field: MediaField) -> u32 {
        match field {
            MediaField::Width => self.width,
            MediaField::Height => self.height,
            MediaField::SampleRate => self.sample_rate,
            MediaField::Channels => self.channels,
        }
    }

    /// Checks the size, sample rate and channels against what a stream of
    /// `kind` needs (video: a picture size and no audio fields; audio: a
    /// sample rate and channels and no picture size), in the order of
    /// [`MediaField::ALL`].
    ///
    /// The frame rate is not checked: the virtqueue and the wire have
    /// different rules for it.
    ///
    /// # Errors
    /// The first field out of its range.
    pub fn check_kind(&self, kind: MediaKind) -> Result<(), OutOfKindRange> {
        MediaField::ALL.into_iter().try_for_each(|field| {
            let value = self.get(field);
            let range = field.range(kind);
            if (range.min..=range.max).contains(&value) {
                Ok(())
            } else {
                Err(OutOfKindRange {
                    field,
                    value,
                    range,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{MediaField, MediaParams};
    use crate::codec::MediaKind;
    use crate::control::{MAX_CHANNELS, MAX_DIMENSION, MAX_SAMPLE_RATE};

    #[test]
    fn kind_ranges() {
        let video = MediaParams::video(MAX_DIMENSION, 1, 30, 1);
        let audio = MediaParams::audio(MAX_SAMPLE_RATE, MAX_CHANNELS);
        assert_eq!(video.check_kind(MediaKind::Video), Ok(()));
        assert_eq!(audio.check_kind(MediaKind::Audio), Ok(()));
        let err = video.check_kind(MediaKind::Audio).unwrap_err();
        assert_eq!((err.field, err.value), (MediaField::Width, MAX_DIMENSION));
        let err = audio.check_kind(MediaKind::Video).unwrap_err();
        assert_eq!((err.field, err.value), (MediaField::Width, 0));
        let bad = MediaParams {
            channels: MAX_CHANNELS + 1,
            ..audio
        };
        let err = bad.check_kind(MediaKind::Audio).unwrap_err();
        assert_eq!(err.field, MediaField::Channels);
        assert_eq!((err.range.min, err.range.max), (1, MAX_CHANNELS));
    }
}
