//! The rings: per-queue state, and the vhost-user messages that start a
//! queue (`SET_VRING_NUM`, `SET_VRING_BASE`, `SET_VRING_ADDR` with
//! addresses in this process's mapping, `SET_VRING_KICK`, `SET_VRING_CALL`,
//! then `SET_VRING_ENABLE 1`) and stop it (`SET_VRING_ENABLE 0`,
//! `GET_VRING_BASE`); kicks and calls are eventfds.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use vhost::VhostBackend;
use vhost::VringConfigData;
use vhost::vhost_user::VhostUserFrontend;
use vmm_sys_util::eventfd::EventFd;

use super::poll::poll;
use super::{VhostUserTransport, vu};
use crate::transport::TransportError;
use crate::virtqueue::QueueLayout;

/// Per-queue state.
#[derive(Debug, Default)]
pub(super) struct QueueState {
    pub(super) layout: Option<QueueLayout>,
    pub(super) kick: Option<EventFd>,
    pub(super) call: Option<EventFd>,
    pub(super) started: bool,
}

impl VhostUserTransport {
    /// The state of queue `queue`, if the device has it.
    pub(super) fn queue(&self, queue: u16) -> Result<&QueueState, TransportError> {
        self.queues
            .get(usize::from(queue))
            .ok_or(TransportError::NoSuchQueue(queue))
    }

    fn host_address(&self, queue: u16, gpa: u64) -> Result<u64, TransportError> {
        self.mem.host_address(gpa).ok_or(TransportError::BadQueue {
            queue,
            reason: "ring outside the DMA memory",
        })
    }

    /// Starts queue `index` at `layout` with its avail index at `base`, with
    /// new kick and call eventfds.
    pub(super) fn start_queue(
        &mut self,
        index: u16,
        layout: QueueLayout,
        base: u16,
    ) -> Result<(), TransportError> {
        let i = usize::from(index);
        let config = VringConfigData {
            queue_max_size: self.options.max_queue_size,
            queue_size: layout.size,
            flags: 0,
            desc_table_addr: self.host_address(index, layout.desc)?,
            used_ring_addr: self.host_address(index, layout.used)?,
            avail_ring_addr: self.host_address(index, layout.avail)?,
            log_addr: None,
        };
        let eventfd = || {
            EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(|source| {
                TransportError::Io {
                    op: "eventfd",
                    source,
                }
            })
        };
        let kick = eventfd()?;
        let call = eventfd()?;
        self.frontend
            .set_vring_num(i, layout.size)
            .map_err(vu("SET_VRING_NUM"))?;
        self.frontend
            .set_vring_base(i, base)
            .map_err(vu("SET_VRING_BASE"))?;
        self.frontend
            .set_vring_addr(i, &config)
            .map_err(vu("SET_VRING_ADDR"))?;
        self.frontend
            .set_vring_kick(i, &kick)
            .map_err(vu("SET_VRING_KICK"))?;
        self.frontend
            .set_vring_call(i, &call)
            .map_err(vu("SET_VRING_CALL"))?;
        let state = &mut self.queues[i];
        state.kick = Some(kick);
        state.call = Some(call);
        state.started = true;
        Ok(())
    }

