//! One elementary stream of an MPEG-TS file: PES packets gathered from
//! transport packets, then split into the samples the device takes.
//!
//! Video PES packets each hold one access unit (as every muxer for H.264,
//! H.265 and MPEG-2 video in TS writes them); audio PES packets hold any
//! number of ADTS, MPEG audio or AC-3/E-AC-3 frames, which may also straddle two PES packets, so
//! audio bytes go through a small buffer that is cut at frame headers.
//! The PES time stamps the first frame that starts in it; the frames after
//! it are timed by their sample counts.

use crate::ac3;
use crate::adts;
use crate::bytes::ticks_to_ns;
use crate::elementary::{FrameHeader, MAX_FRAME};
use crate::mpa;
use crate::mpv;
use crate::{Clip, Codec, DemuxError, Sample};

use super::NAME;
use super::pes::{self, Unwrapper};

/// Largest PES packet gathered (an 8K intra picture fits).
const MAX_PES: usize = 16 << 20;

/// What the stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    H264,
    H265,
    Mpeg2,
    Mpeg4,
    Adts,
    Mpa,
    /// AC-3 or E-AC-3, told apart by the first frame.
    Ac3,
}

impl Kind {
    pub(super) fn codec(self) -> Codec {
        match self {
            Kind::H264 => Codec::H264,
            Kind::H265 => Codec::H265,
            Kind::Adts => Codec::Aac,
            Kind::Mpeg2 => Codec::Mpeg2Video,
            Kind::Mpeg4 => Codec::Mpeg4Part2,
            Kind::Mpa => Codec::Mp3,
            Kind::Ac3 => Codec::Ac3,
        }
    }

    pub(super) fn is_video(self) -> bool {
        matches!(self, Kind::H264 | Kind::H265 | Kind::Mpeg2 | Kind::Mpeg4)
    }
}

/// What the first frame says about the stream, to fill its track.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Described {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) sample_rate: u32,
    pub(super) channels: u32,
    pub(super) codec_data: Vec<u8>,
    /// The codec, when the first frame decides it (Layer II or III,
    /// AC-3 or E-AC-3).
    pub(super) codec: Option<Codec>,
}

/// State of one elementary stream.
pub(super) struct EsStream {
    pub(super) pid: u16,
    pub(super) kind: Kind,
    pub(super) track_id: u32,
    /// Filled from the first frame.
    pub(super) described: Option<Described>,
    pes: Vec<u8>,
    in_pes: bool,
    cc: Option<u8>,
    discont: bool,
    pts: Unwrapper,
    dts: Unwrapper,
    /// Audio bytes not yet cut into frames, and the time of the first.
    pending: Vec<u8>,
    clock_ns: Option<u64>,
    adts_first: Option<adts::Header>,
    mpa_first: Option<mpa::Header>,
    ac3_first: Option<ac3::Header>,
}

fn ns(ticks: u64) -> u64 {
    ticks_to_ns(ticks, 90_000)
}

impl EsStream {
    pub(super) fn new(pid: u16, kind: Kind) -> Self {
        EsStream {
            pid,
            kind,
            track_id: u32::from(pid),
            described: None,
            pes: Vec::new(),
            in_pes: false,
            cc: None,
            discont: false,
            pts: Unwrapper::default(),
            dts: Unwrapper::default(),
            pending: Vec::new(),
            clock_ns: None,
            adts_first: None,
            mpa_first: None,
            ac3_first: None,
        }
    }

    /// Data was lost: the partial PES and audio bytes are dropped and the
    /// next sample is flagged.
    pub(super) fn lose(&mut self) {
        self.pes.clear();
        self.in_pes = false;
        self.pending.clear();
        self.clock_ns = None;
        self.discont = true;
    }

    /// One transport packet's payload, with its continuity counter.
    pub(super) fn push(
        &mut self,
        payload: &[u8],
        unit_start: bool,
        cc: u8,
        at: u64,
        out: &mut Vec<Sample>,
    ) -> Result<(), DemuxError> {
        match self.cc {
            // A repeated packet (allowed once) carries nothing new.
            Some(prev) if prev == cc => return Ok(()),
            Some(prev) if (prev + 1) & 0x0F != cc => self.lose(),
            _ => {}
        }
        self.cc = Some(cc);
        if unit_start {
            self.finish(out)?;
            self.in_pes = true;
        } else if !self.in_pes {
            return Ok(());
        }
        if self.pes.len() + payload.len() > MAX_PES {
            return Err(DemuxError::corrupt(
                NAME,
                format!(
                    "PES packet of PID {} longer than {MAX_PES} bytes at byte {at}",
                    self.pid
                ),
            ));
        }
        self.pes.extend_from_slice(payload);
        Ok(())
    }

