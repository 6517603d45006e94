//! WAV files (RIFF/WAVE and RF64): the "fmt " chunk says the codec, the
//! "data" chunk holds the stream.
//!
//! PCM (unsigned 8-bit, signed 16/24/32-bit, 32-bit float, little-endian,
//! the forms wavparse outputs unchanged) is a device codec each and is sent
//! in blocks of about 20 ms, with WAVE_FORMAT_EXTENSIBLE's channel mask as
//! codec data where it names one position per channel. MP3 and MP2 inside WAV (format tags 0x55, 0x50) are read
//! frame by frame as in an `.mp3`, AC-3 (0x2000) by its syncframes. Other PCM forms and codecs are refused by name, so the
//! user learns what the file holds instead of "unknown format".

use std::fs::File;
use std::path::Path;

use crate::ac3::Ac3Stream;
use crate::elementary::FrameStream;
use crate::mp3::MpaStream;
use crate::reader::Reader;
use crate::{Codec, DemuxError, Demuxer, Sample, Track};

const NAME: &str = "WAV";
/// Sample frames per PCM buffer at 48 kHz: 20 ms, as an audio player sends.
const PCM_MS: u64 = 20;

/// What the data chunk holds.
enum Body {
    Pcm {
        block_align: usize,
        frames_per_buffer: usize,
        position: u64,
    },
    Mp3(MpaStream),
    Ac3(Ac3Stream),
}

/// Demuxer of one WAV file.
pub(crate) struct WavDemuxer {
    reader: Reader,
    tracks: Vec<Track>,
    body: Body,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The "fmt " chunk's fields the demuxer uses.
struct Fmt {
    tag: u16,
    channels: u16,
    rate: u32,
    block_align: u16,
    bits: u16,
    /// WAVE_FORMAT_EXTENSIBLE's dwChannelMask, when it names one position
    /// per channel (wavparse's condition for using it).
    mask: Option<u32>,
}

fn parse_fmt(b: &[u8], at: u64) -> Result<Fmt, DemuxError> {
    if b.len() < 16 {
        return Err(DemuxError::corrupt(
            NAME,
            format!("fmt chunk at byte {at} is shorter than 16 bytes"),
        ));
    }
    let mut tag = le16(b, 0);
    let mut mask = None;
    // WAVE_FORMAT_EXTENSIBLE: the real tag starts the SubFormat GUID.
    if tag == 0xFFFE {
        if b.len() < 40 {
            return Err(DemuxError::corrupt(
                NAME,
                format!("extensible fmt chunk at byte {at} is short"),
            ));
        }
        tag = le16(b, 24);
        let m = le32(b, 20);
        mask = (m.count_ones() == u32::from(le16(b, 2))).then_some(m);
    }
    Ok(Fmt {
        tag,
        channels: le16(b, 2),
        rate: le32(b, 4),
        block_align: le16(b, 12),
        bits: le16(b, 14),
        mask,
    })
}

/// The name of a format tag (with its bits per sample) the device cannot
/// take; AVI's WAVEFORMATEX uses the same tags.
pub(crate) fn refused_tag(tag: u16, bits: u16) -> &'static str {
    match (tag, bits) {
        (1, _) => "PCM of an unusual sample size",
        (3, 64) => "PCM 64-bit float",
        (3, _) => "PCM 32-bit float",
        (2, _) => "Microsoft ADPCM",
        (6, _) => "G.711 A-law",
        (7, _) => "G.711 mu-law",
        (0x11, _) => "IMA ADPCM",
        (0xFF | 0x1610 | 0x1600, _) => "AAC in WAV",
        _ => "a WAV format tag the device has no codec for",
    }
}

