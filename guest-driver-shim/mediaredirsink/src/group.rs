//! Presentations shared by the sinks of one pipeline.
//!
//! The audio and video sinks of one `playbin` must play in ONE presentation
//! (one clock at the client, so lip sync is the client's business), and the
//! broker lets a connection address only what it created (spec §9). So the
//! sinks of a group share one broker connection and one presentation: a
//! process-wide registry maps (broker socket, group key) to a [`Group`],
//! created by the first sink that negotiates and destroyed (with its
//! presentation) when the last sink leaves it. The key is the sink's
//! `group` property, or when that is empty the address of its top-level
//! bin (the pipeline), so the sinks of one pipeline share a presentation
//! without any setting and two pipelines never do.
//!
//! The connection is non-blocking for buffers and events: a sink waiting
//! for a buffer polls the connection's fd without holding the group lock,
//! so the other sink's streaming thread is never held up by it.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::Duration;

use mediaredir_player::seqpacket::wait_readable;
use mediaredir_player::{MediaRedir, PlayerError};
use mediaredir_proto::control::StreamFormat;
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;

type Key = (PathBuf, String);

static GROUPS: LazyLock<Mutex<HashMap<Key, Weak<Group>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A broker connection and presentation shared by the sinks of a group.
#[derive(Debug)]
pub(crate) struct Group {
    inner: Mutex<Shared>,
    /// A duplicate of the connection's fd, to wait on without the lock.
    fd: OwnedFd,
}

/// What the group lock protects.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The connection.
    pub(crate) redir: MediaRedir,
    /// The presentation of the group.
    pub(crate) presentation: u32,
    /// Streams of the group and their playback queue.
    txqs: HashMap<u32, u32>,
    /// Streams whose end of stream the client reported.
    eos: HashSet<u32>,
    /// Streams that failed at the client.
    errors: HashMap<u32, Status>,
    /// Set when the client went away or the device restarted.
    pub(crate) gone: Option<&'static str>,
    /// A flushing seek started, or nothing was queued yet: the first sink
    /// to render flushes the presentation at its segment's start (once for
    /// all sinks).
    pub(crate) flush_pending: bool,
    /// Whether the presentation was last told to play.
    pub(crate) playing: bool,
    /// The broker or the device stopped answering: no more control
    /// requests (each would wait for its timeout), tear-down is local.
    pub(crate) broken: bool,
}

/// The group of an element whose `group` is unset: its pipeline (the
/// top-level bin), so the sinks and decoders of one pipeline share a
/// presentation and two pipelines never do.
pub(crate) fn pipeline_key(element: &gstreamer::Object) -> String {
    use gstreamer::prelude::*;
    let mut top = element.clone();
    while let Some(parent) = top.parent() {
        top = parent;
    }
    format!("pipeline@{:p}", top.as_ptr())
}

/// Opens a connection with a short timeout (used for caps queries too).
pub(crate) fn connect(socket: &Path) -> Result<MediaRedir, PlayerError> {
    let mut redir = MediaRedir::open(socket)?;
    redir.set_timeout(Duration::from_secs(5));
    Ok(redir)
}

impl Group {
    /// The group of `key` at `socket`, created (with its presentation) when
    /// no sink holds it.
    pub(crate) fn join(socket: &Path, key: &str) -> Result<Arc<Group>, PlayerError> {
        let mut groups = crate::lock(&GROUPS);
        groups.retain(|_, g| g.strong_count() > 0);
        let key = (socket.to_path_buf(), key.to_owned());
        if let Some(group) = groups.get(&key).and_then(Weak::upgrade) {
            return Ok(group);
        }
        let mut redir = connect(socket)?;
        let presentation = redir.create_presentation(false)?;
        redir.set_nonblocking(true);
        let fd = redir.as_fd().try_clone_to_owned()?;
        let group = Arc::new(Group {
            inner: Mutex::new(Shared {
                redir,
                presentation,
                txqs: HashMap::new(),
                eos: HashSet::new(),
                errors: HashMap::new(),
                gone: None,
                // Unflushed, the client starts the segment at the first
                // sample it gets (7.13): the video's first frame (pts after
                // the audio's with B-frames) or the audio, whichever sink
                // thread queues first, and audio before it is clipped.
                // Flushed at the pipeline segment's start, the client's
                // segment is the local player's whatever the order.
                flush_pending: true,
                playing: false,
                broken: false,
            }),
            fd,
        });
        groups.insert(key, Arc::downgrade(&group));
        Ok(group)
    }

