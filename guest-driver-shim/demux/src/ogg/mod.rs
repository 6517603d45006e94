//! Ogg (Opus, Vorbis, FLAC) through the `ogg` crate's packet reader.
//!
//! Ogg splits codec headers into separate packets and times only pages, so
//! this module gathers the headers into the device's codec data (OpusHead;
//! three Xiph-laced Vorbis headers; "fLaC" + metadata blocks) and times
//! every packet by counting the samples of the packets before it.

pub(crate) mod frames;
pub(crate) mod vorbis;

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use ::ogg::reading::{OggReadError, PacketReader};

use crate::{Clip, Codec, DemuxError, Demuxer, Sample, Track};

const NAME: &str = "Ogg";

fn ogg_err(e: OggReadError) -> DemuxError {
    match e {
        OggReadError::ReadError(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
            DemuxError::Io(io)
        }
        other => DemuxError::corrupt(NAME, other.to_string()),
    }
}

/// State of one logical stream.
struct Stream {
    serial: u32,
    /// Index into the track list, `None` for skipped streams (Skeleton).
    track: Option<usize>,
    /// Header packets still expected.
    headers_left: usize,
    headers: Vec<Vec<u8>>,
    vorbis: Option<vorbis::Modes>,
    /// Samples before the next packet.
    position: u64,
    /// Opus: samples to drop at the start (OpusHead pre-skip).
    pre_skip: u64,
}

/// Demuxer of one Ogg file.
pub(crate) struct OggDemuxer {
    reader: PacketReader<BufReader<File>>,
    tracks: Vec<Track>,
    streams: Vec<Stream>,
    queue: VecDeque<Sample>,
}