    /// One whole PES packet (as a program stream carries them).
    pub(super) fn push_pes(
        &mut self,
        pes: Vec<u8>,
        out: &mut Vec<Sample>,
    ) -> Result<(), DemuxError> {
        self.pes = pes;
        self.in_pes = true;
        self.finish(out)
    }

    /// Completes the PES being gathered (at the next one, or the end).
    pub(super) fn finish(&mut self, out: &mut Vec<Sample>) -> Result<(), DemuxError> {
        if !self.in_pes || self.pes.is_empty() {
            return Ok(());
        }
        let pes = std::mem::take(&mut self.pes);
        self.in_pes = false;
        let Some(h) = pes::parse(&pes).filter(|h| h.payload_at <= pes.len()) else {
            self.lose();
            return Ok(());
        };
        let payload = &pes[h.payload_at..];
        let pts = h.pts.map(|t| ns(self.pts.unwrap(t)));
        let dts = h.dts.map(|t| ns(self.dts.unwrap(t))).or(pts);
        match self.kind {
            Kind::H264 | Kind::H265 => {
                if payload.is_empty() {
                    return Ok(());
                }
                let (key, size) =
                    crate::annexb::describe_access_unit(payload, self.kind == Kind::H265);
                if self.described.is_none() {
                    let (width, height) = size.unwrap_or((0, 0));
                    self.described = Some(Described {
                        width,
                        height,
                        ..Described::default()
                    });
                }
                self.push_video(key, pts, dts, payload, out);
                Ok(())
            }
            Kind::Mpeg2 | Kind::Mpeg4 => {
                if payload.is_empty() {
                    return Ok(());
                }
                let (au, config) = if self.kind == Kind::Mpeg2 {
                    (mpv::describe(payload), Vec::new())
                } else {
                    mpv::describe_mpeg4(payload)
                };
                if self.described.is_none() {
                    // Decoding starts at a sequence header (MPEG-4: VOL);
                    // pictures before the first are useless.
                    let Some((width, height)) = au.size else {
                        return Ok(());
                    };
                    self.described = Some(Described {
                        width,
                        height,
                        codec_data: config,
                        ..Described::default()
                    });
                }
                self.push_video(au.intra && au.sequence, pts, dts, payload, out);
                Ok(())
            }
            Kind::Adts | Kind::Mpa | Kind::Ac3 => {
                if self.pending.is_empty() || self.clock_ns.is_none() {
                    self.clock_ns = pts.or(self.clock_ns);
                }
                self.pending.extend_from_slice(payload);
                self.cut_frames(out)
            }
        }
    }

    fn push_video(
        &mut self,
        keyframe: bool,
        pts: Option<u64>,
        dts: Option<u64>,
        payload: &[u8],
        out: &mut Vec<Sample>,
    ) {
        out.push(Sample {
            track: self.track_id,
            pts,
            dts,
            duration: None,
            keyframe,
            discont: std::mem::take(&mut self.discont),
            decode_only: false,
            data: payload.to_vec(),
            clip: Clip::NONE,
        });
    }

