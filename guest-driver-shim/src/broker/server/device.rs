//! The device's side of the broker loop: completed chains answered with
//! `COMPLETE`, captured samples delivered, events routed to the players
//! that own their objects, and device resets (a restarted host daemon,
//! spec 7.16, or a reset asked for): buffers in flight complete `STALE`
//! and clients that owned objects must say `HELLO` again.

use std::time::{Duration, Instant};

use mediaredir_proto::broker::BrokerMessage;
use mediaredir_proto::control::Limits;
use mediaredir_proto::event::Event;
use mediaredir_proto::status::Status;

use super::{Broker, ClientId};
use crate::broker::BrokerError;
use crate::broker::ownership::is_broadcast;
use crate::transport::Transport;

/// Pause between two attempts to reset a device that is not ready.
const RESET_RETRY_INTERVAL: Duration = Duration::from_millis(500);

impl<T: Transport> Broker<T> {
    /// Control answers, completions, events and the backlogs.
    pub(super) fn service_device(&mut self) -> Result<(), BrokerError> {
        self.service_controls()?;
        let txqs: Vec<u16> = (0..self.dev.cached_config()?.limits.num_txqs)
            .filter_map(|t| u16::try_from(t).ok())
            .collect();
        let mut stale = false;
        for &txq in &txqs {
            for done in self.dev.poll_data_completions(txq)? {
                let Some(w) = self.in_flight.remove(&done.token) else {
                    continue;
                };
                let status = done.status.unwrap_or_else(|e| {
                    log::warn!("broker: txq {txq}: unreadable completion: {e}");
                    Status::Io
                });
                stale |= status == Status::Stale;
                self.reply(w.client, w.tag, &BrokerMessage::Complete { status }, None);
                if let Some(pool) = self.pools.get_mut(&(w.client, w.pool)) {
                    pool.in_flight -= 1;
                }
                self.release_idle_pool(w.client, w.pool)?;
            }
            self.drain_backlog(txq)?;
        }
        if stale {
            // A new device instance (a restarted daemon) refuses the old
            // generation's buffers, maybe before its DEVICE_STARTED.
            log::warn!("broker: a buffer completed STALE: the device restarted");
            return self.reset_device();
        }
        for sample in self.dev.poll_captures()? {
            self.deliver_capture(&sample);
        }
        while let Some((event, generation)) = self.dev.next_event(Duration::ZERO)? {
            self.route_event(&event, generation)?;
        }
        Ok(())
    }

    fn route_event(&mut self, event: &Event, generation: u32) -> Result<(), BrokerError> {
        if generation != self.generation {
            // A new device instance (spec 7.16): its DEVICE_STARTED, or any
            // event of it, tells the driver to reset.
            log::warn!(
                "broker: device generation {:#x} -> {generation:#x}: resetting it",
                self.generation
            );
            self.reset_device()?;
            return Ok(());
        }
        if matches!(event, Event::DeviceStarted) {
            // The instance this broker initialised announcing itself.
            return Ok(());
        }
        let raw = event.encode(generation);
        let broadcast = is_broadcast(event);
        for client in self.clients.values_mut() {
            if client.hello && (broadcast || client.owned.owns_event(event)) {
                client.send_event(raw);
            }
        }
        Ok(())
    }

    /// Asks for a device reset, as when the device restarted: buffers in
    /// flight complete `STALE`, clients get `DEVICE_STARTED` and must say
    /// `HELLO` again. For a player that runs this broker in its own process
    /// and wants to reset the device mid-stream (players reach the device
    /// only through the broker).
    pub fn reset(&mut self) -> Result<(), BrokerError> {
        log::info!("broker: device reset asked");
        self.reset_device()
    }

    /// Resets and initialises the device, retrying for
    /// [`BrokerOptions::reset_retry`](crate::broker::BrokerOptions::reset_retry):
    /// while a restarted host daemon is not up yet the device reads back an
    /// empty configuration and its initialisation fails.
    fn reset_until_ready(&mut self) -> Result<(), BrokerError> {
        let deadline = Instant::now() + self.options.reset_retry;
        loop {
            match self.dev.reset() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline => {
                    log::warn!("broker: device not ready yet ({e}); retrying");
                    std::thread::sleep(RESET_RETRY_INTERVAL);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Resets the device (DRV-RST-1): pending control requests and buffers
    /// are answered `STALE`, clients that owned objects become stale, pools
    /// stay.
    pub(super) fn reset_device(&mut self) -> Result<(), BrokerError> {
        self.reset_until_ready()?;
        let config = self.dev.cached_config()?;
        self.generation = config.generation;
        self.limits = Limits::from(&config);
        self.reset_controls();
        let stale = |status| BrokerMessage::Complete { status };
        for (_, w) in std::mem::take(&mut self.in_flight) {
            self.reply(w.client, w.tag, &stale(Status::Stale), None);
        }
        for w in std::mem::take(&mut self.waiting).into_values().flatten() {
            self.reply(w.client, w.tag, &stale(Status::Stale), None);
        }
        for pool in self.pools.values_mut() {
            pool.in_flight = 0;
        }
        let started = Event::DeviceStarted.encode(self.generation);
        for client in self.clients.values_mut() {
            client.generation = self.generation;
            if !client.owned.is_empty() {
                client.stale = true;
                client.owned.clear();
            }
            if client.hello {
                client.send_event(started);
            }
        }
        let keys: Vec<(ClientId, u32)> = self.pools.keys().copied().collect();
        for (id, pool) in keys {
            self.release_idle_pool(id, pool)?;
        }
        log::info!("broker: device reset, generation {:#x}", self.generation);
        Ok(())
    }
}
