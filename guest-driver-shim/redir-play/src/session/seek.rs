//! Seeking: the presentation flushed, and the input reopened at the
//! keyframe at or before the target, with the samples before it skipped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use redir_demux::{Demuxer, Sample, Track};

use super::{Session, secs};

impl Session<'_> {
    /// Flushes the presentation and reopens the file at the keyframe at or
    /// before `to` (a key-unit seek: the client shows that keyframe first).
    pub(super) fn seek(
        &mut self,
        to: Duration,
        tracks: &[Track],
    ) -> anyhow::Result<(Box<dyn Demuxer>, Skip)> {
        let skip = Skip::plan(&self.settings.files, tracks, to)?;
        self.seeks += 1;
        self.redir.seek(self.presentation, skip.from_ns)?;
        self.reached = None;
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
    pub(super) fn skips(&mut self, sample: &Sample) -> bool {
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
