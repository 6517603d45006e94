//! The memory table: guest RAM (the main memfd) and the extra memories
//! made by [`Transport::new_memory`] (a broker's buffer pools), sent whole
//! with `SET_MEM_TABLE`, or region by region with `ADD_MEM_REG` /
//! `REM_MEM_REG` when the daemon offers `CONFIGURE_MEM_SLOTS`, as QEMU does
//! at start and on memory hot-plug.

use std::sync::Arc;

use vhost::VhostBackend;
use vhost::VhostUserMemoryRegionInfo;
use vhost::vhost_user::VhostUserFrontend;
use vhost::vhost_user::message::VhostUserProtocolFeatures;

use super::{VhostUserTransport, vu};
use crate::dma::DmaMemory;
#[cfg(doc)]
use crate::transport::Transport;
use crate::transport::{TransportError, forget_memory, status};

/// Guest-physical address of the first memory made by
/// [`Transport::new_memory`]: far above any RAM the tests give the main
/// memory, so the two never overlap.
pub(super) const EXTRA_MEMORY_BASE: u64 = 1 << 40;

/// Size and address granularity of extra memory (a huge page, as QEMU
/// aligns RAM blocks).
const EXTRA_MEMORY_ALIGN: u64 = 2 << 20;

/// Memory regions `SET_MEM_TABLE` may carry (vhost-user's
/// `VHOST_MEMORY_BASELINE_NREGIONS`); more need `CONFIGURE_MEM_SLOTS`.
const SET_MEM_TABLE_MAX_REGIONS: usize = 8;

/// The vhost-user description of `memory` (fd, guest-physical base, size and
/// this process's address).
fn region_info(memory: &DmaMemory) -> Result<VhostUserMemoryRegionInfo, TransportError> {
    VhostUserMemoryRegionInfo::from_guest_region(memory.guest_region()).map_err(vu("memory region"))
}

impl VhostUserTransport {
    /// Whether the daemon takes single regions (`ADD_MEM_REG`/`REM_MEM_REG`).
    fn has_mem_slots(&self) -> bool {
        self.protocol_features
            .contains(VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS)
    }

    /// Whether the daemon has a memory table (set at DRIVER_OK).
    fn table_sent(&self) -> bool {
        self.status & status::DRIVER_OK != 0
    }

    /// Sends the whole memory table: the main memory and every extra
    /// memory, as QEMU does at start and after a memory hot-plug.
    pub(super) fn send_memory_table(&mut self) -> Result<(), TransportError> {
        let mut regions = vec![region_info(&self.mem)?];
        if self.has_mem_slots() {
            self.frontend
                .set_mem_table(&regions)
                .map_err(vu("SET_MEM_TABLE"))?;
            for memory in &self.extra {
                self.frontend
                    .add_mem_region(&region_info(memory)?)
                    .map_err(vu("ADD_MEM_REG"))?;
            }
            return Ok(());
        }
        for memory in &self.extra {
            regions.push(region_info(memory)?);
        }
        if regions.len() > SET_MEM_TABLE_MAX_REGIONS {
            return Err(TransportError::Unsupported(
                "more than 8 memory regions without CONFIGURE_MEM_SLOTS",
            ));
        }
        self.frontend
            .set_mem_table(&regions)
            .map_err(vu("SET_MEM_TABLE"))?;
        Ok(())
    }

    /// New memfd memory after the last extra memory, added to the
    /// daemon's table when it has one ([`Transport::new_memory`]).
    pub(super) fn add_extra_memory(
        &mut self,
        size: usize,
    ) -> Result<Arc<DmaMemory>, TransportError> {
        let size = (size as u64)
            .checked_next_multiple_of(EXTRA_MEMORY_ALIGN)
            .filter(|&s| s > 0)
            .ok_or(TransportError::Unsupported("extra memory size"))?;
        let gpa = self.next_extra;
        let memory = DmaMemory::new_memfd(
            usize::try_from(size).map_err(|_| TransportError::Unsupported("extra memory size"))?,
            gpa,
        )?;
        if self.table_sent() {
            if self.has_mem_slots() {
                self.frontend
                    .add_mem_region(&region_info(&memory)?)
                    .map_err(vu("ADD_MEM_REG"))?;
                self.extra.push(Arc::clone(&memory));
            } else {
                self.extra.push(Arc::clone(&memory));
                if let Err(e) = self.send_memory_table() {
                    self.extra.pop();
                    return Err(e);
                }
            }
        } else {
            self.extra.push(Arc::clone(&memory));
        }
        self.next_extra = gpa + size;
        log::debug!("vhost-user: extra memory of {size} bytes at {gpa:#x}");
        Ok(memory)
    }

    /// Withdraws extra memory from the daemon's table
    /// ([`Transport::release_memory`]).
    pub(super) fn remove_extra_memory(
        &mut self,
        memory: &Arc<DmaMemory>,
    ) -> Result<(), TransportError> {
        forget_memory(&mut self.extra, memory)?;
        if self.table_sent() {
            if self.has_mem_slots() {
                self.frontend
                    .remove_mem_region(&region_info(memory)?)
                    .map_err(vu("REM_MEM_REG"))?;
            } else {
                self.send_memory_table()?;
            }
        }
        Ok(())
    }
}
