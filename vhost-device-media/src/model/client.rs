//! The client's side of the model (spec, "Client reconnect", "Client
//! disconnect"): a connecting client is replayed every presentation and
//! stream, a leaving one fails what is in flight, and its reports (EOS,
//! position, state, errors, QoS, capabilities, calls) become events for the
//! guest.

use std::time::Instant;

use mediaredir_proto::event::Event;
use mediaredir_proto::response::PresentationState;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire;

use super::to_wire::{create_presentation_msg, geometry_msg};
use super::{Action, DeviceModel, StreamState};

impl DeviceModel {
    /// A client connected (after its `Hello`): replays every presentation
    /// and stream to it and tells the guest (spec, "Client reconnect").
    pub fn client_connected(&mut self, caps: wire::Capabilities) -> Vec<Action> {
        let features = caps.features.bits();
        self.client = Some(caps);
        // The new client starts empty: no position, nothing forwarded.
        self.forget_progress();
        let mut actions = Vec::new();
        for pres in self.presentations.values() {
            actions.push(Action::Send(create_presentation_msg(pres.id, pres.live)));
            if pres.rate_q16 != mediaredir_proto::control::UNITY_Q16 {
                actions.push(Action::Send(wire::Message::SetRate {
                    presentation: pres.id,
                    rate_q16: pres.rate_q16,
                }));
            }
            if let Some(geometry) = &pres.geometry {
                actions.push(Action::Send(wire::Message::SetGeometry(geometry_msg(
                    pres.id, geometry,
                ))));
            }
            for id in &pres.streams {
                let Some(stream) = self.streams.get(id) else {
                    continue;
                };
                actions.push(Action::Send(wire::Message::CreateStream(
                    wire::CreateStream::from_format(stream.id, pres.id, &stream.format),
                )));
                if stream.state == StreamState::Capturing {
                    actions.push(Action::Send(wire::Message::StartCapture {
                        stream: stream.id,
                    }));
                }
                if stream.volume_q16 != mediaredir_proto::control::UNITY_Q16 || stream.mute {
                    actions.push(Action::Send(wire::Message::SetVolume {
                        stream: stream.id,
                        volume_q16: stream.volume_q16,
                        mute: stream.mute,
                    }));
                }
            }
            match pres.state {
                PresentationState::Playing => actions.push(Action::Send(wire::Message::Play {
                    presentation: pres.id,
                })),
                PresentationState::Paused => actions.push(Action::Send(wire::Message::Pause {
                    presentation: pres.id,
                })),
                PresentationState::Idle => {}
            }
        }
        self.push_event(Event::ClientConnected { features });
        let video: Vec<u32> = self
            .streams
            .values_mut()
            .filter(|s| s.is_playback() && s.is_video() && s.next_seq > 1)
            .map(|s| {
                s.keyframe_needed = true;
                s.id
            })
            .collect();
        for stream in video {
            self.push_event(Event::KeyframeNeeded { stream });
        }
        actions
    }

    /// The client went away: every in-flight buffer completes `NO_CLIENT`
    /// and the guest is told (spec, "Client disconnect").
    pub fn client_disconnected(&mut self) -> Vec<Action> {
        if self.client.take().is_none() {
            return Vec::new();
        }
        // Where each presentation's client really got to, so that a
        // driver falling back resumes there (7.13, DEV-TIME-4).
        let reached: Vec<(u32, u64)> = self
            .presentations
            .values()
            .filter_map(|p| Some((p.id, p.progress.reached()?)))
            .collect();
        for (presentation, position_ns) in reached {
            self.push_event(Event::Position {
                presentation,
                position_ns,
                buffered_ns: 0,
            });
        }
        self.forget_progress();
        self.push_event(Event::ClientDisconnected);
        for stream in self.streams.values_mut().filter(|s| !s.is_playback()) {
            // The next sample comes from a new capture session.
            stream.discont = true;
        }
        let mut actions: Vec<Action> = self
            .streams
            .keys()
            .map(|&stream| Action::Cancel {
                stream,
                status: Status::NoClient,
            })
            .collect();
        self.calls_client_gone(&mut actions);
        actions
    }

