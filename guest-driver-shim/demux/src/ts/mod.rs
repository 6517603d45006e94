//! MPEG transport streams (`.ts`, `.m2ts`): broadcast recordings and HLS
//! segments, as ffmpeg and GStreamer's mpegtsmux write them.
//!
//! The PAT names the first program's map (PMT), which lists its streams;
//! the first playable video and audio stream are kept, as a local player
//! picks them. A stream type the device has no codec for (VC-1, DTS, ...)
//! is refused by name when its kind has nothing else to play.
//! Transport packets are read one at a time, so memory stays at one PES
//! packet per stream however long the recording. Continuity-counter gaps,
//! signalled discontinuities and lost sync drop the damaged data and flag
//! the next sample `discont`; 33-bit time stamps are unwrapped.

mod es;
mod pes;
pub(crate) mod ps;
mod psi;
mod start;

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;

use es::{EsStream, Kind};
use psi::SectionBuffer;

use crate::reader::Reader;
use crate::{DemuxError, Demuxer, Sample, Track};

pub(super) const NAME: &str = "MPEG-TS";
/// How far the program tables and each stream's first frame are looked for.
const OPEN_SCAN: u64 = 16 << 20;
/// How far lost sync is searched for.
const RESYNC_SCAN: usize = 64 << 10;

/// Whether `head` starts with transport packets: (packet size, offset of
/// the sync byte in it) for 188-byte TS or 192-byte M2TS.
pub(crate) fn packet_layout(head: &[u8]) -> Option<(usize, usize)> {
    [(188, 0), (192, 4)]
        .into_iter()
        .find(|&(size, off)| (0..3).all(|i| head.get(off + i * size) == Some(&0x47)))
}

/// What a PMT stream type means here.
enum Class {
    Play(Kind),
    /// Audio or video the device has no codec for.
    Refuse {
        video: bool,
        codec: &'static str,
    },
    Ignore,
}

fn classify(es: &psi::EsInfo) -> Class {
    let refuse = |video, codec| Class::Refuse { video, codec };
    match es.stream_type {
        0x1B => Class::Play(Kind::H264),
        0x24 => Class::Play(Kind::H265),
        0x0F => Class::Play(Kind::Adts),
        0x03 | 0x04 => Class::Play(Kind::Mpa),
        0x01 | 0x02 => Class::Play(Kind::Mpeg2),
        0x10 => Class::Play(Kind::Mpeg4),
        0xEA => refuse(true, "VC-1"),
        0x11 => refuse(false, "AAC in LATM"),
        0x82 | 0x85 | 0x86 | 0x8A => refuse(false, "DTS"),
        0x80 => refuse(false, "LPCM (Blu-ray)"),
        0x81 | 0x87 => Class::Play(Kind::Ac3),
        0x06 if es.ac3 => Class::Play(Kind::Ac3),
        _ => Class::Ignore,
    }
}

/// Demuxer of one transport stream file.
pub(crate) struct TsDemuxer {
    reader: Reader,
    packet_size: usize,
    sync_at: usize,
    pat: SectionBuffer,
    pmt_pid: Option<u16>,
    pmt: SectionBuffer,
    streams: Vec<EsStream>,
    tracks: Vec<Track>,
    queue: Queue,
}