    /// Cuts whole audio frames off the pending bytes.
    fn cut_frames(&mut self, out: &mut Vec<Sample>) -> Result<(), DemuxError> {
        let mut used = 0;
        loop {
            let mut head = [0u8; 10];
            let n = (self.pending.len() - used).min(head.len());
            head[..n].copy_from_slice(&self.pending[used..used + n]);
            let frame = match self.kind {
                Kind::Adts => self.adts_frame(&head[..n])?,
                Kind::Ac3 => self.ac3_frame(&head[..n])?,
                _ => self.mpa_frame(&head[..n])?,
            };
            let sync = if self.kind == Kind::Ac3 { 0x0B } else { 0xFF };
            let rest = &self.pending[used..];
            let Some((len, skip, samples, rate)) = frame else {
                if rest.len() < 10 {
                    // Maybe a header cut by the PES end: wait for more.
                    break;
                }
                // Not a header here: resync at the next sync byte.
                self.discont = true;
                match rest.iter().skip(1).position(|&b| b == sync) {
                    Some(p) => used += p + 1,
                    None => used = self.pending.len(),
                }
                continue;
            };
            if rest.len() < len {
                break;
            }
            let time = self.clock_ns.unwrap_or(0);
            let duration = ticks_to_ns(samples, rate);
            self.clock_ns = Some(time + duration);
            if samples == 0
                && let Some(last) = out.last_mut().filter(|s| s.track == self.track_id)
            {
                // A dependent E-AC-3 substream belongs with the frame
                // before it.
                last.data.extend_from_slice(&rest[skip..len]);
                used += len;
                continue;
            }
            out.push(Sample {
                track: self.track_id,
                pts: Some(time),
                dts: Some(time),
                duration: Some(duration),
                keyframe: true,
                discont: std::mem::take(&mut self.discont),
                decode_only: false,
                data: rest[skip..len].to_vec(),
                clip: Clip::NONE,
            });
            used += len;
        }
        self.pending.drain(..used);
        if self.pending.len() > MAX_FRAME {
            // Longer than any frame, yet no whole frame: damaged.
            self.pending.clear();
            self.discont = true;
        }
        Ok(())
    }

    /// (frame length, header bytes to strip, samples, rate) of an ADTS frame.
    fn adts_frame(&mut self, b: &[u8]) -> Result<Option<(usize, usize, u64, u64)>, DemuxError> {
        let Some(h) = adts::Header::parse(b) else {
            return Ok(None);
        };
        match self.adts_first {
            None => {
                let channels = h.channels().ok_or(adts::PCE_LAYOUT)?;
                self.described = Some(Described {
                    sample_rate: h.sample_rate(),
                    channels,
                    codec_data: h.audio_specific_config(),
                    ..Described::default()
                });
                self.adts_first = Some(h);
            }
            Some(first) if !first.same_stream(&h) => return Ok(None),
            Some(_) => {}
        }
        if h.extra_blocks != 0 {
            return Err(DemuxError::Unsupported {
                container: NAME,
                feature: "several raw data blocks in one ADTS frame",
            });
        }
        Ok(Some((
            h.len(),
            h.header_len,
            1024,
            u64::from(h.sample_rate()),
        )))
    }

    /// (frame length, 0, samples, rate) of an MPEG audio frame.
    fn mpa_frame(&mut self, b: &[u8]) -> Result<Option<(usize, usize, u64, u64)>, DemuxError> {
        let Some(h) = mpa::Header::parse(b).filter(|h| FrameHeader::len(h) > 0) else {
            return Ok(None);
        };
        match self.mpa_first {
            None => {
                let codec = match h.layer {
                    3 => Codec::Mp3,
                    2 => Codec::Mp2,
                    _ => {
                        return Err(DemuxError::NotDeviceCodec {
                            container: NAME,
                            codec: h.codec_name(),
                        });
                    }
                };
                self.described = Some(Described {
                    sample_rate: h.sample_rate,
                    channels: h.channels,
                    codec: Some(codec),
                    ..Described::default()
                });
                self.mpa_first = Some(h);
            }
            Some(first) if !first.same_stream(&h) => return Ok(None),
            Some(_) => {}
        }
        Ok(Some((
            h.len(),
            0,
            u64::from(h.samples()),
            u64::from(h.sample_rate),
        )))
    }

    /// (frame length, 0, samples, rate) of an AC-3 or E-AC-3 frame.
    fn ac3_frame(&mut self, b: &[u8]) -> Result<Option<(usize, usize, u64, u64)>, DemuxError> {
        let Some(h) = ac3::Header::parse(b) else {
            return Ok(None);
        };
        match self.ac3_first {
            None if h.samples == 0 => return Ok(None),
            None => {
                self.described = Some(Described {
                    sample_rate: h.sample_rate,
                    channels: h.channels,
                    codec: Some(h.codec()),
                    ..Described::default()
                });
                self.ac3_first = Some(h);
            }
            Some(first) if !FrameHeader::same_stream(&first, &h) => return Ok(None),
            Some(_) => {}
        }
        Ok(Some((
            FrameHeader::len(&h),
            0,
            u64::from(h.samples),
            u64::from(h.sample_rate),
        )))
    }
}