    /// The uplink measured the link to the client (spec 7.11, "Link
    /// quality"): the guest is told.
    pub fn link_quality(&mut self, quality: Event) {
        if self.client.is_some()
            && self.features.link_quality
            && matches!(quality, Event::LinkQuality { .. })
        {
            self.push_event(quality);
        }
    }

    /// Forgets every presentation's position and what was forwarded: the
    /// client that knew them is gone.
    fn forget_progress(&mut self) {
        for pres in self.presentations.values_mut() {
            pres.progress.forget();
        }
        for stream in self.streams.values_mut() {
            stream.sent_end_ns = None;
        }
    }

    /// Handles a message from the client other than acknowledgements (which
    /// the uplink settles itself).
    pub fn client_message(&mut self, msg: &wire::Message, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        match msg {
            wire::Message::EndOfStream { stream } => {
                if let Some(s) = self.streams.get_mut(stream) {
                    if s.state == StreamState::Draining || s.state == StreamState::Open {
                        s.state = StreamState::Ended;
                    }
                    self.push_event(Event::Eos { stream: *stream });
                }
            }
            wire::Message::Position {
                presentation,
                position_ns,
            } => {
                if let Some(p) = self.presentations.get_mut(presentation) {
                    p.progress.report(*position_ns, now, p.rate_q16);
                    let buffered_ns = self.buffered(*presentation, *position_ns);
                    self.push_event(Event::Position {
                        presentation: *presentation,
                        position_ns: *position_ns,
                        buffered_ns,
                    });
                }
            }
            wire::Message::StateChanged {
                presentation,
                state,
            } => {
                if self.presentations.contains_key(presentation) {
                    self.push_event(Event::StateChanged {
                        presentation: *presentation,
                        state: *state,
                    });
                }
            }
            wire::Message::StreamError {
                stream,
                status,
                message,
            } => {
                if let Some(s) = self.streams.get_mut(stream) {
                    log::warn!("client reports stream {stream} failed: {status}: {message}");
                    s.state = StreamState::Failed(*status);
                    self.push_event(Event::StreamError {
                        stream: *stream,
                        status: *status,
                    });
                    actions.push(Action::Cancel {
                        stream: *stream,
                        status: *status,
                    });
                }
            }
            wire::Message::Qos {
                stream,
                rendered,
                dropped,
                jitter_ns,
            } => {
                if self.streams.contains_key(stream) {
                    self.push_event(Event::Qos {
                        stream: *stream,
                        rendered: *rendered,
                        dropped: *dropped,
                        jitter_ns: *jitter_ns,
                    });
                }
            }
            wire::Message::CapabilitiesChanged(caps) => {
                if self.client.is_some() {
                    let features = caps.features.bits();
                    self.client = Some(caps.clone());
                    self.push_event(Event::ClientConnected { features });
                }
            }
            wire::Message::CallLocalSdp { .. }
            | wire::Message::CallStats(_)
            | wire::Message::CallEnded { .. }
            | wire::Message::CallDtmfReceived { .. } => self.call_message(msg, &mut actions),
            other => log::debug!("ignoring client message {other:?}"),
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use mediaredir_proto::event::Event;

    use super::super::tests::client_caps;
    use super::super::{DeviceModel, Features};
    use crate::limits::Limits;

    const QUALITY: Event = Event::LinkQuality {
        rtt_ns: 300_000,
        goodput_bps: 1_000_000,
        flags: 0,
        inflight_bytes: 0,
        interval_ns: 2_000_000_000,
    };

    /// `LINK_QUALITY` reaches the guest with `F_LINK_QUALITY` and a client,
    /// and never otherwise (DEV-INIT-1: a driver that did not negotiate the
    /// feature, an older one, gets no event it does not know).
    #[test]
    fn link_quality_only_with_its_feature_and_a_client() {
        let mut m = DeviceModel::new(1, Limits::default());
        m.client_connected(client_caps());
        while m.events.pop().is_some() {}
        m.link_quality(QUALITY);
        assert_eq!(m.events.pop(), None, "not negotiated");
        m.set_features(Features::from_bits(
            1 << mediaredir_proto::device::F_LINK_QUALITY,
        ));
        m.link_quality(QUALITY);
        assert_eq!(m.events.pop(), Some(QUALITY));
        m.client_disconnected();
        while m.events.pop().is_some() {}
        m.link_quality(QUALITY);
        assert_eq!(m.events.pop(), None, "no client");
    }
}
