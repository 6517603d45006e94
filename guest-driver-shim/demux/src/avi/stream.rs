//! What one AVI stream's chunks become: the track, and samples timed as
//! GStreamer's `avidemux` times them.
//!
//! Video: chunk `n` of the stream is frame `n` at `n * dwScale / dwRate`
//! seconds, counting empty chunks (dropped frames, which are not sent).
//! AVI has no presentation times: like `avidemux`, a keyframe gets its
//! frame time as PTS and DTS, any other frame only a DTS, and the decoder
//! orders B-frames itself. Keyframe flags come from `idx1` where it lists
//! the chunk, else from the bitstream.
//!
//! Audio: compressed audio (MP3, MP2, AC-3) is cut into frames at frame
//! headers, whatever the chunking (one frame per chunk as ffmpeg writes
//! it, or byte runs as CBR writers do), and timed by sample counts; 16-bit
//! PCM goes in whole sample frames.

use crate::elementary::{FrameHeader, MAX_FRAME};
use crate::{Clip, Codec, DemuxError, Sample, Track, ac3, annexb, bytes, mpa, mpv};

use super::NAME;
use super::header::{Format, StreamHeader};

/// Which video bitstream a FOURCC names.
fn video_codec(fourcc: [u8; 4]) -> Result<Codec, DemuxError> {
    let upper = fourcc.map(|b| b.to_ascii_uppercase());
    Ok(match &upper {
        b"XVID" | b"DIVX" | b"DX50" | b"FMP4" | b"MP4V" | b"M4S2" | b"3IV2" | b"DIVF" | b"BLZ0"
        | b"DXGM" | b"UMP4" | b"SMP4" => Codec::Mpeg4Part2,
        b"H264" | b"X264" | b"AVC1" | b"DAVC" | b"VSSH" | b"Q264" => Codec::H264,
        b"DIV3" | b"DIV4" | b"MP43" | b"MP42" | b"MPG4" => {
            return Err(DemuxError::NotDeviceCodec {
                container: NAME,
                codec: "Microsoft MPEG-4 (DivX 3)",
            });
        }
        b"MJPG" => {
            return Err(DemuxError::NotDeviceCodec {
                container: NAME,
                codec: "Motion JPEG",
            });
        }
        _ => {
            return Err(DemuxError::UnsupportedCodec {
                container: NAME,
                codec: String::from_utf8_lossy(&fourcc).into_owned(),
            });
        }
    })
}

/// A video stream.
pub(super) struct Video {
    pub(super) track: Track,
    scale: u64,
    rate: u64,
    /// Chunks seen so far (the next chunk's frame number).
    frame: u64,
    /// Keyframe flags of the stream's chunks in `idx1`, in order.
    pub(super) index_keys: Vec<bool>,
}

impl Video {
    /// The stream `h` (number `n`) as track `n`; `first` is its first
    /// non-empty chunk, which holds the MPEG-4 VOL headers.
    pub(super) fn new(h: &StreamHeader, n: u32, first: &[u8]) -> Result<Video, DemuxError> {
        let Format::Video {
            fourcc,
            width,
            height,
        } = h.format
        else {
            return Err(DemuxError::corrupt(
                NAME,
                "video stream without video format",
            ));
        };
        let codec = video_codec(fourcc).or_else(|e| video_codec(h.handler).map_err(|_| e))?;
        if h.scale == 0 || h.rate == 0 {
            return Err(DemuxError::corrupt(
                NAME,
                format!("video stream {n}: frame rate {}/{}", h.rate, h.scale),
            ));
        }
        let mut track = Track::video(n, codec, width, height);
        track.fps = Some((h.rate, h.scale));
        match codec {
            Codec::Mpeg4Part2 => {
                let (au, config) = mpv::describe_mpeg4(first);
                track.codec_data = if au.sequence {
                    config
                } else if h.extradata.starts_with(&[0, 0, 1]) {
                    h.extradata.clone()
                } else {
                    return Err(DemuxError::corrupt(
                        NAME,
                        format!("MPEG-4 video stream {n}: no VOL header in strf or first frame"),
                    ));
                };
                if let Some((w, h)) = au.size.filter(|_| width == 0 || height == 0) {
                    (track.width, track.height) = (w, h);
                }
            }
            _ => {
                // AVC1 with an avcC record: length-prefixed frames.
                if h.extradata.first() == Some(&1) {
                    track.codec_data = h.extradata.clone();
                }
                if let (_, Some((w, h))) = annexb::describe_access_unit(first, false)
                    && (width == 0 || height == 0)
                {
                    (track.width, track.height) = (w, h);
                }
            }
        }
        Ok(Video {
            track,
            scale: u64::from(h.scale),
            rate: u64::from(h.rate),
            frame: 0,
            index_keys: Vec::new(),
        })
    }

