//! One playback: a presentation with a stream per track, buffers in the
//! broker's shared memory, samples demuxed straight into them, and the
//! device's flow control (a buffer is refilled only after the device gave
//! it back) followed.
//!
//! The playback ends when every stream reached end of stream (`EOS`: the
//! client played it out). A client that leaves after that, as
//! `media-client --once` does at once, ends nothing: its
//! `CLIENT_DISCONNECTED` may come in the same batch of events as the last
//! `EOS`, and buffers whose acknowledgement it did not send may complete
//! `NO_CLIENT`; neither is an error then (spec 7.15, DRV-CONN-3). Before
//! that, a client going away fails the playback.
//!
//! The session and its main loop are here; `buffers` keeps each stream's
//! buffers moving, `service` handles what comes in between samples
//! (events, commands, progress), `controls` applies the user's commands,
//! `seek` reopens the input at a keyframe.

mod buffers;
mod controls;
mod seek;
mod service;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use guest_driver_shim::broker::ResetHandle;
use mediaredir_player::{BufferInfo, MediaRedir, PlayerError};
use mediaredir_proto::control::{MediaParams, StreamFormat};
use mediaredir_proto::data::FLAG_EOS;
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;
use redir_demux::{Demuxer, Track};
use seek::Skip;

use crate::commands::{Command, Scheduled};

/// How a playback is run.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The file, or a DASH init segment and its media segments, read as one.
    pub(crate) files: Vec<PathBuf>,
    /// Buffers per stream.
    pub(crate) buffers: u32,
    /// Initial buffer size of video and audio streams (grown when a sample
    /// does not fit).
    pub(crate) video_buffer_bytes: usize,
    pub(crate) audio_buffer_bytes: usize,
    pub(crate) wait_client: Duration,
    pub(crate) eos_timeout: Duration,
    /// Longest time without any buffer coming back while playing.
    pub(crate) stall_timeout: Duration,
    pub(crate) schedule: Vec<Scheduled>,
    pub(crate) progress: Duration,
    /// Ask the broker to reset the device after this many samples.
    pub(crate) reset_after: Option<(u64, ResetHandle)>,
}

impl Settings {
    /// The input as the user named it: the first file, and how many follow.
    fn name(&self) -> String {
        crate::input_name(&self.files)
    }
}

/// What a playback did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) streams: usize,
    pub(crate) samples: u64,
    pub(crate) bytes: u64,
}

/// Client-side statistics of one stream (from QoS events).
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    rendered: u64,
    dropped: u64,
    jitter_ns: i64,
}

/// A stream of the presentation.
#[derive(Debug)]
struct StreamState {
    id: u32,
    track: Track,
    audio: bool,
    /// Buffer indices the player holds.
    free: Vec<u32>,
    size: usize,
    eos: bool,
    stats: Stats,
    cancelled: u64,
    dropped: u64,
}

fn format(track: &Track, txq: u32) -> StreamFormat {
    let (fps_num, fps_den) = track.fps.unwrap_or((0, 0));
    StreamFormat {
        media: MediaParams {
            sample_rate: track.sample_rate,
            channels: track.channels,
            ..MediaParams::video(track.width, track.height, fps_num, fps_den)
        },
        codec_data: track.codec_data.clone(),
        ..StreamFormat::playback(track.codec, txq)
    }
}

/// Whether every stream reached end of stream: the playback is complete,
/// and the client may go.
fn all_ended(streams: &[StreamState]) -> bool {
    !streams.is_empty() && streams.iter().all(|s| s.eos)
}

/// A progress line every this many samples (tests wait for the first).
const SAMPLES_PER_LINE: u64 = 100;

fn secs(ns: u64) -> f64 {
    Duration::from_nanos(ns).as_secs_f64()
}

/// A playback in progress.
struct Session<'a> {
    redir: &'a mut MediaRedir,
    settings: &'a Settings,
    stdin: Option<Receiver<Command>>,
    presentation: u32,
    streams: Vec<StreamState>,
    by_track: HashMap<u32, usize>,
    paused: bool,
    volume: f64,
    muted: bool,
    quit: bool,
    /// Seeks done so far (a sample demuxed before a seek is not sent).
    seeks: u64,
    next_progress: Instant,
    schedule: Vec<Scheduled>,
    /// A buffer completed `NO_CLIENT`: the client left mid-stream.
    client_lost: bool,
    /// `CLIENT_DISCONNECTED` came (after the `POSITION` of where the
    /// client got to, spec DEV-TIME-4).
    client_left: bool,
    /// The position the client last reported (`POSITION` events), since
    /// the last seek: where play resumes after the client left.
    reached: Option<u64>,
    /// The latest link measurement (`LINK_QUALITY`), printed with the next
    /// progress line.
    link: Option<Event>,
}

