//! Container demuxers for the guest player `redir-play`.
//!
//! The guest has no GStreamer, yet the media redirection device wants the
//! original compressed streams: per stream a codec, its size or rate, codec
//! data in the form spec section 7.18 requires, and samples (one access
//! unit, frame or packet each, in decode order) with times in nanoseconds.
//! This crate turns IVF, raw Annex-B H.264/H.265 and MPEG-1/2 video,
//! Matroska/WebM, MP4, Ogg,
//! MP3, ADTS AAC, FLAC, WAV, AVI, MPEG-TS and MPEG-PS files into exactly that, in pure Rust.

mod ac3;
mod adts;
mod annexb;
mod avi;
mod bytes;
mod concat;
mod elementary;
mod error;
mod flac;
mod gst_clip;
mod ivf;
mod mkv;
mod mkv_trim;
mod mp3;
mod mp4;
mod mpa;
mod mpv;
mod mpv_es;
mod ogg;
mod probe;
mod reader;
mod sps;
mod start_order;
mod tags;
mod ts;
mod wav;
mod xiph;

/// The tests' builders of RIFF chunks and MP4 boxes, shared with the
/// integration tests.
#[cfg(test)]
#[path = "../tests/common/containers.rs"]
mod test_containers;

use std::path::{Path, PathBuf};

pub use error::DemuxError;
pub use gst_clip::gst_segment_clip;
pub use mediaredir_proto::codec::Codec;
pub use mediaredir_proto::data::Clip;
pub use ogg::vorbis::Modes as VorbisModes;
use probe::Format;
pub use start_order::StartOrdered;

/// One elementary stream of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Track number, unique in the file; [`Sample::track`] refers to it.
    pub id: u32,
    /// The codec.
    pub codec: Codec,
    /// Picture width (video), else 0.
    pub width: u32,
    /// Picture height (video), else 0.
    pub height: u32,
    /// Sample rate in Hz (audio), else 0.
    pub sample_rate: u32,
    /// Channel count (audio), else 0.
    pub channels: u32,
    /// Codec data as spec section 7.18 wants it (may be empty where optional).
    pub codec_data: Vec<u8>,
    /// Frame rate as numerator/denominator, when the container says.
    pub fps: Option<(u32, u32)>,
    /// Samples (per channel, at `sample_rate`) the file declares as encoder
    /// priming: decoded but not played (an MP3 LAME header's encoder delay,
    /// MPEG-TS/PS audio before the first picture). 0 when the file declares
    /// none. Informative: what reaches the device is each sample's
    /// [`Sample::clip`], as the reference player cuts it.
    pub start_trim: u64,
    /// Samples the file declares as padding after the last real sample (an
    /// MP3 LAME header's padding). 0 when the file declares none.
    pub end_trim: u64,
}

impl Track {
    /// An audio track without codec data or trims.
    pub(crate) fn audio(id: u32, codec: Codec, sample_rate: u32, channels: u32) -> Track {
        Track {
            sample_rate,
            channels,
            ..Track::video(id, codec, 0, 0)
        }
    }

    /// A video track without codec data or frame rate.
    pub(crate) fn video(id: u32, codec: Codec, width: u32, height: u32) -> Track {
        Track {
            id,
            codec,
            width,
            height,
            sample_rate: 0,
            channels: 0,
            codec_data: Vec::new(),
            fps: None,
            start_trim: 0,
            end_trim: 0,
        }
    }
}

/// One access unit, frame or packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The [`Track::id`] it belongs to.
    pub track: u32,
    /// Presentation time in ns.
    pub pts: Option<u64>,
    /// Decode time in ns.
    pub dts: Option<u64>,
    /// Duration in ns.
    pub duration: Option<u64>,
    /// Whether decoding can start here.
    pub keyframe: bool,
    /// Data before this sample was lost (an MPEG-TS continuity-counter gap
    /// or a discontinuity the stream signals): decoders must resync here.
    pub discont: bool,
    /// Decode it but do not show it: a video frame the file ends before
    /// (its presentation time is at or past the end of an edit list or of
    /// the track's duration), which GStreamer's video decoder drops after
    /// decoding it, as later frames may refer to it. Sent with the
    /// device's decode-only flag.
    pub decode_only: bool,
    /// The bytes, in the bitstream format the track's codec data implies.
    pub data: Vec<u8>,
    /// Audio: decoded samples the container says to drop from this
    /// sample's output (encoder delay / pre-skip at the start, padding at
    /// the end), as a local player's demuxer would mark it.
    pub clip: Clip,
}

impl Sample {
    /// An audio frame of `samples` samples at `rate` Hz that starts after
    /// `position` samples of its track: times count samples, so rounding
    /// never accumulates.
    pub(crate) fn audio(track: u32, position: u64, samples: u64, rate: u64, data: Vec<u8>) -> Self {
        let pts = bytes::ticks_to_ns(position, rate);
        Sample {
            track,
            pts: Some(pts),
            dts: Some(pts),
            duration: Some(bytes::ticks_to_ns(samples, rate)),
            keyframe: true,
            discont: false,
            decode_only: false,
            data,
            clip: Clip::NONE,
        }
    }
}

/// A demuxer over one open file.
pub trait Demuxer {
    /// The streams; fixed once the file is open.
    fn tracks(&self) -> &[Track];
    /// The next sample in file (decode) order, or `None` at the end.
    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError>;
}

