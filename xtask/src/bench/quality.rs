//! Picture quality of a re-encode against the original decode, computed in
//! Rust over decoded frames: PSNR and SSIM on luma (8-bit Y planes).
//!
//! SSIM uses 8x8 windows with a step of 4 (overlapping, unweighted, as
//! libvpx's and x264's fast SSIM do) and the usual constants
//! C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2; a frame's SSIM is the mean over
//! its windows and a clip's is the mean over the sampled frames. PSNR is
//! over the clip's pooled mean squared error (infinite when it is 0).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Quality of one stream against its reference.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Quality {
    /// Frames compared.
    pub(crate) frames: u64,
    /// PSNR of luma, in dB (`f64::INFINITY` when identical).
    pub(crate) psnr_db: f64,
    /// Mean SSIM of luma (1 when identical).
    pub(crate) ssim: f64,
}

/// Sum of squared differences of two planes.
pub(crate) fn sse(a: &[u8], b: &[u8]) -> u64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = i64::from(x) - i64::from(y);
            (d * d) as u64
        })
        .sum()
}

/// PSNR in dB from a mean squared error of 8-bit samples.
pub(crate) fn psnr(mse: f64) -> f64 {
    if mse <= 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

const WIN: usize = 8;
const STEP: usize = 4;

/// SSIM of two `width` x `height` luma planes (8x8 windows, step 4).
pub(crate) fn ssim(a: &[u8], b: &[u8], width: usize, height: usize) -> f64 {
    const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
    const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);
    if width < WIN || height < WIN {
        return if a == b { 1.0 } else { 0.0 };
    }
    let n = (WIN * WIN) as f64;
    let mut total = 0.0;
    let mut windows = 0u64;
    let mut y = 0;
    while y + WIN <= height {
        let mut x = 0;
        while x + WIN <= width {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0u64, 0u64, 0u64, 0u64, 0u64);
            for row in y..y + WIN {
                let off = row * width + x;
                for (&pa, &pb) in a[off..off + WIN].iter().zip(&b[off..off + WIN]) {
                    let (pa, pb) = (u64::from(pa), u64::from(pb));
                    sa += pa;
                    sb += pb;
                    saa += pa * pa;
                    sbb += pb * pb;
                    sab += pa * pb;
                }
            }
            let (ma, mb) = (sa as f64 / n, sb as f64 / n);
            let va = saa as f64 / n - ma * ma;
            let vb = sbb as f64 / n - mb * mb;
            let cov = sab as f64 / n - ma * mb;
            total += ((2.0 * ma * mb + C1) * (2.0 * cov + C2))
                / ((ma * ma + mb * mb + C1) * (va + vb + C2));
            windows += 1;
            x += STEP;
        }
        y += STEP;
    }
    total / windows as f64
}

/// Compares two files of concatenated `width` x `height` GRAY8 frames,
/// frame by frame, up to the shorter one.
pub(crate) fn compare_files(
    reference: &Path,
    test: &Path,
    width: usize,
    height: usize,
) -> Result<Quality> {
    let open = |p: &Path| {
        std::fs::File::open(p)
            .map(std::io::BufReader::new)
            .with_context(|| format!("opening {}", p.display()))
    };
    let (mut ra, mut rb) = (open(reference)?, open(test)?);
    let size = width * height;
    let (mut fa, mut fb) = (vec![0u8; size], vec![0u8; size]);
    let (mut frames, mut total_sse, mut total_ssim) = (0u64, 0u64, 0.0);
    while read_frame(&mut ra, &mut fa)? && read_frame(&mut rb, &mut fb)? {
        frames += 1;
        total_sse += sse(&fa, &fb);
        total_ssim += ssim(&fa, &fb, width, height);
    }
    if frames == 0 {
        bail!(
            "no frames to compare in {} and {}",
            reference.display(),
            test.display()
        );
    }
    Ok(Quality {
        frames,
        psnr_db: psnr(total_sse as f64 / (frames as f64 * size as f64)),
        ssim: total_ssim / frames as f64,
    })
}

/// Reads one whole frame; false at the end of the file.
fn read_frame(r: &mut impl Read, frame: &mut [u8]) -> Result<bool> {
    match r.read_exact(frame) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e).context("reading a frame"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn byte(v: usize) -> u8 {
        v.to_le_bytes()[0]
    }

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> Vec<u8> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect()
    }

    #[test]
    fn identical_frames_are_infinite_psnr_and_ssim_one() {
        let a = plane(32, 16, |x, y| byte(x * 7 + y * 3));
        assert_eq!(sse(&a, &a), 0);
        assert!(psnr(0.0).is_infinite());
        assert!((ssim(&a, &a, 32, 16) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn known_psnr_and_ssim_drop_with_noise() {
        // Every sample off by 5: MSE 25, PSNR = 10 log10(65025/25) = 34.15 dB.
        assert!((psnr(25.0) - 34.151).abs() < 1e-3);
        let a = plane(64, 64, |x, y| byte((x * 13 + y * 29) % 200));
        let shifted: Vec<u8> = a.iter().map(|&v| v + 5).collect();
        let noisy: Vec<u8> = a
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if i % 2 == 0 {
                    v.saturating_add(40)
                } else {
                    v.saturating_sub(40)
                }
            })
            .collect();
        let s_shift = ssim(&a, &shifted, 64, 64);
        let s_noise = ssim(&a, &noisy, 64, 64);
        assert!(s_shift > 0.99 && s_shift < 1.0, "{s_shift}");
        assert!(s_noise < s_shift, "{s_noise} vs {s_shift}");
    }

    #[test]
    fn compares_files_frame_by_frame() {
        let dir = crate::tempdir::new("xtask-quality").unwrap();
        let a = plane(16, 8, |x, y| byte(x + y));
        let b: Vec<u8> = a.iter().map(|&v| v + 2).collect();
        let (pa, pb) = (dir.path().join("a.y"), dir.path().join("b.y"));
        std::fs::write(&pa, [a.clone(), a.clone()].concat()).unwrap();
        std::fs::write(&pb, [a.clone(), b, vec![0; 5]].concat()).unwrap();
        let q = compare_files(&pa, &pb, 16, 8).unwrap();
        assert_eq!(q.frames, 2);
        // Half the frames off by 2: MSE 2.
        assert!((q.psnr_db - psnr(2.0)).abs() < 1e-9);
        let same = compare_files(&pa, &pa, 16, 8).unwrap();
        assert!(same.psnr_db.is_infinite() && (same.ssim - 1.0).abs() < 1e-12);
    }
}
