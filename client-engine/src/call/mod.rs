//! Call media sessions (spec 7.12): the guest softphone keeps the
//! signalling and exchanges SDP with the device; the client runs the RTP
//! media with the remote peer.
//!
//! - `CallCreate` with the remote offer: the client answers at once
//!   (`CallLocalSdp`); with an empty SDP it makes an offer ([`sdp`]) and
//!   waits for `CallRemoteSdp`. The session's UDP ports are bound then.
//! - `CallControl`: `Start` builds the `rtpbin` pipeline ([`session`]),
//!   `Hold`/`Resume` stop and resume sending, `Mute`/`Unmute` silence the
//!   microphone (audio) or stop the camera's packets (video), `Dtmf` sends
//!   an RFC 4733 event, `End` tears the session down (no `CallEnded`).
//! - The client reports `CallStats` ([`stats`]) every 2 s while active,
//!   `CallDtmfReceived` for the peer's DTMF, and `CallEnded` when the call
//!   ends without `End`: the peer's RTCP BYE (`OK`), no packets from the
//!   peer for 10 s or a media failure (`IO`), a remote SDP it cannot use
//!   (`INVALID` or `UNSUPPORTED`).
//!
//! Failures to create (malformed or unusable offer, no ports, too many
//! sessions) answer `CallCreate` with `CallEnded` and keep no session.

pub mod sdp;
mod session;
pub mod stats;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use mediaredir_proto::codec::Codec;
use mediaredir_proto::status::Status;
use mediaredir_proto::wire::{CallAction, CallStats, Message};
use mediaredir_timer::Timer;

use crate::capture::sources::Source;
use crate::config::EngineConfig;
use crate::events::EventHub;
use sdp::SdpError;
use session::{Session, State};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn sdp_status(e: &SdpError) -> Status {
    match e {
        SdpError::Malformed(_) => Status::Invalid,
        SdpError::Unsupported(_) => Status::Unsupported,
        SdpError::TooLong => Status::Limit,
    }
}

/// The engine's call sessions.
pub(crate) struct Calls {
    config: Arc<EngineConfig>,
    events: EventHub,
    mic: Option<Source>,
    cam: Option<Source>,
    enabled: bool,
    sessions: Mutex<BTreeMap<u32, Arc<Session>>>,
    /// The engine's one timer, shared by the sessions.
    timer: Arc<Timer>,
}

impl Calls {
    pub(crate) fn new(
        config: Arc<EngineConfig>,
        events: EventHub,
        mic: Option<Source>,
        cam: Option<Source>,
        enabled: bool,
        timer: Arc<Timer>,
    ) -> Self {
        let cam = cam.filter(|_| crate::registry::can_rtp(Codec::Vp8));
        Calls {
            config,
            events,
            mic,
            cam,
            enabled,
            sessions: Mutex::default(),
            timer,
        }
    }

    fn ended(&self, session: u32, status: Status, reason: String) {
        self.events.report(Message::CallEnded {
            session,
            status,
            reason,
        });
    }

    /// Parses a remote SDP and checks its destinations: loopback ones only
    /// when the client's own call address is loopback (a test set-up), so
    /// the guest cannot aim media at services of the user's machine.
    fn parse(&self, remote_sdp: &str) -> Result<sdp::Remote, SdpError> {
        let remote = sdp::parse(remote_sdp, self.cam.is_some())?;
        if !self.config.call.address.is_loopback() {
            for line in &remote.lines {
                if let Some(m) = &line.usable
                    && m.address.is_loopback()
                {
                    return Err(SdpError::Unsupported(format!(
                        "media address {} is this machine",
                        m.address
                    )));
                }
            }
        }
        Ok(remote)
    }

    fn get(&self, id: u32) -> Option<Arc<Session>> {
        lock(&self.sessions).get(&id).cloned()
    }

    /// `CallCreate`: answers with `CallLocalSdp` or `CallEnded`.
    pub(crate) fn create(&self, id: u32, remote_sdp: &str) {
        let mic = match (&self.mic, self.enabled) {
            (Some(m), true) => m.clone(),
            _ => {
                return self.ended(
                    id,
                    Status::Unsupported,
                    "call media is not supported by this client".into(),
                );
            }
        };
        {
            let sessions = lock(&self.sessions);
            if sessions.contains_key(&id) {
                log::warn!("CallCreate {id}: session exists, ignored");
                return;
            }
            if sessions.len() >= self.config.call.max_sessions {
                drop(sessions);
                return self.ended(
                    id,
                    Status::Limit,
                    format!("at most {} call sessions", self.config.call.max_sessions),
                );
            }
        }
        let remote = if remote_sdp.is_empty() {
            None
        } else {
            match self.parse(remote_sdp) {
                Ok(r) => Some(r),
                Err(e) => return self.ended(id, sdp_status(&e), format!("remote offer: {e}")),
            }
        };
        match Session::new(
            id,
            self.config.clone(),
            self.events.clone(),
            mic,
            self.cam.clone(),
            remote,
            self.timer.clone(),
        ) {
            Ok((session, local)) => {
                lock(&self.sessions).insert(id, session);
                self.events.report(Message::CallLocalSdp {
                    session: id,
                    sdp: local,
                });
            }
            Err(e) => self.ended(id, Status::Io, format!("cannot create the session: {e}")),
        }
    }

    /// `CallRemoteSdp`: the answer to the client's offer.
    pub(crate) fn remote_sdp(&self, id: u32, remote_sdp: &str) {
        let Some(s) = self.get(id) else { return };
        if s.state() != State::Negotiating {
            log::warn!("call {id}: remote SDP in state {:?}, ignored", s.state());
            return;
        }
        match self.parse(remote_sdp) {
            Ok(r) => s.set_remote(r),
            Err(e) => s.end(sdp_status(&e), &format!("remote answer: {e}")),
        }
    }

    /// `CallControl`.
    pub(crate) fn control(&self, id: u32, action: CallAction) {
        if action == CallAction::End {
            let s = lock(&self.sessions).remove(&id);
            if let Some(s) = s {
                s.close();
            }
            return;
        }
        let Some(s) = self.get(id) else { return };
        match action {
            CallAction::Start => s.start(),
            CallAction::Hold => s.hold(true),
            CallAction::Resume => s.hold(false),
            CallAction::Mute(m) => s.mute(m, true),
            CallAction::Unmute(m) => s.mute(m, false),
            CallAction::Dtmf { event, duration_ms } => s.dtmf(event, duration_ms),
            CallAction::End => {}
        }
    }

    /// The last statistics a session reported (7.12 `CALL_STATS`).
    pub(crate) fn stats(&self, id: u32) -> Option<CallStats> {
        Some(self.get(id)?.last_stats())
    }

    /// The running pipeline of a session.
    pub(crate) fn pipeline(&self, id: u32) -> Option<gstreamer::Pipeline> {
        self.get(id)?.pipeline()
    }

    /// Ends every session (engine drop).
    pub(crate) fn close(&self) {
        let all = std::mem::take(&mut *lock(&self.sessions));
        for s in all.into_values() {
            s.close();
        }
    }
}