/// Options for [`open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Frame rate of raw Annex-B streams, which carry no timestamps.
    pub fps: (u32, u32),
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { fps: (30, 1) }
    }
}

/// Opens `path`, sniffing its format, with default options.
pub fn open(path: &Path) -> Result<Box<dyn Demuxer>, DemuxError> {
    open_with(path, OpenOptions::default())
}

/// Opens `path`, sniffing its format.
pub fn open_with(path: &Path, options: OpenOptions) -> Result<Box<dyn Demuxer>, DemuxError> {
    let unreadable = |source| DemuxError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let format = probe::sniff(path).map_err(unreadable)?;
    open_format(path, format, options)
}

/// Opens the files of `paths` read one after another as one byte stream:
/// a DASH initialisation segment followed by its media segments (the form
/// a DASH player hands its demuxer). One path is [`open`]. The format is
/// sniffed from the first file; only MP4 is read across files.
pub fn open_files(paths: &[PathBuf]) -> Result<Box<dyn Demuxer>, DemuxError> {
    let (first, rest) = paths.split_first().ok_or(DemuxError::Unsupported {
        container: "input",
        feature: "no file given",
    })?;
    if rest.is_empty() {
        return open(first);
    }
    let unreadable = |path: &Path| {
        let path = path.to_owned();
        move |source| DemuxError::Unreadable { path, source }
    };
    match probe::sniff(first).map_err(unreadable(first))? {
        Format::Mp4 => {
            for p in paths {
                std::fs::metadata(p).map_err(unreadable(p))?;
            }
            let source = concat::ConcatReader::open(paths).map_err(unreadable(first))?;
            let len = source.len();
            mp4::Mp4Demuxer::from_source(Box::new(source), len).map(boxed)
        }
        _ => Err(DemuxError::Unsupported {
            container: "input",
            feature: "several files are read as one only for MP4 (DASH segments)",
        }),
    }
}

/// Opens `path` as `format`.
fn open_format(
    path: &Path,
    format: Format,
    options: OpenOptions,
) -> Result<Box<dyn Demuxer>, DemuxError> {
    let unreadable = |source| DemuxError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let open_err = |e: DemuxError| match e {
        DemuxError::Io(source) => unreadable(source),
        other => other,
    };
    match format {
        Format::Ivf => ivf::IvfDemuxer::open(path).map_err(open_err).map(boxed),
        Format::Matroska => mkv::MkvDemuxer::open(path).map_err(open_err).map(boxed),
        Format::Ogg => ogg::OggDemuxer::open(path).map_err(open_err).map(boxed),
        Format::Mp4 => mp4::Mp4Demuxer::open(path).map_err(open_err).map(boxed),
        Format::Mp3 => mp3::Mp3Demuxer::open(path, mp3::NAME)
            .map_err(open_err)
            .map(boxed),
        Format::Adts => adts::AdtsDemuxer::open(path).map_err(open_err).map(boxed),
        Format::Ac3 => ac3::Ac3Demuxer::open(path, ac3::NAME)
            .map_err(open_err)
            .map(boxed),
        Format::Flac => flac::FlacDemuxer::open(path).map_err(open_err).map(boxed),
        Format::Wav => wav::WavDemuxer::open(path).map_err(open_err).map(boxed),
        Format::Avi => avi::AviDemuxer::open(path).map_err(open_err).map(boxed),
        Format::Mpv => mpv_es::MpvDemuxer::open(path).map_err(open_err).map(boxed),
        Format::Ts => ts::TsDemuxer::open(path).map_err(open_err).map(boxed),
        Format::Ps => ts::ps::PsDemuxer::open(path).map_err(open_err).map(boxed),
        Format::AnnexB => {
            let data = std::fs::read(path).map_err(unreadable)?;
            let hevc = annexb::looks_like_hevc(path, &data);
            annexb::AnnexBDemuxer::new(data, hevc, options.fps).map(boxed)
        }
        Format::Unknown => Err(DemuxError::UnknownFormat {
            path: path.to_owned(),
        }),
    }
}

/// Opening a file as one named format, without sniffing: what the fuzz
/// targets (`fuzz/`) drive, so that each demuxer is fuzzed on its own.
#[doc(hidden)]
pub mod fuzzing {
    use super::{DemuxError, Demuxer, Format, OpenOptions, Path};

    /// The format names [`open_as`] takes.
    pub const FORMATS: &[&str] = &[
        "ivf", "matroska", "ogg", "mp4", "annexb", "mp3", "adts", "flac", "wav", "ts", "ps", "ac3",
        "avi",
    ];

    /// Opens `path` as the format `name` (one of [`FORMATS`]).
    pub fn open_as(path: &Path, name: &str) -> Result<Box<dyn Demuxer>, DemuxError> {
        let format = match name {
            "ivf" => Format::Ivf,
            "matroska" => Format::Matroska,
            "ogg" => Format::Ogg,
            "mp4" => Format::Mp4,
            "annexb" => Format::AnnexB,
            "mp3" => Format::Mp3,
            "adts" => Format::Adts,
            "flac" => Format::Flac,
            "wav" => Format::Wav,
            "ts" => Format::Ts,
            "ps" => Format::Ps,
            "ac3" => Format::Ac3,
            "avi" => Format::Avi,
            "mpv" => Format::Mpv,
            _ => Format::Unknown,
        };
        super::open_format(path, format, OpenOptions::default())
    }
}

fn boxed<D: Demuxer + 'static>(d: D) -> Box<dyn Demuxer> {
    Box::new(d)
}
