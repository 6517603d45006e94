//! Vorbis packet durations without decoding.
//!
//! Ogg gives times only per page, so each packet's sample count comes from
//! its mode's block size; the guest GStreamer sink needs the same count to
//! clip a packet against the segment as GStreamer's decoder does (public as
//! `redir_demux::VorbisModes`). The mode table sits at the end of the setup
//! header and is found by reading that header backwards (as FFmpeg's
//! vorbis_parser does), since the codebooks before it cannot be skipped
//! without parsing them.

/// Block sizes and each mode's block flag.
#[derive(Debug, Clone)]
pub struct Modes {
    blocksize: [u32; 2],
    long: Vec<bool>,
    previous: Option<u32>,
}

/// Reads bits from the end of a packet towards its start.
struct RevBits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl RevBits<'_> {
    fn left(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    fn bit(&mut self) -> Option<u32> {
        if self.left() == 0 {
            return None;
        }
        let byte = self.data[self.data.len() - 1 - self.pos / 8];
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some((v << 1) | self.bit()?))
    }
}

impl Modes {
    /// From the identification and setup headers; `None` if they are malformed.
    pub fn parse(ident: &[u8], setup: &[u8]) -> Option<Modes> {
        let b = *ident.get(28)?;
        let (e0, e1) = (u32::from(b & 0xF), u32::from(b >> 4));
        if !(6..=13).contains(&e0) || !(6..=13).contains(&e1) {
            return None;
        }
        let blocksize = [1u32 << e0, 1u32 << e1];
        let mut r = RevBits {
            data: setup,
            pos: 0,
        };
        // Skip padding up to the framing bit.
        let framing = loop {
            if r.left() <= 97 {
                return None;
            }
            if r.bit()? == 1 {
                break r.pos;
            }
        };
        let mut count = 0usize;
        let mut last = 0usize;
        while r.left() >= 97 {
            if r.bits(8)? > 63 || r.bits(16)? != 0 || r.bits(16)? != 0 {
                break;
            }
            r.bit()?;
            count += 1;
            if count > 64 {
                break;
            }
            let mut probe = RevBits {
                data: setup,
                pos: r.pos,
            };
            if probe.bits(6)? as usize + 1 == count {
                last = count;
            }
        }
        if last == 0 {
            return None;
        }
        let mut r = RevBits {
            data: setup,
            pos: framing,
        };
        let mut long = vec![false; last];
        for flag in long.iter_mut().rev() {
            r.bits(40)?;
            *flag = r.bit()? == 1;
        }
        Some(Modes {
            blocksize,
            long,
            previous: None,
        })
    }

    /// From the codec data (the three headers in Xiph lacing, spec 7.18).
    pub fn from_codec_data(data: &[u8]) -> Option<Modes> {
        let (&count, mut rest) = data.split_first()?;
        if count != 2 {
            return None;
        }
        let mut sizes = [0usize; 2];
        for size in &mut sizes {
            loop {
                let (&b, r) = rest.split_first()?;
                rest = r;
                *size += usize::from(b);
                if b != 255 {
                    break;
                }
            }
        }
        let ident = rest.get(..sizes[0])?;
        let setup = rest.get(sizes[0] + sizes[1]..)?;
        Modes::parse(ident, setup)
    }

    /// After a discontinuity the decoder restarts: its next packet gives
    /// no samples.
    pub fn restart(&mut self) {
        self.previous = None;
    }

    /// Samples this audio packet adds (0 for the first one).
    pub fn duration(&mut self, packet: &[u8]) -> u64 {
        let Some(&b0) = packet.first() else { return 0 };
        if b0 & 1 != 0 {
            return 0; // not an audio packet
        }
        let n = self.long.len();
        let mode = if n <= 1 {
            0
        } else {
            let bits = usize::BITS - (n - 1).leading_zeros();
            let mask = (1usize << bits) - 1;
            (usize::from(b0) >> 1) & mask
        };
        let current = self.blocksize[usize::from(self.long.get(mode).copied().unwrap_or(false))];
        let samples = self.previous.map_or(0, |p| (p + current) / 4);
        self.previous = Some(current);
        u64::from(samples)
    }
}
