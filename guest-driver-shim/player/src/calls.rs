//! Calls (spec 7.12): the player keeps the signalling with the remote
//! peer and hands the call's media to the client; these are the requests
//! that create, start, hold, mute and end a call media session.

use mediaredir_proto::control::Request;
use mediaredir_proto::response::ResponseBody;

use super::{MediaRedir, PlayerError};

impl MediaRedir {
    /// Creates a call media session: with the remote peer's SDP offer
    /// (an incoming call), or `None` for the client to make an offer. The
    /// client's SDP (answer or offer) comes back with the session id.
    pub fn call_create(
        &mut self,
        remote_offer: Option<&str>,
    ) -> Result<(u32, String), PlayerError> {
        let sdp = remote_offer.map(str::to_owned);
        match self.control_ok(Request::CallCreate { sdp }, 0)? {
            (id, ResponseBody::CallSdp(local)) => Ok((id, local)),
            _ => Err(PlayerError::Usage("CALL_CREATE answered without SDP")),
        }
    }

    /// Gives the remote peer's answer to the client's offer.
    pub fn call_set_remote(&mut self, session: u32, answer: &str) -> Result<(), PlayerError> {
        self.control_ok(
            Request::CallSetRemote {
                sdp: answer.to_owned(),
            },
            session,
        )
        .map(drop)
    }

    /// Starts the call's media.
    pub fn call_start(&mut self, session: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::CallStart, session).map(drop)
    }

    /// Holds (`true`) or resumes the call.
    pub fn call_hold(&mut self, session: u32, hold: bool) -> Result<(), PlayerError> {
        self.control_ok(Request::CallHold { hold }, session)
            .map(drop)
    }

    /// Sends a DTMF event (RFC 4733: 0-9, `*` 10, `#` 11, A-D 12-15).
    pub fn call_dtmf(
        &mut self,
        session: u32,
        event: u32,
        duration_ms: u32,
    ) -> Result<(), PlayerError> {
        self.control_ok(Request::CallDtmf { event, duration_ms }, session)
            .map(drop)
    }

    /// Mutes or unmutes the call's media (`media`: audio 1, video 2).
    pub fn call_mute(&mut self, session: u32, media: u32, mute: bool) -> Result<(), PlayerError> {
        self.control_ok(Request::CallMute { media, mute }, session)
            .map(drop)
    }

    /// The call's last statistics.
    pub fn call_stats(
        &mut self,
        session: u32,
    ) -> Result<mediaredir_proto::response::CallStatsInfo, PlayerError> {
        match self.control_ok(Request::CallStats, session)?.1 {
            ResponseBody::CallStats(stats) => Ok(stats),
            _ => Err(PlayerError::Usage("CALL_STATS answered without statistics")),
        }
    }

    /// Ends the call (also after it ended by itself: DRV-CALL-1).
    pub fn call_end(&mut self, session: u32) -> Result<(), PlayerError> {
        self.control_ok(Request::CallEnd, session).map(drop)
    }
}
