//! The few bytes the device itself reads from or writes to guest memory:
//! control requests and fixed headers in, responses and statuses out. The
//! payload is never read here: [`skip_bytes`] only trims the chain's segment
//! list down to it.

use vm_memory::GuestAddress;

use crate::chain::Segment;
use crate::memory::GuestRam;

/// Reads at most `max` bytes from the front of `segments` (control requests,
/// whose size varies; payload is never read here).
pub(super) fn read_front(mem: &dyn GuestRam, segments: &[Segment], max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for seg in segments {
        if out.len() >= max {
            break;
        }
        let n = (seg.len as usize).min(max - out.len());
        let start = out.len();
        out.resize(start + n, 0);
        mem.read_at(seg.addr, &mut out[start..]).ok()?;
    }
    Some(out)
}

/// Reads exactly `N` bytes from the front of `segments` into a stack array
/// (fixed headers: no allocation per buffer); `None` when the segments hold
/// fewer or the memory cannot be read.
pub(super) fn read_array<const N: usize>(
    mem: &dyn GuestRam,
    segments: &[Segment],
) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    let mut done = 0;
    for seg in segments {
        if done == N {
            break;
        }
        let n = (seg.len as usize).min(N - done);
        mem.read_at(seg.addr, &mut out[done..done + n]).ok()?;
        done += n;
    }
    (done == N).then_some(out)
}

/// Writes `bytes` across `segments`; returns how many were written.
pub(super) fn write_scatter(mem: &dyn GuestRam, segments: &[Segment], bytes: &[u8]) -> usize {
    let mut done = 0;
    for seg in segments {
        if done == bytes.len() {
            break;
        }
        let n = (seg.len as usize).min(bytes.len() - done);
        if mem.write_at(seg.addr, &bytes[done..done + n]).is_err() {
            break;
        }
        done += n;
    }
    done
}

/// Drops the first `skip` bytes of `segments`, in place (the chain's own
/// list becomes the payload's: no allocation per buffer).
pub fn skip_bytes(mut segments: Vec<Segment>, mut skip: u64) -> Vec<Segment> {
    segments.retain_mut(|seg| {
        let len = u64::from(seg.len);
        if skip >= len {
            skip -= len;
            return false;
        }
        seg.addr = GuestAddress(seg.addr.0 + skip);
        seg.len = u32::try_from(len - skip).unwrap_or(u32::MAX);
        skip = 0;
        true
    });
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipping_header_bytes_across_segments() {
        let segs = [
            Segment {
                addr: GuestAddress(0x1000),
                len: 16,
            },
            Segment {
                addr: GuestAddress(0x2000),
                len: 40,
            },
            Segment {
                addr: GuestAddress(0x3000),
                len: 100,
            },
        ];
        let rest = skip_bytes(segs.to_vec(), 48);
        assert_eq!(
            rest,
            vec![
                Segment {
                    addr: GuestAddress(0x2000 + 32),
                    len: 8
                },
                Segment {
                    addr: GuestAddress(0x3000),
                    len: 100
                }
            ]
        );
        assert_eq!(skip_bytes(segs.to_vec(), 156), vec![]);
    }
}