/// Plays `settings.files`; commands from `stdin` are applied as they come.
pub(crate) fn play(
    redir: &mut MediaRedir,
    settings: &Settings,
    stdin: Option<Receiver<Command>>,
) -> anyhow::Result<Outcome> {
    // The earliest sample first: it fixes the presentation's start (7.13).
    let mut demuxer: Box<dyn Demuxer> = Box::new(redir_demux::StartOrdered::new(
        redir_demux::open_files(&settings.files)
            .with_context(|| format!("cannot open {}", settings.name()))?,
    ));
    let tracks: Vec<Track> = demuxer.tracks().to_vec();
    if tracks.is_empty() {
        bail!("{}: no playable track", settings.name());
    }
    for (i, t) in tracks.iter().enumerate() {
        eprintln!(
            "redir-play: track {i}: {} {}x{} {} Hz {} ch, {} bytes of codec data",
            t.codec,
            t.width,
            t.height,
            t.sample_rate,
            t.channels,
            t.codec_data.len()
        );
    }
    let caps = redir.wait_client(settings.wait_client).with_context(|| {
        format!(
            "no client connected to the device within {:?}",
            settings.wait_client
        )
    })?;
    eprintln!(
        "redir-play: client connected ({} codecs)",
        caps.codecs.len()
    );
    for (i, t) in tracks.iter().enumerate() {
        match redir.try_format(&format(t, u32::try_from(i)?)) {
            Ok(()) => {}
            Err(PlayerError::Status {
                status: status @ (Status::Unsupported | Status::NoClient),
                ..
            }) => bail!("client cannot decode {} ({status:?})", t.codec),
            Err(e) => return Err(e).with_context(|| format!("checking {}", t.codec)),
        }
    }
    let presentation = redir.create_presentation(false)?;
    let mut session = Session {
        redir,
        settings,
        stdin,
        presentation,
        streams: Vec::new(),
        by_track: HashMap::new(),
        paused: false,
        volume: 1.0,
        muted: false,
        quit: false,
        seeks: 0,
        next_progress: Instant::now() + settings.progress,
        schedule: settings.schedule.clone(),
        client_lost: false,
        client_left: false,
        reached: None,
        link: None,
    };
    let result = session.run(&tracks, &mut demuxer);
    // Whatever happened, the presentation goes (its buffers complete).
    let _ = session.redir.destroy_presentation(presentation);
    result
}

