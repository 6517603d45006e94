//! Access below the protocol for conformance tests: a virtqueue itself
//! (for raw chains), notifications whatever suppression says, and used
//! entries without the protocol's bookkeeping.

use std::time::{Duration, Instant};

use super::{DriverError, MediaDevice, next_used};
use crate::transport::Transport;
use crate::virtqueue::{UsedElem, Virtqueue};

impl<T: Transport> MediaDevice<T> {
    /// A virtqueue, for raw chains ([`Virtqueue::add_raw_descriptors`]).
    /// Chains added this way are reported by [`MediaDevice::wait_used`].
    pub fn queue_mut(&mut self, queue: u16) -> Result<&mut Virtqueue, DriverError> {
        self.state
            .as_mut()
            .ok_or(DriverError::NotReady)?
            .queues
            .get_mut(usize::from(queue))
            .ok_or(DriverError::NoSuchQueue(queue))
    }

    /// Notifies the device about `queue`, whatever notification suppression
    /// says.
    pub fn kick(&mut self, queue: u16) -> Result<(), DriverError> {
        self.queue_mut(queue)?;
        self.transport.notify(queue)?;
        Ok(())
    }

    /// The next used entry of `queue`, waiting up to `timeout` (`None` on
    /// timeout). Bypasses the protocol bookkeeping: use it on queues driven
    /// through [`MediaDevice::queue_mut`] only.
    pub fn wait_used(
        &mut self,
        queue: u16,
        timeout: Duration,
    ) -> Result<Option<UsedElem>, DriverError> {
        let deadline = Instant::now() + timeout;
        let state = self.state.as_mut().ok_or(DriverError::NotReady)?;
        let vq = state
            .queues
            .get_mut(usize::from(queue))
            .ok_or(DriverError::NoSuchQueue(queue))?;
        next_used(&mut self.transport, vq, deadline)
    }
}
