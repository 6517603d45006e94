//! Matroska and WebM through the `matroska-demuxer` crate.
//!
//! Matroska already stores what the device wants: CodecPrivate is avcC,
//! hvcC, av1C, OpusHead, Xiph-laced Vorbis headers, an AudioSpecificConfig
//! or "fLaC" + metadata blocks, so this module maps codec IDs and scales
//! block timestamps (presentation times) by the segment's timestamp scale.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use matroska_demuxer::{Frame, MatroskaFile, TrackType};

use crate::{Clip, Codec, DemuxError, Demuxer, Sample, Track, mkv_trim};

const NAME: &str = "Matroska";

fn mkv_err(e: matroska_demuxer::DemuxError) -> DemuxError {
    match e {
        matroska_demuxer::DemuxError::IoError(io)
            if io.kind() != std::io::ErrorKind::UnexpectedEof =>
        {
            DemuxError::Io(io)
        }
        other => DemuxError::corrupt(NAME, other.to_string()),
    }
}

/// Maps a Matroska codec ID to a device codec.
fn codec_of(id: &str) -> Option<Codec> {
    Some(match id {
        "V_MPEG4/ISO/AVC" => Codec::H264,
        "V_MPEGH/ISO/HEVC" => Codec::H265,
        "V_VP8" => Codec::Vp8,
        "V_VP9" => Codec::Vp9,
        "V_AV1" => Codec::Av1,
        "V_THEORA" => Codec::Theora,
        "V_MJPEG" => Codec::Mjpeg,
        // MPEG-4 Part 2 (simple, advanced simple, advanced profile): the
        // CodecPrivate holds the VOS/VOL headers.
        "V_MPEG4/ISO/SP" | "V_MPEG4/ISO/ASP" | "V_MPEG4/ISO/AP" => Codec::Mpeg4Part2,
        // MPEG-1/2 video: the CodecPrivate is the sequence header.
        "V_MPEG1" | "V_MPEG2" => Codec::Mpeg2Video,
        "A_AC3" => Codec::Ac3,
        "A_EAC3" => Codec::Eac3,
        "A_MPEG/L2" => Codec::Mp2,
        "A_OPUS" => Codec::Opus,
        "A_VORBIS" => Codec::Vorbis,
        "A_FLAC" => Codec::Flac,
        "A_MPEG/L3" => Codec::Mp3,
        id if id.starts_with("A_AAC") => Codec::Aac,
        _ => return None,
    })
}

/// Per-track facts needed while reading blocks.
struct TrackInfo {
    number: u64,
    default_duration: Option<u64>,
    video: bool,
    /// Opus: samples of codec delay (pre-skip) to drop at the start.
    opus_delay: Option<u64>,
    /// Opus: samples decoded before the next block.
    position: u64,
    sample_rate: u32,
}

/// Demuxer of one Matroska/WebM file.
pub(crate) struct MkvDemuxer {
    file: MatroskaFile<BufReader<File>>,
    tracks: Vec<Track>,
    info: Vec<TrackInfo>,
    timestamp_scale: u64,
    frame: Frame,
    /// Opus end padding per block (`DiscardPadding`).
    paddings: mkv_trim::Paddings,
}