impl TsDemuxer {
    /// Reads up to the tables and every kept stream's first frame.
    pub(crate) fn open(path: &Path) -> Result<Self, DemuxError> {
        let mut reader = Reader::new(File::open(path)?)?;
        let (packet_size, sync_at) = packet_layout(reader.peek(400)?)
            .ok_or_else(|| DemuxError::corrupt(NAME, "no transport packets at the start"))?;
        let mut d = TsDemuxer {
            reader,
            packet_size,
            sync_at,
            pat: SectionBuffer::default(),
            pmt_pid: None,
            pmt: SectionBuffer::default(),
            streams: Vec::new(),
            tracks: Vec::new(),
            queue: Queue::default(),
        };
        let mut out = Vec::new();
        loop {
            if !d.streams.is_empty() && d.streams.iter().all(|s| s.described.is_some()) {
                break;
            }
            if d.reader.offset() > OPEN_SCAN || !d.packet(&mut out)? {
                break;
            }
        }
        if d.streams.is_empty() {
            return Err(DemuxError::corrupt(
                NAME,
                "no program with audio or video in the first packets",
            ));
        }
        if let Some(s) = d.streams.iter().find(|s| s.described.is_none()) {
            return Err(DemuxError::corrupt(
                NAME,
                format!("no frame of PID {} in the first {OPEN_SCAN} bytes", s.pid),
            ));
        }
        d.tracks = d
            .streams
            .iter()
            .map(|s| {
                let info = s.described.clone().unwrap_or_default();
                Track {
                    id: s.track_id,
                    codec: info.codec.unwrap_or(s.kind.codec()),
                    width: info.width,
                    height: info.height,
                    sample_rate: info.sample_rate,
                    channels: info.channels,
                    codec_data: info.codec_data,
                    fps: None,
                    start_trim: 0,
                    end_trim: 0,
                }
            })
            .collect();
        set_start_trim(&mut d.tracks, &out);
        d.queue.start(&d.tracks, out);
        Ok(d)
    }

    /// Reads one transport packet; `false` at the end of the file (after
    /// the streams' last PES packets are finished).
    fn packet(&mut self, out: &mut Vec<Sample>) -> Result<bool, DemuxError> {
        let size = self.packet_size;
        let at = self.reader.offset();
        let mut pkt = [0u8; 192];
        let got = self.reader.peek(size)?;
        if got.len() < size {
            // The end (a cut last packet is dropped).
            for s in &mut self.streams {
                s.finish(out)?;
            }
            self.reader.skip(size as u64);
            return Ok(false);
        }
        pkt[..size].copy_from_slice(got);
        let p = &pkt[self.sync_at..size];
        if p[0] != 0x47 {
            self.resync(at)?;
            return Ok(true);
        }
        self.reader.skip(size as u64);
        let pid = u16::from_be_bytes([p[1] & 0x1F, p[2]]);
        let unit_start = p[1] & 0x40 != 0;
        let (afc, cc) = ((p[3] >> 4) & 3, p[3] & 0x0F);
        let mut payload_at = 4;
        let mut signalled = false;
        if afc & 2 != 0 {
            let len = usize::from(p[4]);
            signalled = len > 0 && p[5] & 0x80 != 0;
            payload_at = 5 + len;
        }
        let stream = self.streams.iter_mut().find(|s| s.pid == pid);
        if p[1] & 0x80 != 0 || payload_at > p.len() {
            // Transport error indicator, or a bad adaptation field.
            if let Some(s) = stream {
                s.lose();
            }
            return Ok(true);
        }
        if afc & 1 == 0 {
            return Ok(true);
        }
        let payload = &p[payload_at..];
        if let Some(s) = stream {
            if signalled {
                s.lose();
            }
            s.push(payload, unit_start, cc, at, out)?;
        } else if pid == 0 {
            if let Some(section) = self.pat.push(payload, unit_start) {
                self.pmt_pid = self.pmt_pid.or(psi::pat_first_pmt(&section));
            }
        } else if Some(pid) == self.pmt_pid
            && self.streams.is_empty()
            && let Some(section) = self.pmt.push(payload, unit_start)
            && let Some(list) = psi::pmt_streams(&section)
        {
            self.streams = choose(&list)?;
        }
        Ok(true)
    }

    /// Finds the packet rhythm again after a byte that is not 0x47.
    fn resync(&mut self, at: u64) -> Result<(), DemuxError> {
        let size = self.packet_size;
        let window = self.reader.peek(RESYNC_SCAN + 3 * size)?;
        // Three sync bytes a packet apart (or up to the end of the file).
        let found = (1..window.len().min(RESYNC_SCAN)).find(|&i| {
            (0..3).all(|k| match window.get(i + self.sync_at + k * size) {
                Some(&b) => b == 0x47,
                None => k > 0,
            })
        });
        let Some(skip) = found else {
            return Err(DemuxError::corrupt(
                NAME,
                format!("lost packet sync at byte {at}"),
            ));
        };
        self.reader.skip(skip as u64);
        for s in &mut self.streams {
            s.lose();
        }
        Ok(())
    }
}

