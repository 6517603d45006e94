//! The guest memory the benchmark's buffers live in: payload slots filled
//! with a self-describing pattern (so the client can check each payload
//! arrived intact without knowing the layout), then one data-status slot per
//! buffer.

use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest memory holding the payload slots.
pub(crate) const PAYLOAD_AREA: u64 = 64 << 20;
/// Where the 8-byte data statuses go (one per slot), after the payloads.
const STATUS_BASE: u64 = PAYLOAD_AREA;
/// Payload words are their guest address XOR this, so the client can check
/// every byte arrived in place without knowing the layout.
pub(crate) const PATTERN_KEY: u64 = 0x5a5a_1234_8765_a5a5;

/// Where the data status of the buffer in slot `slot` goes.
pub(crate) fn status_addr(slot: u64) -> GuestAddress {
    GuestAddress(STATUS_BASE + slot * 8)
}

/// Guest memory filled with the self-describing pattern.
pub(crate) fn guest_memory() -> Arc<GuestMemoryMmap> {
    let total = usize::try_from(PAYLOAD_AREA + (64 << 10)).expect("fits");
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), total)]).expect("guest memory");
    let chunk = 1u64 << 20;
    let mut bytes = Vec::with_capacity(usize::try_from(chunk).expect("fits"));
    for base in (0..PAYLOAD_AREA).step_by(1 << 20) {
        bytes.clear();
        for addr in (base..base + chunk).step_by(8) {
            bytes.extend_from_slice(&(addr ^ PATTERN_KEY).to_le_bytes());
        }
        mem.write_slice(&bytes, GuestAddress(base))
            .expect("fill guest memory");
    }
    Arc::new(mem)
}
