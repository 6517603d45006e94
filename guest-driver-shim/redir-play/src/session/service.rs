//! What a playback serves between samples: the device's events (end of
//! stream, errors, QoS, the client leaving), the user's commands from
//! stdin, and the periodic position line.

use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use anyhow::bail;
use mediaredir_player::PlayerError;
use mediaredir_proto::event::Event;
use redir_demux::{Demuxer, Track};

use super::seek::Skip;
use super::{Session, Stats, all_ended};

impl Session<'_> {
    /// Events, stdin commands and progress.
    pub(super) fn service(
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

    pub(super) fn on_event(&mut self, event: &Event) -> anyhow::Result<()> {
        match *event {
            Event::Position {
                presentation,
                position_ns,
                ..
            } if presentation == self.presentation => self.reached = Some(position_ns),
            Event::LinkQuality { .. } => self.link = Some(*event),
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
                self.client_left = true;
                if all_ended(&self.streams) {
                    eprintln!("redir-play: the client left after the end of every stream");
                } else {
                    // Waited out in the main loop (spec DRV-DATA-5).
                    self.client_lost = true;
                }
            }
            Event::DeviceStarted => bail!("the device restarted (its host daemon)"),
            Event::EventsLost { count } => {
                eprintln!("redir-play: {count} events lost");
            }
            _ => {}
        }
        Ok(())
    }
}
