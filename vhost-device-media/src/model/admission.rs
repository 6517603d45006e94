//! Data admission (spec, "Data buffers"): what happens to each playback
//! buffer the driver posts on a txq, decided from its data header, the
//! stream's state and its flow-control credit, before any payload byte is
//! touched.

use std::sync::Arc;

use mediaredir_proto::data::DataHeader;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire;

use super::credit::{Credit, Grant};
use super::{DeviceModel, StreamState};

/// What to do with a data buffer.
#[derive(Debug)]
pub enum Admit {
    /// Send it.
    Go(Admission),
    /// The stream is out of credit: keep the buffer and retry after a
    /// release.
    Wait(Arc<Credit>),
}

/// A data buffer the model accepted.
#[derive(Debug)]
pub struct Admission {
    /// Sample metadata for the wire.
    pub sample: wire::SampleHeader,
    /// Credit to release when the buffer completes.
    pub credit: Arc<Credit>,
}

impl DeviceModel {
    /// Decides what happens to a data buffer from playback queue `txq`
    /// (spec, "Data buffers"): an error status to complete it with at once,
    /// a wait for credit, or an admission with its sequence number.
    pub fn admit(&mut self, header: &DataHeader, txq: u32) -> Result<Admit, Status> {
        if header.generation != self.generation {
            return Err(Status::Stale);
        }
        let connected = self.client.is_some();
        let stream = self
            .streams
            .get_mut(&header.stream_id)
            .ok_or(Status::NoEntity)?;
        if !stream.is_playback() || stream.format.txq != txq {
            return Err(Status::Invalid);
        }
        match stream.state {
            StreamState::Open => {}
            StreamState::Failed(status) => return Err(status),
            _ => return Err(Status::BadState),
        }
        if let Some(bytes) = stream.format.codec.pcm_sample_bytes()
            && !header
                .payload_len
                .is_multiple_of(bytes * stream.format.media.channels)
        {
            return Err(Status::Invalid);
        }
        if !connected {
            return Err(Status::NoClient);
        }
        if stream.keyframe_needed {
            let passes =
                header.flags & mediaredir_proto::data::FLAG_CODEC_CONFIG != 0 || header.is_eos();
            if !header.is_keyframe() && !passes {
                return Err(Status::Dropped);
            }
            if header.is_keyframe() {
                stream.keyframe_needed = false;
            }
        }
        let seq = stream.next_seq;
        let bytes = u64::from(header.payload_len);
        if stream
            .credit
            .acquire(seq, bytes, header.pts, header.duration)
            == Grant::Wait
        {
            return Ok(Admit::Wait(Arc::clone(&stream.credit)));
        }
        stream.next_seq += 1;
        if let Some(pts) = header.pts {
            let end = pts.saturating_add(header.duration.unwrap_or(0));
            stream.sent_end_ns = Some(stream.sent_end_ns.map_or(end, |e| e.max(end)));
        }
        if header.is_eos() {
            stream.state = StreamState::Draining;
        }
        Ok(Admit::Go(Admission {
            sample: wire::SampleHeader {
                stream: header.stream_id,
                seq,
                pts: header.pts,
                dts: header.dts,
                duration: header.duration,
                flags: wire::SampleFlags::from_bits_truncate(header.flags),
                // Forwarded unchanged; without F_CLIPPING the bytes were
                // reserved, and a device ignores reserved bytes.
                clip: if self.features.clipping {
                    header.clip
                } else {
                    wire::Clip::NONE
                },
            },
            credit: Arc::clone(&stream.credit),
        }))
    }
}