    /// The shared state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        crate::lock(&self.inner)
    }

    /// Waits up to `timeout` for the broker to send something (without the
    /// lock).
    pub(crate) fn wait(&self, timeout: Duration) {
        // A stale readiness only shortens the wait; an error is the next
        // read's to report.
        let _ = wait_readable(&self.fd, timeout);
    }
}

impl Shared {
    /// Notes a failure that means the broker or the device is gone.
    pub(crate) fn check<T>(&mut self, result: Result<T, PlayerError>) -> Result<T, PlayerError> {
        if let Err(PlayerError::Io(_) | PlayerError::Timeout(_) | PlayerError::Protocol(_)) =
            &result
        {
            self.broken = true;
        }
        result
    }

    /// Creates a stream of `format` on a playback queue no other stream of
    /// the group uses.
    pub(crate) fn add_stream(&mut self, format: &StreamFormat) -> Result<u32, PlayerError> {
        let mut format = format.clone();
        format.txq = (0..)
            .find(|q| !self.txqs.values().any(|used| used == q))
            .unwrap_or(0);
        let id = self.redir.create_stream(self.presentation, &format)?;
        self.txqs.insert(id, format.txq);
        Ok(id)
    }

    /// Destroys a stream (its queued buffers come back cancelled and are
    /// freed).
    pub(crate) fn remove_stream(&mut self, id: u32) -> Result<(), PlayerError> {
        self.txqs.remove(&id);
        self.eos.remove(&id);
        self.errors.remove(&id);
        if self.broken {
            return Ok(());
        }
        let result = self.redir.destroy_stream(id);
        self.check(result)
    }

    /// Reads the events waiting and records what the sinks care about.
    pub(crate) fn pump_events(&mut self) -> Result<(), PlayerError> {
        loop {
            let event = self.redir.dequeue_event();
            match self.check(event) {
                Ok(Event::Eos { stream }) => {
                    self.eos.insert(stream);
                }
                Ok(Event::StreamError { stream, status }) => {
                    self.errors.insert(stream, status);
                }
                Ok(Event::ClientDisconnected) => self.gone = Some("the client went away"),
                Ok(Event::DeviceStarted) => self.gone = Some("the device restarted"),
                Ok(_) => {}
                Err(PlayerError::WouldBlock) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the client reported the end of stream `id`.
    pub(crate) fn is_eos(&self, id: u32) -> bool {
        self.eos.contains(&id)
    }

    /// Forgets every stream's end of stream (after a flush).
    pub(crate) fn clear_eos(&mut self) {
        self.eos.clear();
    }

    /// The client's error on stream `id`, if any.
    pub(crate) fn error(&self, id: u32) -> Option<Status> {
        self.errors.get(&id).copied()
    }

    /// Plays or pauses the presentation (only when that changes).
    pub(crate) fn set_playing(&mut self, playing: bool) -> Result<(), PlayerError> {
        if self.playing == playing || self.broken {
            return Ok(());
        }
        let result = if playing {
            self.redir.play(self.presentation)
        } else {
            self.redir.pause(self.presentation)
        };
        self.check(result)?;
        self.playing = playing;
        Ok(())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Its streams go with it; their buffers complete cancelled.
        if !self.broken {
            let _ = self.redir.destroy_presentation(self.presentation);
        }
    }
}
