//! The first sample a player queues is the file's earliest.
//!
//! The device fixes a presentation's segment start at the first sample it
//! receives (spec 7.13), and the client's decoders drop output before it,
//! as a local player's decoders drop output before the demuxer's segment
//! start. Local demuxers start that segment at the file's earliest time
//! (matroskademux at 0, tsdemux at the first picture, with the audio before
//! it clipped). Files interleave by decode time, so the first sample in file
//! order may be a video frame presented after the first audio frame (ffmpeg's
//! Matroska with B-frames: video at 11 ms, audio at 0): queued first, it
//! would cut those milliseconds of audio. [`StartOrdered`] reads ahead until
//! every track has a sample (bounded) and hands out the earliest first; the
//! rest keep file order.

use std::collections::VecDeque;

use crate::{DemuxError, Demuxer, Sample, Track};

/// Most samples read ahead looking for every track's first sample (a
/// track that starts later than this is not waited for).
const MAX_LOOKAHEAD: usize = 256;

/// A demuxer whose first sample is the one presented earliest among the
/// first samples of its tracks.
pub struct StartOrdered {
    inner: Box<dyn Demuxer>,
    ahead: VecDeque<Sample>,
    started: bool,
}

impl StartOrdered {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn Demuxer>) -> StartOrdered {
        StartOrdered {
            inner,
            ahead: VecDeque::new(),
            started: false,
        }
    }

    fn fill(&mut self) -> Result<(), DemuxError> {
        let tracks: Vec<u32> = self.inner.tracks().iter().map(|t| t.id).collect();
        let mut seen: Vec<u32> = Vec::new();
        while seen.len() < tracks.len() && self.ahead.len() < MAX_LOOKAHEAD {
            let Some(sample) = self.inner.next_sample()? else {
                break;
            };
            if !seen.contains(&sample.track) {
                seen.push(sample.track);
            }
            self.ahead.push_back(sample);
        }
        // The first sample of each track, earliest presented first.
        let firsts = seen.iter().filter_map(|id| {
            self.ahead
                .iter()
                .position(|s| s.track == *id)
                .map(|i| (i, self.ahead[i].pts.or(self.ahead[i].dts)))
        });
        if let Some((i, _)) = firsts
            .filter(|(_, t)| t.is_some())
            .min_by_key(|(i, t)| (*t, *i))
            && let Some(sample) = self.ahead.remove(i)
        {
            self.ahead.push_front(sample);
        }
        Ok(())
    }
}

impl Demuxer for StartOrdered {
    fn tracks(&self) -> &[Track] {
        self.inner.tracks()
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
        if !self.started {
            self.started = true;
            self.fill()?;
        }
        match self.ahead.pop_front() {
            Some(sample) => Ok(Some(sample)),
            None => self.inner.next_sample(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Codec;

    struct Fixed(Vec<Track>, VecDeque<Sample>);

    impl Demuxer for Fixed {
        fn tracks(&self) -> &[Track] {
            &self.0
        }
        fn next_sample(&mut self) -> Result<Option<Sample>, DemuxError> {
            Ok(self.1.pop_front())
        }
    }

    fn sample(track: u32, pts: u64) -> Sample {
        Sample::audio(track, 0, 1, 1000, vec![0]).with_pts(pts)
    }

    impl Sample {
        fn with_pts(mut self, pts: u64) -> Sample {
            self.pts = Some(pts);
            self
        }
    }

    fn order(samples: Vec<Sample>) -> Vec<(u32, u64)> {
        let tracks = vec![
            Track::video(1, Codec::H264, 16, 16),
            Track::audio(2, Codec::Mp2, 44_100, 2),
        ];
        let mut d = StartOrdered::new(Box::new(Fixed(tracks, samples.into())));
        std::iter::from_fn(|| d.next_sample().unwrap())
            .map(|s| (s.track, s.pts.unwrap()))
            .collect()
    }

    #[test]
    fn the_earliest_first_sample_goes_first() {
        // Video presented at 11 ms comes first in the file, audio at 0.
        let got = order(vec![
            sample(1, 11),
            sample(2, 0),
            sample(1, 51),
            sample(2, 26),
        ]);
        assert_eq!(got, [(2, 0), (1, 11), (1, 51), (2, 26)]);
    }

    #[test]
    fn file_order_stays_when_the_first_is_the_earliest() {
        let got = order(vec![sample(2, 0), sample(1, 11), sample(2, 26)]);
        assert_eq!(got, [(2, 0), (1, 11), (2, 26)]);
    }

    #[test]
    fn a_missing_track_is_not_waited_for_forever() {
        let mut samples: Vec<Sample> = (0..300).map(|i| sample(1, 10 + i)).collect();
        samples.push(sample(2, 0));
        let got = order(samples);
        assert_eq!(got.len(), 301);
        assert_eq!(got[0], (1, 10), "audio beyond the look-ahead is not moved");
    }
}