impl WavDemuxer {
    /// Reads the chunks up to "data".
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let mut reader = Reader::new(File::open(path)?)?;
        let head = reader
            .take(12)?
            .ok_or_else(|| DemuxError::corrupt(NAME, "shorter than a RIFF header"))?;
        let rf64 = &head[..4] == b"RF64";
        let mut ds64_data = None;
        let mut fmt = None;
        let data_len = loop {
            let at = reader.offset();
            let Some(chunk) = reader.take(8)? else {
                return Err(DemuxError::corrupt(NAME, "no data chunk"));
            };
            let len = u64::from(le32(&chunk, 4));
            match &chunk[..4] {
                b"fmt " if len <= 4096 => {
                    let body = reader
                        .take(usize::try_from(len).unwrap_or(usize::MAX))?
                        .ok_or_else(|| {
                            DemuxError::corrupt(NAME, format!("fmt chunk at byte {at} is cut"))
                        })?;
                    fmt = Some(parse_fmt(&body, at)?);
                    reader.skip(len & 1);
                }
                b"ds64" if rf64 && len >= 28 => {
                    let body = reader
                        .take(28)?
                        .ok_or_else(|| DemuxError::corrupt(NAME, "ds64 chunk is cut"))?;
                    ds64_data =
                        Some(u64::from(le32(&body, 8)) | (u64::from(le32(&body, 12)) << 32));
                    reader.skip(len - 28 + (len & 1));
                }
                b"data" => {
                    break match (rf64, ds64_data, len) {
                        (true, Some(n), 0xFFFF_FFFF) => n,
                        // Written while streaming: the data runs to the end.
                        (_, _, 0 | 0xFFFF_FFFF) => reader.remaining(),
                        _ => len,
                    };
                }
                _ => reader.skip(len + (len & 1)),
            }
        };
        let fmt =
            fmt.ok_or_else(|| DemuxError::corrupt(NAME, "no fmt chunk before the data chunk"))?;
        let data_at = reader.offset();
        if data_len > reader.remaining() {
            return Err(DemuxError::corrupt(
                NAME,
                format!(
                    "the data chunk at byte {data_at} says {data_len} bytes, the file has {}",
                    reader.remaining()
                ),
            ));
        }
        reader.set_end(data_at + data_len);
        let pcm = match (fmt.tag, fmt.bits) {
            (1, 8) => Some(Codec::PcmU8),
            (1, 16) => Some(Codec::PcmS16le),
            (1, 24) => Some(Codec::PcmS24le),
            (1, 32) => Some(Codec::PcmS32le),
            (3, 32) => Some(Codec::PcmF32le),
            _ => None,
        };
        let (track, body) = match (pcm, fmt.tag) {
            (Some(codec), _) => {
                let bytes = codec.pcm_sample_bytes().unwrap_or(2);
                if fmt.channels == 0
                    || fmt.rate == 0
                    || u32::from(fmt.block_align) != bytes * u32::from(fmt.channels)
                {
                    return Err(DemuxError::corrupt(
                        NAME,
                        "fmt chunk: inconsistent PCM layout",
                    ));
                }
                let frames = usize::try_from(u64::from(fmt.rate) * PCM_MS / 1000)
                    .unwrap_or(1)
                    .max(1);
                // The channel mask goes with the stream (spec: PCM codec
                // data), so the client's caps carry the positions wavparse
                // gives (5.1 with side or with back surrounds).
                let track = Track {
                    codec_data: fmt
                        .mask
                        .map(|m| m.to_le_bytes().to_vec())
                        .unwrap_or_default(),
                    ..Track::audio(1, codec, fmt.rate, u32::from(fmt.channels))
                };
                let body = Body::Pcm {
                    block_align: usize::from(fmt.block_align),
                    frames_per_buffer: frames,
                    position: 0,
                };
                (track, body)
            }
            (None, 0x55 | 0x50 | 0x2000) => {
                // GStreamer's wavparse passes on whole nBlockAlign blocks
                // only, and ffmpeg writes 1152 there for MP3 and 3840 for
                // AC-3: a local player never gets the frames in a last
                // partial block. The same cut keeps the output equal to
                // that reference.
                let align = u64::from(fmt.block_align.max(1));
                reader.set_end(data_at + data_len - data_len % align);
                if fmt.tag == 0x2000 {
                    let (mut stream, track) = Ac3Stream::open(&mut reader, 1, NAME)?;
                    stream.cut_end_ok = true;
                    (track, Body::Ac3(stream))
                } else {
                    let (mut stream, track) = MpaStream::open(&mut reader, 1, NAME)?;
                    stream.in_wav();
                    (track, Body::Mp3(stream))
                }
            }
            _ => {
                return Err(DemuxError::NotDeviceCodec {
                    container: NAME,
                    codec: refused_tag(fmt.tag, fmt.bits),
                });
            }
        };
        Ok(WavDemuxer {
            reader,
            tracks: vec![track],
            body,
        })
    }
}

impl Demuxer for WavDemuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        let (block_align, frames_per_buffer, position) = match &mut self.body {
            Body::Mp3(stream) => return stream.next(&mut self.reader),
            Body::Ac3(stream) => return stream.next(&mut self.reader),
            Body::Pcm {
                block_align,
                frames_per_buffer,
                position,
            } => (*block_align, *frames_per_buffer, position),
        };
        let left = usize::try_from(self.reader.remaining()).unwrap_or(usize::MAX);
        let frames = (left / block_align).min(frames_per_buffer);
        if frames == 0 {
            // A partial sample frame at the end is not audio.
            return Ok(None);
        }
        let data = self
            .reader
            .take(frames * block_align)?
            .ok_or_else(|| DemuxError::corrupt(NAME, "data chunk is cut"))?;
        let rate = u64::from(self.tracks[0].sample_rate);
        let start = *position;
        *position += frames as u64;
        Ok(Some(Sample::audio(1, start, frames as u64, rate, data)))
    }
}