impl OggDemuxer {
    /// Reads every stream's headers.
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let reader = PacketReader::new(BufReader::new(File::open(path)?));
        let mut d = OggDemuxer {
            reader,
            tracks: Vec::new(),
            streams: Vec::new(),
            queue: VecDeque::new(),
        };
        while let Some(p) = d.reader.read_packet().map_err(ogg_err)? {
            let serial = p.stream_serial();
            let idx = match d.streams.iter().position(|s| s.serial == serial) {
                Some(i) => i,
                None => {
                    if !p.first_in_stream() {
                        return Err(DemuxError::corrupt(NAME, "packet of an unknown stream"));
                    }
                    d.add_stream(serial, &p.data)?;
                    continue;
                }
            };
            if d.streams[idx].headers_left > 0 {
                let flac = d.streams[idx].track.map(|t| d.tracks[t].codec) == Some(Codec::Flac);
                if flac && frames::is_flac_frame(&p.data) {
                    // Encoders miscount FLAC header packets; the first frame ends them.
                    d.streams[idx].headers_left = 0;
                    d.finish_headers(idx)?;
                } else {
                    let last_block = flac && p.data.first().is_some_and(|b| b & 0x80 != 0);
                    let s = &mut d.streams[idx];
                    s.headers_left = if last_block { 0 } else { s.headers_left - 1 };
                    s.headers.push(p.data);
                    if s.headers_left == 0 {
                        d.finish_headers(idx)?;
                    }
                    continue;
                }
            }
            let end = end_granule(&p);
            if let Some(s) = d.sample(idx, p.data, end) {
                d.queue.push_back(s);
            }
            if d.streams.iter().all(|s| s.headers_left == 0) {
                break;
            }
        }
        if d.streams.iter().any(|s| s.headers_left > 0) {
            return Err(DemuxError::corrupt(
                NAME,
                "file ends inside the codec headers",
            ));
        }
        if d.tracks.is_empty() {
            return Err(DemuxError::corrupt(NAME, "no audio stream"));
        }
        Ok(d)
    }

    /// Identifies a new logical stream from its first packet.
    fn add_stream(&mut self, serial: u32, first: &[u8]) -> Result<(), DemuxError> {
        let mut stream = Stream {
            serial,
            track: None,
            headers_left: 0,
            headers: vec![first.to_vec()],
            vorbis: None,
            position: 0,
            pre_skip: 0,
        };
        let (codec, headers_left) = if first.starts_with(b"OpusHead") {
            (Codec::Opus, 1)
        } else if first.starts_with(b"\x01vorbis") {
            (Codec::Vorbis, 2)
        } else if first.starts_with(b"\x7fFLAC") && first.len() >= 13 {
            // STREAMINFO's block header flags whether more metadata follows;
            // the packet count in the mapping header is not trusted.
            (
                Codec::Flac,
                if first[13] & 0x80 != 0 { 0 } else { usize::MAX },
            )
        } else if first.starts_with(b"fishead\0") {
            self.streams.push(stream);
            return Ok(());
        } else {
            let magic: String = first
                .iter()
                .take(8)
                .map(|&b| {
                    if b.is_ascii_graphic() {
                        char::from(b)
                    } else {
                        '.'
                    }
                })
                .collect();
            return Err(DemuxError::UnsupportedCodec {
                container: NAME,
                codec: magic,
            });
        };
        let id = u32::try_from(self.tracks.len() + 1).unwrap_or(u32::MAX);
        stream.track = Some(self.tracks.len());
        stream.headers_left = headers_left;
        // Rate, channels and codec data come with the headers.
        self.tracks.push(Track::audio(id, codec, 0, 0));
        self.streams.push(stream);
        let idx = self.streams.len() - 1;
        if headers_left == 0 {
            self.finish_headers(idx)?;
        }
        Ok(())
    }

    /// Builds the codec data once a stream's headers are all in.
    fn finish_headers(&mut self, idx: usize) -> Result<(), DemuxError> {
        let s = &mut self.streams[idx];
        let Some(t) = s.track.map(|t| &mut self.tracks[t]) else {
            return Ok(());
        };
        let first = &s.headers[0];
        let le32 = |b: &[u8], o: usize| -> Result<u32, DemuxError> {
            b.get(o..o + 4)
                .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
                .ok_or_else(|| DemuxError::corrupt(NAME, "short identification header"))
        };
        match t.codec {
            Codec::Opus => {
                t.channels = u32::from(*first.get(9).unwrap_or(&0));
                t.sample_rate = 48_000;
                t.codec_data = first.clone();
                s.pre_skip = first
                    .get(10..12)
                    .map_or(0, |b| u64::from(u16::from_le_bytes([b[0], b[1]])));
            }
            Codec::Vorbis => {
                t.channels = u32::from(*first.get(11).unwrap_or(&0));
                t.sample_rate = le32(first, 12)?;
                let parts: Vec<&[u8]> = s.headers.iter().map(Vec::as_slice).collect();
                s.vorbis = Some(
                    vorbis::Modes::parse(&s.headers[0], &s.headers[2])
                        .ok_or_else(|| DemuxError::corrupt(NAME, "bad Vorbis setup header"))?,
                );
                t.codec_data = crate::xiph::lace(&parts);
            }
            _ => {
                // 0x7F "FLAC" major minor count(2) "fLaC" STREAMINFO block,
                // then one metadata block per further header packet. The
                // codec data is "fLaC" + STREAMINFO flagged last, as from a
                // native FLAC file: comments, pictures and the flac tool's
                // padding and seek table do not change the decoding, and
                // would make it longer than the device takes.
                let si = first
                    .get(13..17 + 34)
                    .ok_or_else(|| DemuxError::corrupt(NAME, "short FLAC STREAMINFO"))?;
                let rate_bits = u32::from_be_bytes([si[14], si[15], si[16], si[17]]);
                t.sample_rate = rate_bits >> 12;
                t.channels = ((rate_bits >> 9) & 7) + 1;
                let mut data = b"fLaC".to_vec();
                data.extend_from_slice(si);
                data[4] |= 0x80;
                t.codec_data = data;
            }
        }
        Ok(())
    }

    /// Turns a data packet into a sample (none for skipped streams);
    /// `end` is the granule position of the stream's last page when this
    /// is the stream's last packet.
    fn sample(&mut self, idx: usize, data: Vec<u8>, end: Option<u64>) -> Option<Sample> {
        if data.is_empty() {
            // ffmpeg ends Ogg FLAC with an empty packet on the last page: no
            // frame, and the device takes no empty buffer but EOS. (FLAC
            // frames carry their own block size, so its end granule cuts
            // nothing: oggdemux + flacdec play every sample of them.)
            return None;
        }
        let s = &mut self.streams[idx];
        let t = &self.tracks[s.track?];
        let samples = match t.codec {
            Codec::Opus => frames::opus_samples(&data),
            Codec::Vorbis => s.vorbis.as_mut().map_or(0, |m| m.duration(&data)),
            _ => frames::flac_samples(&data),
        };
        let start = s.position;
        s.position = s.position.saturating_add(samples);
        let rate = u64::from(t.sample_rate);
        // Opus (RFC 7845 section 4): the pre-skip is dropped from the start
        // and the last page's granule position ends the stream, cutting
        // the end padding; oggdemux marks the same GstAudioClippingMeta.
        let clip = match t.codec {
            Codec::Opus => opus_clip(start, samples, s.pre_skip, end),
            Codec::Vorbis => vorbis_end_clip(s.position, samples, end, t.sample_rate),
            _ => Clip::NONE,
        };
        Some(Sample {
            clip,
            ..Sample::audio(t.id, start, samples, rate, data)
        })
    }
}

