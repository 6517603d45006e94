//! The sink's stream on the device: the codecs the connected client
//! decodes (what the sink pad's caps query answers), the stream created in
//! the group's presentation when caps are set and destroyed when they
//! change or the sink stops, and what reaches it afterwards from the
//! application thread (volume, geometry, play and pause).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;

use mediaredir_player::PlayerError;
use mediaredir_proto::codec::Codec;
use mediaredir_proto::control::StreamFormat;

use super::clip;
use super::imp::{CAT, MediaRedirSink};
use crate::group::{self, Group};
use crate::lock;

/// How long the client's codec list answers caps queries.
const CAPS_CACHE: Duration = Duration::from_secs(1);

/// The negotiated stream (streaming thread).
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) group: Arc<Group>,
    pub(super) id: u32,
    pub(super) format: StreamFormat,
    /// Buffer indices the sink holds.
    pub(super) free: Vec<u32>,
    pub(super) count: u32,
    pub(super) size: usize,
    /// Samples the client decodes from each buffer (audio).
    pub(super) decoded: clip::Decoded,
}

/// What the application thread (properties, state changes) reaches.
#[derive(Debug, Clone)]
pub(super) struct Handle {
    pub(super) group: Arc<Group>,
    pub(super) id: u32,
    pub(super) audio: bool,
}

impl MediaRedirSink {
    /// The codecs the connected client decodes (empty without broker or
    /// client).
    pub(super) fn client_codecs(&self) -> Vec<Codec> {
        let mut cache = lock(&self.codecs);
        if let Some((at, codecs)) = cache.as_ref()
            && at.elapsed() < CAPS_CACHE
        {
            return codecs.clone();
        }
        let socket = self.settings().socket;
        // The negotiated stream's connection answers when there is one.
        let handle = lock(&self.handle).clone();
        let answer = match handle {
            Some(h) => {
                let mut shared = h.group.lock();
                if shared.broken {
                    Err(PlayerError::Usage("the broker or device is gone"))
                } else {
                    let answer = shared.redir.query_caps();
                    shared.check(answer)
                }
            }
            None => group::connect(&socket).and_then(|mut r| r.query_caps()),
        };
        let codecs = match answer {
            Ok(c) if c.client_connected => c.codecs.iter().map(|c| c.codec).collect(),
            Ok(_) => {
                gst::debug!(CAT, imp = self, "no client connected: no caps");
                Vec::new()
            }
            Err(e) => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "broker at {} unreachable ({e}): no caps",
                    socket.display()
                );
                Vec::new()
            }
        };
        *cache = Some((Instant::now(), codecs.clone()));
        codecs
    }

    /// The group key: the `group` property, else the top-level bin.
    fn group_key(&self) -> String {
        let group = self.settings().group;
        if !group.is_empty() {
            return group;
        }
        group::pipeline_key(self.obj().upcast_ref())
    }

    /// Creates the stream of `format` in the group's presentation.
    pub(super) fn open_stream(&self, format: &StreamFormat) -> Result<Stream, PlayerError> {
        let settings = self.settings();
        let group = Group::join(&settings.socket, &self.group_key())?;
        let mut shared = group.lock();
        shared.redir.try_format(format)?;
        let id = shared.add_stream(format)?;
        let size = if format.codec.is_video() {
            512 << 10
        } else {
            16 << 10
        };
        let count = shared.redir.request_buffers(id, settings.buffers, size)?;
        let size = shared.redir.buffer_layout(id).map_or(size, |(_, s)| s);
        if format.codec.is_video() {
            if settings.geometry_set {
                let presentation = shared.presentation;
                shared
                    .redir
                    .set_geometry(presentation, settings.geometry())?;
            }
        } else if settings.volume != 1.0 || settings.mute {
            shared
                .redir
                .set_volume(id, settings.volume, settings.mute)?;
        }
        if !self.paused.load(Ordering::SeqCst) {
            shared.set_playing(true)?;
        }
        drop(shared);
        Ok(Stream {
            group,
            id,
            format: format.clone(),
            free: (0..count).rev().collect(),
            count,
            size,
            decoded: clip::Decoded::new(format.codec, format.media.sample_rate, &format.codec_data),
        })
    }

    /// Destroys the stream, if any (its group goes with the last sink).
    pub(super) fn close_stream(&self) {
        *lock(&self.handle) = None;
        if let Some(stream) = lock(&self.stream).take() {
            let mut shared = stream.group.lock();
            if let Err(e) = shared.remove_stream(stream.id) {
                gst::warning!(CAT, imp = self, "destroying stream {}: {e}", stream.id);
            }
        }
    }

    /// Applies volume and mute to a negotiated audio stream.
    pub(super) fn apply_volume(&self) {
        let Some(h) = lock(&self.handle).clone() else {
            return;
        };
        if !h.audio {
            return;
        }
        let s = self.settings();
        if let Err(e) = h.group.lock().redir.set_volume(h.id, s.volume, s.mute) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Failed,
                ["setting the volume: {}", e]
            );
        }
    }

    /// Applies the geometry to a negotiated video stream's presentation.
    pub(super) fn apply_geometry(&self) {
        let Some(h) = lock(&self.handle).clone() else {
            return;
        };
        if h.audio {
            return;
        }
        let geometry = self.settings().geometry();
        let mut shared = h.group.lock();
        let presentation = shared.presentation;
        if let Err(e) = shared.redir.set_geometry(presentation, geometry) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Failed,
                ["setting the geometry: {}", e]
            );
        }
    }

    pub(super) fn set_playing(&self, playing: bool) -> Result<(), gst::StateChangeError> {
        let Some(h) = lock(&self.handle).clone() else {
            return Ok(());
        };
        let result = h.group.lock().set_playing(playing);
        result.map_err(|e| {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Failed,
                [
                    "media redirection: {}: {}",
                    if playing { "play" } else { "pause" },
                    e
                ]
            );
            gst::StateChangeError
        })
    }
}