impl MkvDemuxer {
    /// Parses the headers and the track list.
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let file = MatroskaFile::open(BufReader::new(File::open(path)?)).map_err(mkv_err)?;
        let mut tracks = Vec::new();
        let mut info = Vec::new();
        for t in file.tracks() {
            if !matches!(t.track_type(), TrackType::Video | TrackType::Audio) {
                continue;
            }
            let codec_id = t.codec_id().trim_end_matches(char::from(0));
            let codec = codec_of(codec_id).ok_or_else(|| DemuxError::UnsupportedCodec {
                container: NAME,
                codec: codec_id.to_owned(),
            })?;
            if t.content_encodings().is_some_and(|e| !e.is_empty()) {
                return Err(DemuxError::Unsupported {
                    container: NAME,
                    feature: "content encodings (compression or encryption)",
                });
            }
            let id = u32::try_from(t.track_number().get())
                .map_err(|_| DemuxError::corrupt(NAME, "track number too large"))?;
            let to_u32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
            let default_duration = t.default_duration().map(|d| d.get());
            let (width, height, fps) = match t.video() {
                Some(v) => (
                    to_u32(v.pixel_width().get()),
                    to_u32(v.pixel_height().get()),
                    default_duration.map(|d| (1_000_000_000, to_u32(d))),
                ),
                None => (0, 0, None),
            };
            let (sample_rate, channels) = match t.audio() {
                Some(a) => {
                    let rate = a.sampling_frequency();
                    let rate = if rate.is_finite() && rate >= 0.0 && rate < f64::from(u32::MAX) {
                        // Truncation intended: rates are whole numbers of Hz.
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        let r = rate.round() as u32;
                        r
                    } else {
                        0
                    };
                    (rate, to_u32(a.channels().get()))
                }
                None => (0, 0),
            };
            let mut codec_data = t.codec_private().map(<[u8]>::to_vec).unwrap_or_default();
            if matches!(
                codec,
                Codec::Vp8 | Codec::Vp9 | Codec::Mp3 | Codec::Mp2 | Codec::Ac3 | Codec::Eac3
            ) {
                // These codecs take no codec data on the device.
                codec_data.clear();
            }
            info.push(TrackInfo {
                number: t.track_number().get(),
                default_duration,
                video: codec.is_video(),
                opus_delay: (codec == Codec::Opus)
                    .then(|| mkv_trim::ns_to_samples(t.codec_delay().unwrap_or(0), 48_000)),
                position: 0,
                sample_rate,
            });
            tracks.push(Track {
                id,
                codec,
                width,
                height,
                sample_rate,
                channels,
                codec_data,
                fps,
                start_trim: 0,
                end_trim: 0,
            });
        }
        if tracks.is_empty() {
            return Err(DemuxError::corrupt(NAME, "no audio or video track"));
        }
        let timestamp_scale = file.info().timestamp_scale().get();
        let paddings = if info.iter().any(|t| t.opus_delay.is_some()) {
            mkv_trim::paddings(path)?
        } else {
            mkv_trim::Paddings::new()
        };
        Ok(MkvDemuxer {
            paddings,
            file,
            tracks,
            info,
            timestamp_scale,
            frame: Frame::default(),
        })
    }
}

impl Demuxer for MkvDemuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        loop {
            if !self.file.next_frame(&mut self.frame).map_err(mkv_err)? {
                return Ok(None);
            }
            let f = &mut self.frame;
            let Some((idx, ti)) = self
                .info
                .iter_mut()
                .enumerate()
                .find(|(_, t)| t.number == f.track)
            else {
                continue; // a subtitle or other skipped track
            };
            let pts = f.timestamp.saturating_mul(self.timestamp_scale);
            let duration = f
                .duration
                .map(|d| d.saturating_mul(self.timestamp_scale))
                .or(ti.default_duration);
            // Audio frames are all decodable on their own whatever the flag says.
            let keyframe = !ti.video || f.is_keyframe.unwrap_or(false);
            let clip = match ti.opus_delay {
                Some(delay) => {
                    let n = crate::ogg::frames::opus_samples(&f.data);
                    let padding = self
                        .paddings
                        .get(&(ti.number, f.timestamp))
                        .map_or(0, |&ns| mkv_trim::ns_to_samples(ns, ti.sample_rate.max(1)));
                    let clip = crate::gst_clip::sample_clip(ti.position, n, delay, padding);
                    ti.position = ti.position.saturating_add(n);
                    clip
                }
                None => Clip::NONE,
            };
            return Ok(Some(Sample {
                clip,
                track: self.tracks[idx].id,
                pts: Some(pts),
                dts: None,
                duration,
                keyframe,
                discont: false,
                decode_only: false,
                data: std::mem::take(&mut f.data),
            }));
        }
    }
}