/// The granule position of `p`'s page when `p` is its stream's last packet.
fn end_granule(p: &::ogg::Packet) -> Option<u64> {
    p.last_in_stream().then(|| p.absgp_page())
}

/// The clipping of the Opus packet holding samples `start .. start + n` of
/// the decoded stream (pre-skip included), given the pre-skip and, for the
/// last packet, the final granule position.
fn opus_clip(start: u64, n: u64, pre_skip: u64, end: Option<u64>) -> Clip {
    let padding = end.map_or(0, |g| (start + n).saturating_sub(g));
    crate::gst_clip::sample_clip(start, n, pre_skip, padding)
}

/// The end clip of the last Vorbis packet (decoding to samples `after - n
/// .. after`) when the last page's granule position `end` ends the stream
/// earlier: GStreamer trims it by time (oggdemux's segment stop), with the
/// roundings of [`crate::gst_clip`].
fn vorbis_end_clip(after: u64, n: u64, end: Option<u64>, rate: u32) -> Clip {
    let Some(granule) = end.filter(|&g| g < after) else {
        return Clip::NONE;
    };
    let rate = u64::from(rate);
    let stop = crate::gst_clip::ns_floor(granule, rate);
    crate::gst_clip::segment_clip(after.saturating_sub(n), n, rate, 0, Some(stop))
}

impl Demuxer for OggDemuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        if let Some(s) = self.queue.pop_front() {
            return Ok(Some(s));
        }
        loop {
            let Some(p) = self.reader.read_packet().map_err(ogg_err)? else {
                return Ok(None);
            };
            let serial = p.stream_serial();
            let Some(idx) = self.streams.iter().position(|s| s.serial == serial) else {
                return Err(DemuxError::Unsupported {
                    container: NAME,
                    feature: "chained or late-starting streams",
                });
            };
            let end = end_granule(&p);
            if let Some(s) = self.sample(idx, p.data, end) {
                return Ok(Some(s));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_pre_skip_and_end_granule() {
        // 312 samples of pre-skip, 20 ms packets, the stream ends 648
        // samples into its last packet (ffmpeg's 2 s sine: 312 + 96 000).
        assert_eq!(opus_clip(0, 960, 312, None), Clip { start: 312, end: 0 });
        assert_eq!(opus_clip(960, 960, 312, None), Clip::NONE);
        assert_eq!(
            opus_clip(96_000, 960, 312, Some(96_312)),
            Clip { start: 0, end: 648 }
        );
        // A pre-skip longer than a packet spans packets.
        assert_eq!(opus_clip(960, 960, 3840, None), Clip { start: 960, end: 0 });
        // One packet holding both ends never drops more than it has.
        assert_eq!(
            vorbis_end_clip(48_704, 1024, Some(48_000), 48_000),
            Clip { start: 0, end: 703 }
        );
        assert_eq!(vorbis_end_clip(48_704, 1024, None, 48_000), Clip::NONE);
        // 3 samples over: the roundings keep one of them, as GStreamer.
        assert_eq!(
            vorbis_end_clip(48_003, 1024, Some(48_000), 48_000),
            Clip { start: 0, end: 2 }
        );
        assert_eq!(
            opus_clip(0, 960, 312, Some(400)),
            Clip {
                start: 312,
                end: 560
            }
        );
    }
}
