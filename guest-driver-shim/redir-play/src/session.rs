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

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use guest_driver_shim::broker::ResetHandle;
use guest_driver_shim::player::{BufferInfo, MediaRedir, PlayerError};
use mediaredir_proto::control::{Direction, StreamFormat};
use mediaredir_proto::data::{FLAG_DECODE_ONLY, FLAG_DISCONT, FLAG_EOS, FLAG_KEYFRAME};
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;
use redir_demux::{Demuxer, Sample, Track};

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
        codec: track.codec,
        direction: Direction::Playback,
        txq,
        source_id: 0,
        width: track.width,
        height: track.height,
        fps_num,
        fps_den,
        sample_rate: track.sample_rate,
        channels: track.channels,
        bitrate: 0,
        codec_data: track.codec_data.clone(),
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
    };
    let result = session.run(&tracks, &mut demuxer);
    // Whatever happened, the presentation goes (its buffers complete).
    let _ = session.redir.destroy_presentation(presentation);
    result
}

impl Session<'_> {
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
        let ids: Vec<u32> = self.streams.iter().map(|s| s.id).collect();
        eprintln!(
            "redir-play: presentation {}, streams {ids:?}; playing",
            self.presentation
        );
        let mut outcome = Outcome {
            streams: self.streams.len(),
            ..Outcome::default()
        };
        let mut skip: Option<Skip> = None;
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
                let done: Vec<u32> = self
                    .streams
                    .iter()
                    .filter(|s| s.eos)
                    .map(|s| s.id)
                    .collect();
                bail!(
                    "end of stream within {:?}: only streams {done:?} ended",
                    self.settings.eos_timeout
                );
            }
            self.service(tracks, demuxer, &mut skip)?;
            if self.quit {
                return Ok(outcome);
            }
            self.wait(Duration::from_millis(50))?;
        }
        for index in 0..self.streams.len() {
            self.collect_all(index)?;
        }
        self.print_stats();
        Ok(outcome)
    }

    /// Writes `sample` into a free buffer of its stream and queues it;
    /// `false` when a seek came first (the sample is then stale).
    fn submit(
        &mut self,
        index: usize,
        sample: &Sample,
        tracks: &[Track],
        demuxer: &mut Box<dyn Demuxer>,
        skip: &mut Option<Skip>,
    ) -> anyhow::Result<bool> {
        if sample.data.len() > self.streams[index].size {
            self.grow(index, sample.data.len())?;
        }
        let seeks = self.seeks;
        let slot = self.free_buffer(index, tracks, demuxer, skip)?;
        if self.seeks != seeks {
            self.streams[index].free.push(slot);
            return Ok(false);
        }
        let id = self.streams[index].id;
        let buffer = self
            .redir
            .buffer_mut(id, slot)
            .context("a free buffer is not writable")?;
        buffer[..sample.data.len()].copy_from_slice(&sample.data);
        self.redir.queue_buffer(
            id,
            slot,
            &BufferInfo {
                bytes_used: u32::try_from(sample.data.len())?,
                pts: sample.pts,
                // Matroska has no DTS: it stays None.
                dts: sample.dts,
                duration: sample.duration,
                // Lost data (an MPEG-TS continuity gap) tells the decoder
                // to resync rather than to continue.
                flags: if sample.keyframe { FLAG_KEYFRAME } else { 0 }
                    | if sample.discont { FLAG_DISCONT } else { 0 }
                    | if sample.decode_only {
                        FLAG_DECODE_ONLY
                    } else {
                        0
                    },
                clip: sample.clip,
            },
        )?;
        Ok(true)
    }

    /// Replaces the buffers of stream `index` by larger ones (all must come
    /// back first).
    fn grow(&mut self, index: usize, need: usize) -> anyhow::Result<()> {
        self.collect_all(index)?;
        let id = self.streams[index].id;
        let size = need.next_power_of_two();
        eprintln!("redir-play: stream {id}: buffers grown to {size} bytes");
        let count = self
            .redir
            .request_buffers(id, self.settings.buffers, size)?;
        let stream = &mut self.streams[index];
        stream.free = (0..count).rev().collect();
        stream.size = self.redir.buffer_layout(id).map_or(size, |(_, s)| s);
        Ok(())
    }

    /// Waits until every buffer of stream `index` is back.
    fn collect_all(&mut self, index: usize) -> anyhow::Result<()> {
        let id = self.streams[index].id;
        let deadline = Instant::now() + self.settings.stall_timeout;
        while self.redir.queued_count(id) > 0 {
            if !self.reap(index)? {
                if Instant::now() >= deadline {
                    bail!(
                        "stream {id}: {} buffers not given back within {:?}",
                        self.redir.queued_count(id),
                        self.settings.stall_timeout
                    );
                }
                self.wait(Duration::from_millis(50))?;
            }
        }
        Ok(())
    }

    /// Takes back the buffers of stream `index` the device completed;
    /// whether any came back.
    fn reap(&mut self, index: usize) -> anyhow::Result<bool> {
        let id = self.streams[index].id;
        let mut any = false;
        loop {
            match self.redir.dequeue_buffer(id) {
                Ok(done) => {
                    any = true;
                    let stream = &mut self.streams[index];
                    stream.free.push(done.index);
                    match done.status {
                        Status::Ok => {}
                        // Played out (the client reported the end of the
                        // stream), its acknowledgement gone with the client.
                        Status::NoClient if stream.eos => {}
                        Status::Cancelled => stream.cancelled += 1,
                        Status::Dropped => stream.dropped += 1,
                        other => bail!("a buffer of stream {id} completed with {other:?}"),
                    }
                }
                Err(PlayerError::WouldBlock | PlayerError::Usage(_)) => return Ok(any),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A buffer of stream `index` the player holds, waiting (and serving
    /// events and commands) while the device holds them all.
    fn free_buffer(
        &mut self,
        index: usize,
        tracks: &[Track],
        demuxer: &mut Box<dyn Demuxer>,
        skip: &mut Option<Skip>,
    ) -> anyhow::Result<u32> {
        let mut deadline = Instant::now() + self.settings.stall_timeout;
        loop {
            if let Some(slot) = self.streams[index].free.pop() {
                return Ok(slot);
            }
            if self.reap(index)? {
                continue;
            }
            self.service(tracks, demuxer, skip)?;
            if self.paused {
                // Nothing comes back while paused: that is not a stall.
                deadline = Instant::now() + self.settings.stall_timeout;
            }
            if Instant::now() >= deadline {
                bail!(
                    "stream {}: no buffer came back within {:?}",
                    self.streams[index].id,
                    self.settings.stall_timeout
                );
            }
            self.wait(Duration::from_millis(50))?;
        }
    }

    /// Waits up to `timeout` for the broker to send something.
    fn wait(&self, timeout: Duration) -> anyhow::Result<()> {
        let mut fds = [libc::pollfd {
            fd: self.redir.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd, exclusively borrowed for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Events, stdin commands and progress.
    fn service(
        &mut self,
        tracks: &[Track],
        demuxer: &mut Box<dyn Demuxer>,
        skip: &mut Option<Skip>,
    ) -> anyhow::Result<()> {
        loop {
            match self.redir.dequeue_event() {
                Ok(event) => self.on_event(&event)?,
                Err(PlayerError::WouldBlock) => break,
                Err(e) => return Err(e.into()),
            }
        }
        loop {
            let command = match self.stdin.as_ref().map(Receiver::try_recv) {
                Some(Ok(c)) => c,
                Some(Err(TryRecvError::Disconnected)) => {
                    self.stdin = None;
                    break;
                }
                Some(Err(TryRecvError::Empty)) | None => break,
            };
            if let Some((d, s)) = self.apply(command, tracks)? {
                *demuxer = d;
                *skip = Some(s);
            }
        }
        if Instant::now() >= self.next_progress {
            self.next_progress = Instant::now() + self.settings.progress;
            self.print_position()?;
        }
        Ok(())
    }

    fn on_event(&mut self, event: &Event) -> anyhow::Result<()> {
        match *event {
            Event::Eos { stream } => {
                if let Some(s) = self.streams.iter_mut().find(|s| s.id == stream) {
                    eprintln!("redir-play: stream {stream} reached end of stream");
                    s.eos = true;
                }
            }
            Event::StreamError { stream, status } => {
                bail!("stream {stream} failed at the client: {status:?}")
            }
            Event::Qos {
                stream,
                rendered,
                dropped,
                jitter_ns,
            } => {
                if let Some(s) = self.streams.iter_mut().find(|s| s.id == stream) {
                    s.stats = Stats {
                        rendered,
                        dropped,
                        jitter_ns,
                    };
                }
            }
            Event::ClientDisconnected => {
                if !all_ended(&self.streams) {
                    bail!("the client went away");
                }
                eprintln!("redir-play: the client left after the end of every stream");
            }
            Event::DeviceStarted => bail!("the device restarted (its host daemon)"),
            Event::EventsLost { count } => {
                eprintln!("redir-play: {count} events lost");
            }
            _ => {}
        }
        Ok(())
    }

    /// Applies `command`; a seek returns the demuxer to go on with.
    fn apply(
        &mut self,
        command: Command,
        tracks: &[Track],
    ) -> anyhow::Result<Option<(Box<dyn Demuxer>, Skip)>> {
        let p = self.presentation;
        match command {
            Command::Pause => {
                self.redir.pause(p)?;
                self.paused = true;
                eprintln!("redir-play: paused");
            }
            Command::Play => {
                self.redir.play(p)?;
                self.paused = false;
                eprintln!("redir-play: playing");
            }
            Command::Seek(to) => return self.seek(to, tracks).map(Some),
            Command::Volume(v) => {
                self.volume = v;
                self.apply_volume()?;
                eprintln!("redir-play: volume {v}");
            }
            Command::Mute(m) => {
                self.muted = m;
                self.apply_volume()?;
                eprintln!("redir-play: {}", if m { "muted" } else { "unmuted" });
            }
            Command::Rate(r) => {
                self.redir.set_rate(p, r)?;
                eprintln!("redir-play: rate {r}");
            }
            Command::Status => {
                self.print_position()?;
                self.print_stats();
            }
            Command::Sleep(d) => std::thread::sleep(d),
            Command::Quit => self.quit = true,
        }
        Ok(None)
    }

    fn apply_volume(&mut self) -> anyhow::Result<()> {
        let ids: Vec<u32> = self
            .streams
            .iter()
            .filter(|s| s.audio)
            .map(|s| s.id)
            .collect();
        for id in ids {
            self.redir.set_volume(id, self.volume, self.muted)?;
        }
        Ok(())
    }

    /// Flushes the presentation and reopens the file at the keyframe at or
    /// before `to` (a key-unit seek: the client shows that keyframe first).
    fn seek(&mut self, to: Duration, tracks: &[Track]) -> anyhow::Result<(Box<dyn Demuxer>, Skip)> {
        let skip = Skip::plan(&self.settings.files, tracks, to)?;
        self.seeks += 1;
        self.redir.seek(self.presentation, skip.from_ns)?;
        for s in &mut self.streams {
            s.eos = false;
        }
        eprintln!(
            "redir-play: seek to {:.3} s: from the keyframe at {:.3} s",
            to.as_secs_f64(),
            secs(skip.from_ns)
        );
        let demuxer = redir_demux::open_files(&self.settings.files)
            .with_context(|| format!("reopening {}", self.settings.name()))?;
        Ok((demuxer, skip))
    }

    fn print_position(&mut self) -> anyhow::Result<()> {
        let p = self.redir.query_position(self.presentation)?;
        eprintln!(
            "redir-play: position {:.3} s, buffered {:.3} s, {:?}",
            secs(p.position_ns),
            secs(p.buffered_ns),
            p.state
        );
        Ok(())
    }

    fn print_stats(&self) {
        for s in &self.streams {
            eprintln!(
                "redir-play: client: stream {} ({}): rendered {}, dropped {}, jitter {:.3} ms; \
                 buffers cancelled {}, dropped {}",
                s.id,
                s.track.codec,
                s.stats.rendered,
                s.stats.dropped,
                s.stats.jitter_ns as f64 / 1e6,
                s.cancelled,
                s.dropped
            );
        }
    }
}

/// Which samples a seek skips: video samples before the keyframe (counted
/// in decode order, so B-frames that follow it stay) and other samples
/// before its time.
#[derive(Debug)]
pub(crate) struct Skip {
    from_ns: u64,
    /// Per video track: samples still to skip.
    video_left: HashMap<u32, u64>,
}

impl Skip {
    /// Scans the file for the last keyframe at or before `to` of the first
    /// video track.
    fn plan(files: &[PathBuf], tracks: &[Track], to: Duration) -> anyhow::Result<Skip> {
        let to_ns = u64::try_from(to.as_nanos()).unwrap_or(u64::MAX);
        let video = tracks.iter().find(|t| t.sample_rate == 0).map(|t| t.id);
        let Some(video) = video else {
            return Ok(Skip {
                from_ns: to_ns,
                video_left: HashMap::new(),
            });
        };
        let mut demuxer = redir_demux::open_files(files)?;
        let mut index = 0u64;
        let (mut key_index, mut key_ns) = (0u64, 0u64);
        while let Some(s) = demuxer.next_sample()? {
            if s.track != video {
                continue;
            }
            let pts = s.pts.unwrap_or(0);
            if s.keyframe && pts <= to_ns {
                (key_index, key_ns) = (index, pts);
            }
            if s.keyframe && pts > to_ns {
                break;
            }
            index += 1;
        }
        Ok(Skip {
            from_ns: key_ns,
            video_left: HashMap::from([(video, key_index)]),
        })
    }

    /// Whether `sample` is skipped (and counts it).
    fn skips(&mut self, sample: &Sample) -> bool {
        if let Some(left) = self.video_left.get_mut(&sample.track) {
            if *left > 0 {
                *left -= 1;
                return true;
            }
            return false;
        }
        sample.pts.is_some_and(|pts| pts < self.from_ns)
    }
}