    /// Stops every started ring (`SET_VRING_ENABLE 0`, `GET_VRING_BASE`)
    /// and forgets every queue; the first error, after trying them all.
    pub(super) fn stop_rings(&mut self) -> Result<(), TransportError> {
        let mut first_error = None;
        let enable = self.uses_protocol_features();
        for index in 0..self.queues.len() {
            if !self.queues[index].started {
                continue;
            }
            if enable && let Err(e) = self.frontend.set_vring_enable(index, false) {
                first_error.get_or_insert(TransportError::VhostUser {
                    op: "SET_VRING_ENABLE 0",
                    source: e,
                });
            }
            match self.frontend.get_vring_base(index) {
                Ok(base) => log::debug!("vhost-user: queue {index} stopped at {base}"),
                Err(e) => {
                    first_error.get_or_insert(TransportError::VhostUser {
                        op: "GET_VRING_BASE",
                        source: e,
                    });
                }
            }
        }
        for state in &mut self.queues {
            *state = QueueState::default();
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Starts every queue with a layout (base 0) and enables it; the number
    /// of queues started.
    pub(super) fn start_rings(&mut self) -> Result<usize, TransportError> {
        let layouts: Vec<(u16, QueueLayout)> = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| Some((u16::try_from(i).ok()?, q.layout?)))
            .collect();
        for &(index, layout) in &layouts {
            self.start_queue(index, layout, 0)?;
        }
        if self.uses_protocol_features() {
            for &(index, _) in &layouts {
                self.frontend
                    .set_vring_enable(usize::from(index), true)
                    .map_err(vu("SET_VRING_ENABLE 1"))?;
            }
        }
        Ok(layouts.len())
    }

    /// Records where queue `queue` lies, after checking it fits the DMA
    /// memory and the size limit.
    pub(super) fn set_queue_layout(
        &mut self,
        queue: u16,
        layout: &QueueLayout,
    ) -> Result<(), TransportError> {
        let bad = |reason| TransportError::BadQueue { queue, reason };
        let state = self.queue(queue)?;
        if state.started {
            return Err(bad("already started; reset first"));
        }
        if !layout.size.is_power_of_two() || layout.size > self.options.max_queue_size {
            return Err(bad("size not a power of two or above the maximum"));
        }
        let rings = [
            (layout.desc, QueueLayout::desc_bytes(layout.size)),
            (layout.avail, QueueLayout::avail_bytes(layout.size)),
            (layout.used, QueueLayout::used_bytes(layout.size)),
        ];
        if rings
            .iter()
            .any(|&(gpa, len)| !self.mem.contains(gpa, len as u64))
        {
            return Err(bad("ring outside the DMA memory"));
        }
        self.queues[usize::from(queue)].layout = Some(*layout);
        Ok(())
    }

    /// Kicks queue `queue` (its kick eventfd).
    pub(super) fn kick(&mut self, queue: u16) -> Result<(), TransportError> {
        let kick = self
            .queue(queue)?
            .kick
            .as_ref()
            .ok_or(TransportError::BadState("notify before DRIVER_OK"))?;
        kick.write(1).map_err(|source| TransportError::Io {
            op: "kick eventfd",
            source,
        })
    }

    /// Waits up to `timeout` for the call eventfd of `queue`; a hang-up of
    /// the connection is [`TransportError::Disconnected`].
    pub(super) fn wait_call(
        &mut self,
        queue: u16,
        timeout: Duration,
    ) -> Result<bool, TransportError> {
        let call = self
            .queue(queue)?
            .call
            .as_ref()
            .ok_or(TransportError::BadState("wait before DRIVER_OK"))?;
        let mut fds = [
            libc::pollfd {
                fd: call.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.frontend.as_raw_fd(),
                events: libc::POLLRDHUP,
                revents: 0,
            },
        ];
        poll(&mut fds, timeout).map_err(|source| TransportError::Io {
            op: "poll call eventfd",
            source,
        })?;
        if fds[1].revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
            return Err(TransportError::Disconnected);
        }
        if fds[0].revents & libc::POLLIN == 0 {
            return Ok(false);
        }
        match call.read() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(true),
            Err(source) => Err(TransportError::Io {
                op: "read call eventfd",
                source,
            }),
        }
    }

    /// The call eventfd of `queue`, once started.
    pub(super) fn call_fd(&self, queue: u16) -> Option<BorrowedFd<'_>> {
        self.queues
            .get(usize::from(queue))?
            .call
            .as_ref()
            .map(|call| {
                // SAFETY: the fd belongs to the EventFd in `self.queues`,
                // which stays open for as long as `self` is borrowed.
                unsafe { BorrowedFd::borrow_raw(call.as_raw_fd()) }
            })
    }
}