    /// One chunk of the stream: a sample unless it is empty.
    pub(super) fn push(&mut self, data: Vec<u8>) -> Option<Sample> {
        let n = self.frame;
        self.frame += 1;
        if data.is_empty() {
            return None;
        }
        let index = usize::try_from(n).ok();
        let keyframe = match index.and_then(|i| self.index_keys.get(i)) {
            Some(&k) => k,
            None if self.track.codec == Codec::Mpeg4Part2 => mpv::describe_mpeg4(&data).0.intra,
            None if self.track.codec_data.is_empty() => {
                annexb::describe_access_unit(&data, false).0
            }
            None => false,
        };
        let time = bytes::scale(n, self.scale * 1_000_000_000, self.rate);
        Some(Sample {
            track: self.track.id,
            pts: keyframe.then_some(time),
            dts: Some(time),
            duration: Some(bytes::scale(1, self.scale * 1_000_000_000, self.rate)),
            keyframe,
            discont: false,
            data,
            clip: Clip::NONE,
            decode_only: false,
        })
    }
}

/// How audio chunks are cut.
enum Cut {
    Pcm { block_align: usize },
    Mpa(Option<mpa::Header>),
    Ac3(Option<ac3::Header>),
}

/// An audio stream.
pub(super) struct Audio {
    pub(super) track: Track,
    cut: Cut,
    /// Bytes not yet cut into frames.
    pending: Vec<u8>,
    /// Samples per channel before the next frame.
    position: u64,
    discont: bool,
}

impl Audio {
    /// The stream `h` (number `n`) as track `n`.
    pub(super) fn new(h: &StreamHeader, n: u32) -> Result<Audio, DemuxError> {
        let Format::Audio {
            tag,
            channels,
            rate,
            block_align,
            bits,
        } = h.format
        else {
            return Err(DemuxError::corrupt(
                NAME,
                "audio stream without audio format",
            ));
        };
        let (codec, cut) = match (tag, bits) {
            (1, 16) if channels > 0 && block_align == 2 * channels => (
                Codec::PcmS16le,
                Cut::Pcm {
                    block_align: usize::from(block_align),
                },
            ),
            (1, 16) => return Err(DemuxError::corrupt(NAME, "inconsistent PCM layout")),
            (0x55, _) => (Codec::Mp3, Cut::Mpa(None)),
            (0x50, _) => (Codec::Mp2, Cut::Mpa(None)),
            (0x2000, _) => (Codec::Ac3, Cut::Ac3(None)),
            _ => {
                return Err(DemuxError::NotDeviceCodec {
                    container: NAME,
                    codec: crate::wav::refused_tag(tag, bits),
                });
            }
        };
        if rate == 0 || channels == 0 {
            return Err(DemuxError::corrupt(
                NAME,
                format!("audio stream {n}: {rate} Hz, {channels} channels"),
            ));
        }
        let track = Track::audio(n, codec, rate, u32::from(channels));
        Ok(Audio {
            track,
            cut,
            pending: Vec::new(),
            position: 0,
            discont: false,
        })
    }

    /// One chunk of the stream; the frames it completes go to `out`.
    pub(super) fn push(&mut self, data: &[u8], out: &mut Vec<Sample>) -> Result<(), DemuxError> {
        self.pending.extend_from_slice(data);
        let rate = u64::from(self.track.sample_rate);
        let id = self.track.id;
        if let Cut::Pcm { block_align } = self.cut {
            let whole = self.pending.len() - self.pending.len() % block_align;
            if whole > 0 {
                let frames = (whole / block_align) as u64;
                let bytes: Vec<u8> = self.pending.drain(..whole).collect();
                out.push(Sample::audio(id, self.position, frames, rate, bytes));
                self.position += frames;
            }
            return Ok(());
        }
        let mut used = 0;
        while let Some((len, samples)) = self.frame_at(used)? {
            let Some(frame) = self.pending.get(used..used + len) else {
                break;
            };
            let mut s = Sample::audio(id, self.position, samples, rate, frame.to_vec());
            s.discont = std::mem::take(&mut self.discont);
            out.push(s);
            self.position += samples;
            used += len;
        }
        self.pending.drain(..used);
        if self.pending.len() > 4 * MAX_FRAME {
            self.pending.clear();
            self.discont = true;
        }
        Ok(())
    }

    /// The frame at `pending[at..]` (length, samples), skipping bytes that
    /// start none; `None` when more bytes are needed.
    fn frame_at(&mut self, at: usize) -> Result<Option<(usize, u64)>, DemuxError> {
        let mut p = at;
        while self.pending.len() >= p + 10 {
            let b = &self.pending[p..];
            let found = match &mut self.cut {
                Cut::Mpa(first) => mpa::Header::parse(b)
                    .filter(|h| h.len() > 0 && first.is_none_or(|f| f.same_stream(h)))
                    .map(|h| {
                        first.get_or_insert(h);
                        (h.len(), u64::from(h.samples()), h.layer)
                    }),
                Cut::Ac3(first) => ac3::Header::parse(b)
                    .filter(|h| h.samples > 0 && first.is_none_or(|f| f.same_stream(h)))
                    .map(|h| {
                        first.get_or_insert(h);
                        (FrameHeader::len(&h), u64::from(h.samples), 0)
                    }),
                Cut::Pcm { .. } => None,
            };
            if let Some((len, samples, layer)) = found {
                if layer == 1 {
                    return Err(DemuxError::NotDeviceCodec {
                        container: NAME,
                        codec: "MPEG-1 Layer I",
                    });
                }
                if p > at {
                    // Bytes that are no frame: dropped, the decoder told.
                    self.pending.drain(at..p);
                    self.discont = true;
                }
                return Ok(Some((len, samples)));
            }
            p += 1;
        }
        Ok(None)
    }
}