impl Session<'_> {
    /// The ids of the streams that `pick` picks, in order.
    fn stream_ids(&self, pick: impl Fn(&StreamState) -> bool) -> Vec<u32> {
        self.streams
            .iter()
            .filter(|s| pick(s))
            .map(|s| s.id)
            .collect()
    }

    /// The client left mid-stream (buffers completed `NO_CLIENT`): waits
    /// for it to come back (`--wait-client`), then seeks to where it got
    /// (the position the device reported as it left, spec DEV-TIME-4; else
    /// `at`, the next sample), so that it decodes from a keyframe; the
    /// device replays the presentation's state and geometry to it (spec
    /// DEV-GEOM-1).
    fn rejoin(
        &mut self,
        at: Duration,
        tracks: &[Track],
    ) -> anyhow::Result<(Box<dyn Demuxer>, Skip)> {
        // The buffers come back before the events that say where the
        // client was: wait for those (a second at most).
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.client_left && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.redir.wait_event(left)? {
                Some(event) => self.on_event(&event)?,
                None => break,
            }
        }
        let at = self
            .reached
            .map_or(at, |reached| at.min(Duration::from_nanos(reached)));
        eprintln!(
            "redir-play: the client left at {:.3} s; waiting for it",
            at.as_secs_f64()
        );
        self.redir
            .wait_client(self.settings.wait_client)
            .with_context(|| {
                format!(
                    "the client did not come back within {:?}",
                    self.settings.wait_client
                )
            })?;
        // Every buffer sent before the client left comes back (NO_CLIENT)
        // before going on, so that none of them counts as a new loss.
        for index in 0..self.streams.len() {
            self.collect_all(index)?;
        }
        self.client_lost = false;
        self.client_left = false;
        eprintln!("redir-play: the client is back");
        self.seek(at, tracks)
    }

    fn run(&mut self, tracks: &[Track], demuxer: &mut Box<dyn Demuxer>) -> anyhow::Result<Outcome> {
        for (i, t) in tracks.iter().enumerate() {
            let id = self
                .redir
                .create_stream(self.presentation, &format(t, u32::try_from(i)?))
                .with_context(|| format!("creating the {} stream", t.codec))?;
            let audio = t.sample_rate > 0;
            let size = if audio {
                self.settings.audio_buffer_bytes
            } else {
                self.settings.video_buffer_bytes
            };
            let count = self
                .redir
                .request_buffers(id, self.settings.buffers, size)
                .with_context(|| format!("buffers for the {} stream", t.codec))?;
            let size = self.redir.buffer_layout(id).map_or(size, |(_, s)| s);
            self.by_track.insert(t.id, self.streams.len());
            self.streams.push(StreamState {
                id,
                track: t.clone(),
                audio,
                free: (0..count).rev().collect(),
                size,
                eos: false,
                stats: Stats::default(),
                cancelled: 0,
                dropped: 0,
            });
        }
        self.redir.play(self.presentation)?;
        self.redir.set_nonblocking(true);
        let ids = self.stream_ids(|_| true);
        eprintln!(
            "redir-play: presentation {}, streams {ids:?}; playing",
            self.presentation
        );
        let mut outcome = Outcome {
            streams: self.streams.len(),
            ..Outcome::default()
        };
        let mut skip: Option<Skip> = None;
        // Until every stream has ended; again from where the client got
        // if it leaves while the player waits for the end.
        'feed: loop {
            loop {
                let Some(sample) = demuxer.next_sample().context("demuxing")? else {
                    break;
                };
                if skip.as_mut().is_some_and(|s| s.skips(&sample)) {
                    continue;
                }
                let seeks = self.seeks;
                if let Some(at) = sample.pts {
                    let at = Duration::from_nanos(at);
                    while let Some(i) = self.schedule.iter().position(|c| c.at <= at) {
                        let command = self.schedule.remove(i).command;
                        if let Some(s) = self.apply(command, tracks)? {
                            *demuxer = s.0;
                            skip = Some(s.1);
                        }
                    }
                }
                self.service(tracks, demuxer, &mut skip)?;
                if self.quit {
                    eprintln!("redir-play: stopped");
                    return Ok(outcome);
                }
                if self.seeks != seeks {
                    // The sample is from before the seek.
                    continue;
                }
                if self.client_lost {
                    // Spec DRV-DATA-5: nothing more until the client is back;
                    // then on from the keyframe before this sample.
                    let at = Duration::from_nanos(sample.pts.unwrap_or(0));
                    let (d, s) = self.rejoin(at, tracks)?;
                    *demuxer = d;
                    skip = Some(s);
                    continue;
                }
                let Some(&index) = self.by_track.get(&sample.track) else {
                    continue;
                };
                if !self.submit(index, &sample, tracks, demuxer, &mut skip)? {
                    continue;
                }
                outcome.samples += 1;
                outcome.bytes += sample.data.len() as u64;
                if outcome.samples.is_multiple_of(SAMPLES_PER_LINE) {
                    eprintln!(
                        "redir-play: {} samples, {} bytes submitted",
                        outcome.samples, outcome.bytes
                    );
                }
                if let Some((after, handle)) = &self.settings.reset_after
                    && outcome.samples == *after
                {
                    eprintln!(
                        "redir-play: asking the broker to reset the device after {after} samples"
                    );
                    handle.request();
                }
            }
            for index in 0..self.streams.len() {
                let slot = self.free_buffer(index, tracks, demuxer, &mut skip)?;
                let id = self.streams[index].id;
                self.redir.queue_buffer(
                    id,
                    slot,
                    &BufferInfo {
                        flags: FLAG_EOS,
                        ..BufferInfo::default()
                    },
                )?;
            }
            eprintln!(
                "redir-play: {} samples ({} bytes) and {} EOS submitted; waiting for EOS",
                outcome.samples,
                outcome.bytes,
                self.streams.len()
            );
            let deadline = Instant::now() + self.settings.eos_timeout;
            while self.streams.iter().any(|s| !s.eos) {
                if Instant::now() >= deadline {
                    let done = self.stream_ids(|s| s.eos);
                    bail!(
                        "end of stream within {:?}: only streams {done:?} ended",
                        self.settings.eos_timeout
                    );
                }
                self.service(tracks, demuxer, &mut skip)?;
                if self.quit {
                    return Ok(outcome);
                }
                if self.client_lost && !all_ended(&self.streams) {
                    // Everything was sent, but the client left before
                    // playing it out: on from where it got (DRV-DATA-5).
                    let at = self.reached.map_or(Duration::ZERO, Duration::from_nanos);
                    let (d, s) = self.rejoin(at, tracks)?;
                    *demuxer = d;
                    skip = Some(s);
                    continue 'feed;
                }
                self.wait(Duration::from_millis(50))?;
            }
            break;
        }
        for index in 0..self.streams.len() {
            self.collect_all(index)?;
        }
        self.print_stats();
        Ok(outcome)
    }
}
