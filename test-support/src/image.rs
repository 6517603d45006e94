//! Screen images the tests compare: what the X server shows (an `xwd`
//! dump) and what QEMU shows (its QMP `screendump`, a binary PPM), in one
//! type, so that a test compares pixels of both directly.

use std::io;

/// An image, one `0x00RRGGBB` word per pixel, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The pixels.
    pub pixels: Vec<u32>,
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// One pixel word, `0x00RRGGBB`, from (R, G, B).
pub fn pixel((r, g, b): (u8, u8, u8)) -> u32 {
    (u32::from(r) << 16) | (u32::from(g) << 8) | u32::from(b)
}

impl Image {
    /// A `width` x `height` image whose pixel at (x, y) is `f(x, y)`
    /// (a `0x00RRGGBB` word, see [`pixel`]).
    pub fn from_fn(width: usize, height: usize, f: impl Fn(usize, usize) -> u32) -> Image {
        let pixels = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        Image {
            width,
            height,
            pixels,
        }
    }

    /// (R, G, B) at (`x`, `y`); black outside the image.
    pub fn rgb(&self, x: usize, y: usize) -> (u8, u8, u8) {
        if x >= self.width || y >= self.height {
            return (0, 0, 0);
        }
        let [_, r, g, b] = self.pixels[y * self.width + x].to_be_bytes();
        (r, g, b)
    }

    /// How many pixels differ from the first (the background): how much a
    /// screen has drawn.
    pub fn drawn_pixels(&self) -> usize {
        let Some(&background) = self.pixels.first() else {
            return 0;
        };
        self.pixels.iter().filter(|&&p| p != background).count()
    }

    /// Parses an XWD dump of a TrueColor, 32 bits-per-pixel Z pixmap (what
    /// `xwd` writes for a 24-bit Xvfb): a header of big-endian u32 fields,
    /// `ncolors` 12-byte colour entries, then `height` lines of
    /// `bytes_per_line` bytes in the header's byte order.
    pub fn from_xwd(d: &[u8]) -> io::Result<Image> {
        let field = |i: usize| -> io::Result<u32> {
            d.get(i * 4..i * 4 + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| bad("xwd: short header".into()))
        };
        let size = |i: usize| field(i).map(|v| v as usize);
        let (header_size, width, height) = (size(0)?, size(4)?, size(5)?);
        let (byte_order, bits_per_pixel, bytes_per_line) = (field(7)?, field(11)?, size(12)?);
        let (rm, gm, bm, ncolors) = (field(14)?, field(15)?, field(16)?, size(19)?);
        if bits_per_pixel != 32 || rm == 0 || gm == 0 || bm == 0 {
            return Err(bad(format!(
                "xwd: {bits_per_pixel} bits per pixel, not 32-bit TrueColor"
            )));
        }
        let start = header_size + ncolors * 12;
        let channel = |p: u32, m: u32| (p & m) >> m.trailing_zeros();
        let mut pixels = Vec::with_capacity(width * height);
        for y in 0..height {
            let at = start + y * bytes_per_line;
            let line = d
                .get(at..at + width * 4)
                .ok_or_else(|| bad(format!("xwd: line {y} is cut short")))?;
            for px in line.chunks_exact(4) {
                let raw = [px[0], px[1], px[2], px[3]];
                let p = if byte_order == 0 {
                    u32::from_le_bytes(raw)
                } else {
                    u32::from_be_bytes(raw)
                };
                pixels.push((channel(p, rm) << 16) | (channel(p, gm) << 8) | channel(p, bm));
            }
        }
        Ok(Image {
            width,
            height,
            pixels,
        })
    }

    /// Parses a binary PPM (`P6`, maxval 255), as QEMU's `screendump`
    /// writes it.
    pub fn from_ppm(data: &[u8]) -> io::Result<Image> {
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 4 {
            while data.get(at).is_some_and(u8::is_ascii_whitespace) {
                at += 1;
            }
            let start = at;
            while data.get(at).is_some_and(|b| !b.is_ascii_whitespace()) {
                at += 1;
            }
            if start == at {
                return Err(bad(format!(
                    "a PPM header ends after {} fields",
                    fields.len()
                )));
            }
            fields.push(String::from_utf8_lossy(&data[start..at]).into_owned());
        }
        // Exactly one whitespace byte separates the header from the samples.
        let samples = data.get(at + 1..).unwrap_or_default();
        if fields[0] != "P6" || fields[3] != "255" {
            return Err(bad(format!(
                "not an 8-bit binary PPM: {} ... {}",
                fields[0], fields[3]
            )));
        }
        let number = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| bad(format!("PPM size {s:?}")))
        };
        let (width, height) = (number(&fields[1])?, number(&fields[2])?);
        if samples.len() != width * height * 3 {
            return Err(bad(format!(
                "a {width}x{height} PPM has {} bytes of samples",
                samples.len()
            )));
        }
        let pixels = samples
            .chunks_exact(3)
            .map(|p| pixel((p[0], p[1], p[2])))
            .collect();
        Ok(Image {
            width,
            height,
            pixels,
        })
    }

    /// The image as a binary PPM (what [`Image::from_ppm`] reads), for
    /// saving what a failed test saw.
    pub fn to_ppm(&self) -> Vec<u8> {
        let mut out = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        for p in &self.pixels {
            let [_, r, g, b] = p.to_be_bytes();
            out.extend([r, g, b]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppm_parses() {
        let mut d = b"P6\n2 1\n255\n".to_vec();
        d.extend([255, 0, 0, 0, 0, 255]);
        let img = Image::from_ppm(&d).unwrap();
        assert_eq!((img.width, img.height), (2, 1));
        assert_eq!(img.rgb(0, 0), (255, 0, 0));
        assert_eq!(img.rgb(1, 0), (0, 0, 255));
        assert_eq!(img.drawn_pixels(), 1);
        assert!(Image::from_ppm(b"P5\n1 1\n255\n\0").is_err());
        assert!(Image::from_ppm(b"P6\n2 2\n255\n\0\0\0").is_err());
        assert_eq!(Image::from_ppm(&img.to_ppm()).unwrap(), img);
        let made = Image::from_fn(2, 1, |x, _| {
            pixel((255 * u8::from(x == 0), 0, 255 * u8::from(x == 1)))
        });
        assert_eq!(made, img);
    }

    #[test]
    fn xwd_parses() {
        // Header of 25 fields + a 4-byte name, no colours, 2x1 LSB-first.
        let mut h = [0u32; 25];
        h[0] = 104;
        (h[4], h[5], h[7], h[11], h[12]) = (2, 1, 0, 32, 8);
        (h[14], h[15], h[16], h[19]) = (0xff0000, 0xff00, 0xff, 0);
        let mut d: Vec<u8> = h.iter().flat_map(|v| v.to_be_bytes()).collect();
        d.extend(b"win\0");
        d.extend([0x30, 0x20, 0x10, 0, 0xff, 0, 0, 0]);
        let img = Image::from_xwd(&d).unwrap();
        assert_eq!(img.rgb(0, 0), (0x10, 0x20, 0x30));
        assert_eq!(img.rgb(1, 0), (0, 0, 0xff));
        assert!(Image::from_xwd(&d[..50]).is_err());
    }
}
