//! Picture size from H.264/H.265 sequence parameter sets.
//!
//! Raw Annex-B streams have no container to say how big the pictures are,
//! but the device wants a width and height per video stream; the SPS holds
//! them behind a few Exp-Golomb fields. Anything unexpected gives `None`.

/// MSB-first bit reader over an RBSP (emulation prevention removed), also
/// used for the plain bit fields of AC-3 and MPEG-4 Part 2 headers.
pub(crate) struct Bits {
    data: Vec<u8>,
    pos: usize,
}

impl Bits {
    /// A reader of `data` as it is.
    pub(crate) fn new(data: &[u8]) -> Bits {
        Bits {
            data: data.to_vec(),
            pos: 0,
        }
    }

    /// Strips emulation prevention bytes (00 00 03 → 00 00) from `nal`.
    fn from_nal(nal: &[u8], header_len: usize) -> Option<Bits> {
        let mut data = Vec::with_capacity(nal.len());
        let mut zeros = 0;
        for &b in nal.get(header_len..)? {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Some(Bits { data, pos: 0 })
    }

    pub(crate) fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some((v << 1) | self.bit()?))
    }

    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        self.pos += n;
        (self.pos <= self.data.len() * 8).then_some(())
    }

    /// Unsigned Exp-Golomb.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        ((1u64 << zeros) - 1 + u64::from(rest)).try_into().ok()
    }

    /// Signed Exp-Golomb (only skipped, so the value is not mapped).
    fn se(&mut self) -> Option<()> {
        self.ue().map(|_| ())
    }
}

/// Crop units for a chroma_format_idc: (x, y per field/frame unit).
fn crop_units(chroma: u32) -> (u32, u32) {
    match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    }
}

/// Width and height from an H.264 SPS NAL (with its header byte).
pub(crate) fn h264_size(nal: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits::from_nal(nal, 1)?;
    let profile = r.bits(8)?;
    r.skip(16)?;
    r.ue()?; // seq_parameter_set_id
    let mut chroma = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma = r.ue()?;
        if chroma == 3 {
            r.skip(1)?;
        }
        r.ue()?;
        r.ue()?;
        r.skip(1)?;
        if r.bit()? == 1 {
            let lists = if chroma == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    skip_scaling_list(&mut r, size)?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.skip(1)?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()? {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.skip(1)?;
    let w_mbs = r.ue()?.checked_add(1)?;
    let h_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.skip(1)?;
    }
    r.skip(1)?;
    let (mut width, mut height) = (
        w_mbs.checked_mul(16)?,
        h_units.checked_mul(16 * (2 - frame_mbs_only))?,
    );
    if r.bit()? == 1 {
        let (cx, cy) = crop_units(chroma);
        let cy = cy * (2 - frame_mbs_only);
        let (l, rr, t, b) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        width = width.checked_sub(cx.checked_mul(l.checked_add(rr)?)?)?;
        height = height.checked_sub(cy.checked_mul(t.checked_add(b)?)?)?;
    }
    Some((width, height))
}

/// Skips a scaling_list() of `size` entries (delta_scale values).
fn skip_scaling_list(r: &mut Bits, size: usize) -> Option<()> {
    let mut last = 8i64;
    let mut next = 8i64;
    for _ in 0..size {
        if next != 0 {
            let code = i64::from(r.ue()?);
            let delta = if code % 2 == 1 {
                (code + 1) / 2
            } else {
                -(code / 2)
            };
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// Width and height from an H.265 SPS NAL (with its two header bytes).
pub(crate) fn h265_size(nal: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits::from_nal(nal, 2)?;
    r.skip(4)?; // sps_video_parameter_set_id
    let sub_layers = r.bits(3)?;
    r.skip(1)?;
    // profile_tier_level(1, sub_layers): general part, then sub-layer flags.
    r.skip(88 + 8)?;
    let mut flags = Vec::new();
    for _ in 0..sub_layers {
        flags.push((r.bit()?, r.bit()?));
    }
    if sub_layers > 0 {
        r.skip(2 * (8 - sub_layers as usize))?;
    }
    for (profile, level) in flags {
        r.skip(88 * profile as usize + 8 * level as usize)?;
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma = r.ue()?;
    if chroma == 3 {
        r.skip(1)?;
    }
    let (mut width, mut height) = (r.ue()?, r.ue()?);
    if r.bit()? == 1 {
        let (cx, cy) = crop_units(chroma);
        let (l, rr, t, b) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        width = width.checked_sub(cx.checked_mul(l.checked_add(rr)?)?)?;
        height = height.checked_sub(cy.checked_mul(t.checked_add(b)?)?)?;
    }
    Some((width, height))
}
