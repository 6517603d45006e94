//! V4L2's `DQEVENT` (spec 7.11, 9.2): the events of this player's objects
//! and the broadcast ones, in the order the broker sent them.

use std::time::{Duration, Instant};

use mediaredir_proto::event::Event;

use super::{MediaRedir, PlayerError};

impl MediaRedir {
    /// `VIDIOC_DQEVENT`: the next event of this player's objects (or a
    /// broadcast one: client connected/gone, events lost, device started).
    pub fn dequeue_event(&mut self) -> Result<Event, PlayerError> {
        self.pump_all()?;
        if let Some(event) = self.events.pop_front() {
            return Ok(event);
        }
        if self.nonblocking {
            return Err(PlayerError::WouldBlock);
        }
        self.wait_event(self.timeout)?
            .ok_or(PlayerError::Timeout(self.timeout))
    }

    /// The next event, waiting up to `timeout` (`None` on timeout) whatever
    /// the blocking mode.
    pub fn wait_event(&mut self, timeout: Duration) -> Result<Option<Event>, PlayerError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump_all()?;
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.pump(Some(left))?;
        }
    }
}
