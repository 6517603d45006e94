//! The user's commands (from stdin or the `--at` schedule) applied to the
//! presentation: pause, play, volume, mute, rate, status lines, sleep and
//! quit; a seek is handed to `seek`.

use mediaredir_proto::event::{Event, LINK_RTT_PENDING};
use mediaredir_proto::status::Status;
use redir_demux::{Demuxer, Track};

use super::seek::Skip;
use super::{Session, secs};
use crate::commands::Command;

impl Session<'_> {
    /// Applies `command`; a seek returns the demuxer to go on with.
    pub(super) fn apply(
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
            Command::Geometry(g) => {
                eprintln!("redir-play: geometry {:?}", g.dest);
                self.redir.set_geometry(p, g)?;
            }
        }
        Ok(None)
    }

    fn apply_volume(&mut self) -> anyhow::Result<()> {
        let ids = self.stream_ids(|s| s.audio);
        for id in ids {
            self.redir.set_volume(id, self.volume, self.muted)?;
        }
        Ok(())
    }

    pub(super) fn print_position(&mut self) -> anyhow::Result<()> {
        let p = match self.redir.query_position(self.presentation) {
            Ok(p) => p,
            // No client, no position to print: once every stream has
            // ended it may leave (`--once`), and mid-stream its leaving is
            // handled where the buffers and events tell (DRV-DATA-5).
            Err(e) if e.status() == Some(Status::NoClient) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        eprintln!(
            "redir-play: position {:.3} s, buffered {:.3} s, {:?}",
            secs(p.position_ns),
            secs(p.buffered_ns),
            p.state
        );
        if let Some(Event::LinkQuality {
            rtt_ns,
            goodput_bps,
            flags,
            inflight_bytes,
            ..
        }) = self.link.take()
        {
            let bound = if flags & LINK_RTT_PENDING != 0 {
                " (no answer yet: at least)"
            } else {
                ""
            };
            eprintln!(
                "redir-play: link: round trip {:.3} ms{bound}, goodput {:.1} kB/s, \
                 {inflight_bytes} bytes unacknowledged",
                rtt_ns as f64 / 1e6,
                goodput_bps as f64 / 1e3
            );
        }
        Ok(())
    }

    pub(super) fn print_stats(&self) {
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