/// Presentation starts at the first picture. Audio timed before it (the
/// AAC priming frame ffmpeg times ahead of the video) is decoded by a local
/// player, GStreamer's decoder clipping it to the segment tsdemux starts
/// there, so those samples become the audio track's start trim.
pub(super) fn set_start_trim(tracks: &mut [Track], first: &[Sample]) {
    let Some(video) = tracks.iter().find(|t| t.codec.is_video()).map(|t| t.id) else {
        return;
    };
    let Some(start) = first.iter().find(|s| s.track == video).and_then(|s| s.pts) else {
        return;
    };
    for t in tracks.iter_mut().filter(|t| !t.codec.is_video()) {
        if let Some(pts) = first.iter().find(|s| s.track == t.id).and_then(|s| s.pts)
            && pts < start
        {
            // Rounded to whole samples: 90 kHz ticks do not divide 44.1 kHz.
            let ns = u128::from(start - pts) * u128::from(t.sample_rate);
            t.start_trim = u64::try_from((ns + 500_000_000) / 1_000_000_000).unwrap_or(0);
        }
    }
}

/// Keeps the first playable video and audio stream of a PMT.
fn choose(list: &[psi::EsInfo]) -> Result<Vec<EsStream>, DemuxError> {
    let mut streams: Vec<EsStream> = Vec::new();
    let mut refused = [None, None];
    for es in list {
        match classify(es) {
            Class::Play(kind) => {
                let video = kind.is_video();
                if !streams.iter().any(|s| s.kind.is_video() == video) {
                    streams.push(EsStream::new(es.pid, kind));
                }
            }
            Class::Refuse { video, codec } => {
                refused[usize::from(video)].get_or_insert(codec);
            }
            Class::Ignore => {}
        }
    }
    for (video, codec) in [(false, refused[0]), (true, refused[1])] {
        let has_kind = streams.iter().any(|s| s.kind.is_video() == video);
        if let (false, Some(codec)) = (has_kind, codec) {
            return Err(DemuxError::NotDeviceCodec {
                container: NAME,
                codec,
            });
        }
    }
    Ok(streams)
}

impl Demuxer for TsDemuxer {
    fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        let mut queue = std::mem::take(&mut self.queue);
        let next = queue.next(|out| self.packet(out));
        self.queue = queue;
        next
    }
}

/// Samples read ahead of the caller (a packet may complete several), with
/// their times moved to start near 0.
#[derive(Default)]
pub(super) struct Queue {
    samples: VecDeque<Sample>,
    /// Audio decoded before the first picture, cut as a local player does.
    trim: start::StartTrim,
    /// Earliest time at open; output times start near 0 from it.
    origin: u64,
    done: bool,
}

impl Queue {
    /// The samples read at open, which set the origin and the first
    /// picture's time.
    pub(super) fn start(&mut self, tracks: &[Track], mut out: Vec<Sample>) {
        self.trim = start::StartTrim::new(tracks, &out);
        self.trim.apply_first(&mut out);
        self.origin = out
            .iter()
            .filter_map(|s| s.dts.or(s.pts))
            .min()
            .unwrap_or(0);
        self.shift(out);
    }

    fn push(&mut self, mut out: Vec<Sample>) {
        self.trim.apply(&mut out);
        self.shift(out);
    }

    /// Queues `out` with times from the origin.
    fn shift(&mut self, out: Vec<Sample>) {
        let origin = self.origin;
        let shift = |t: Option<u64>| t.map(|t| t.saturating_sub(origin));
        for mut s in out {
            s.pts = shift(s.pts);
            s.dts = shift(s.dts);
            self.samples.push_back(s);
        }
    }

    /// The next sample; `read` adds what one packet completes and says
    /// `false` at the end of the file.
    pub(super) fn next(
        &mut self,
        mut read: impl FnMut(&mut Vec<Sample>) -> Result<bool, DemuxError>,
    ) -> Result<Option<Sample>, DemuxError> {
        loop {
            if let Some(s) = self.samples.pop_front() {
                return Ok(Some(s));
            }
            if self.done {
                return Ok(None);
            }
            let mut out = Vec::new();
            // A few packets at a time keep the queue short.
            while out.is_empty() {
                if !read(&mut out)? {
                    self.done = true;
                    break;
                }
            }
            self.push(out);
        }
    }
}
