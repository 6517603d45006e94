//! The desktop half of the `qemu attach` step: the QEMU that carries the
//! media device also serves the VM's desktop over Spice.
//!
//! A VDI host runs one QEMU per VM: its Spice server shows the desktop, the
//! media device redirects the media. The step's QEMU runs with
//! [`QemuCommand::with_spice_desktop`](qemu_config::QemuCommand::with_spice_desktop)
//! (the standard VGA, Spice on a Unix socket), and after the device checks:
//!
//! - the firmware (SeaBIOS, no disk) draws its screen: QMP `screendump`
//!   gives a PPM of the 80x25 text mode, 720x400 pixels (9x16 glyphs), not
//!   all one colour;
//! - the Spice server answers a client's first message (`SpiceLinkMess`
//!   for the main channel) with a `SpiceLinkReply` without error: the
//!   Spice protocol, not just a listening socket.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use test_support::{Image, Qmp};

/// The firmware screen: VGA text mode 80x25 with 9x16 glyphs.
pub(crate) const FIRMWARE_SCREEN: (u32, u32) = (720, 400);
/// Pixels that must differ from the background for a screen to count as
/// drawn (SeaBIOS's banner lights about a thousand).
const MIN_DRAWN_PIXELS: usize = 200;
/// How long the firmware gets to draw.
const DRAW_TIMEOUT: Duration = Duration::from_secs(30);

/// The magic of every Spice link message: "REDQ".
const SPICE_MAGIC: &[u8; 4] = b"REDQ";
/// The Spice protocol version (`SPICE_VERSION_MAJOR`, `_MINOR`).
const SPICE_VERSION: (u32, u32) = (2, 2);
/// `SPICE_CHANNEL_MAIN`.
const SPICE_CHANNEL_MAIN: u8 = 1;
/// The size of `SpiceLinkMess` without capabilities (packed): where its
/// capabilities start.
const LINK_MESS_SIZE: u32 = 18;
/// The common capabilities a client announces (one word):
/// `PROTOCOL_AUTH_SELECTION` (0), `AUTH_SPICE` (1), `MINI_HEADER` (3), as
/// spice-gtk does (without the first the server warns that the peer does
/// not support auth selection).
const COMMON_CAPS: u32 = 1 << 0 | 1 << 1 | 1 << 3;
/// The size of `SpiceLinkReply` without capabilities: error, 162 bytes of
/// RSA public key, three counts.
const LINK_REPLY_SIZE: usize = 4 + 162 + 12;

/// Whether a screendump shows the firmware's screen drawn.
pub(crate) fn firmware_screen_drawn(screen: &Image) -> bool {
    (screen.width, screen.height) == (FIRMWARE_SCREEN.0 as usize, FIRMWARE_SCREEN.1 as usize)
        && screen.drawn_pixels() >= MIN_DRAWN_PIXELS
}

/// A client's first message: `SpiceLinkHeader` + `SpiceLinkMess` for the
/// main channel (new session, [`COMMON_CAPS`], no channel capabilities),
/// little-endian and packed.
pub(crate) fn spice_link_mess() -> Vec<u8> {
    let size = LINK_MESS_SIZE + 4;
    let mut message = Vec::with_capacity(16 + size as usize);
    message.extend_from_slice(SPICE_MAGIC);
    message.extend_from_slice(&SPICE_VERSION.0.to_le_bytes());
    message.extend_from_slice(&SPICE_VERSION.1.to_le_bytes());
    message.extend_from_slice(&size.to_le_bytes());
    message.extend_from_slice(&0u32.to_le_bytes()); // connection_id: a new session
    message.push(SPICE_CHANNEL_MAIN);
    message.push(0); // channel_id
    message.extend_from_slice(&1u32.to_le_bytes()); // num_common_caps
    message.extend_from_slice(&0u32.to_le_bytes()); // num_channel_caps
    message.extend_from_slice(&LINK_MESS_SIZE.to_le_bytes()); // caps_offset
    message.extend_from_slice(&COMMON_CAPS.to_le_bytes());
    message
}

/// Reads a u32 (little-endian) at `at`.
fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// Checks the server's `SpiceLinkHeader`; returns the size of the
/// `SpiceLinkReply` that follows.
pub(crate) fn check_link_header(header: &[u8; 16]) -> Result<usize> {
    if &header[..4] != SPICE_MAGIC {
        bail!("the Spice server's reply does not start with REDQ: {header:02x?}");
    }
    let version = (le_u32(header, 4), le_u32(header, 8));
    if version.0 != SPICE_VERSION.0 {
        bail!(
            "the Spice server speaks protocol {}.{}",
            version.0,
            version.1
        );
    }
    let size = usize::try_from(le_u32(header, 12))?;
    if !(LINK_REPLY_SIZE..=4096).contains(&size) {
        bail!("a SpiceLinkReply of {size} bytes");
    }
    Ok(size)
}

/// Checks a `SpiceLinkReply`: its error is `SPICE_LINK_ERR_OK` (0).
pub(crate) fn check_link_reply(reply: &[u8]) -> Result<()> {
    if reply.len() < LINK_REPLY_SIZE {
        bail!("a SpiceLinkReply of only {} bytes", reply.len());
    }
    match le_u32(reply, 0) {
        0 => Ok(()),
        error => bail!("the Spice server refused the link: error {error}"),
    }
}

/// Links to the main channel of the Spice server on `socket` (up to the
/// server's reply; the ticket is not sent).
pub(crate) fn spice_answers(socket: &Path) -> Result<()> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to Spice at {}", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(&spice_link_mess())?;
    let mut header = [0; 16];
    stream
        .read_exact(&mut header)
        .context("reading the SpiceLinkHeader")?;
    let mut reply = vec![0; check_link_header(&header)?];
    stream
        .read_exact(&mut reply)
        .context("reading the SpiceLinkReply")?;
    check_link_reply(&reply)
}

/// Waits until the firmware screen is drawn (QMP `screendump` into `dir`);
/// returns the number of drawn pixels.
pub(crate) fn wait_for_firmware_screen(qmp: &mut Qmp, dir: &Path) -> Result<Image> {
    let file = dir.join("screen.ppm");
    let started = Instant::now();
    loop {
        let screen = qmp.screendump(&file).context("QMP screendump")?;
        if firmware_screen_drawn(&screen) {
            return Ok(screen);
        }
        if started.elapsed() > DRAW_TIMEOUT {
            bail!(
                "no firmware screen within {DRAW_TIMEOUT:?}: the last screendump is {}x{} with {} drawn pixels \
                 (expected {}x{}, at least {MIN_DRAWN_PIXELS})",
                screen.width,
                screen.height,
                screen.drawn_pixels(),
                FIRMWARE_SCREEN.0,
                FIRMWARE_SCREEN.1
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The desktop checks on a QEMU started with the Spice desktop, QMP
/// connected, the guest not paused.
pub(crate) fn check(qmp: &mut Qmp, spice_socket: &Path, dir: &Path) -> Result<()> {
    let drawn = wait_for_firmware_screen(qmp, dir)?.drawn_pixels();
    println!(
        "qemu attach: the firmware screen is drawn ({}x{}, {drawn} pixels not background)",
        FIRMWARE_SCREEN.0, FIRMWARE_SCREEN.1
    );
    spice_answers(spice_socket)?;
    println!(
        "qemu attach: QEMU's Spice server on {} answers the main channel's link",
        spice_socket.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(width: usize, height: usize, drawn: usize) -> Image {
        Image::from_fn(width, height, |x, y| {
            let i = y * width + x;
            if i >= 1 && i <= drawn { 0xaaaaaa } else { 0 }
        })
    }

    #[test]
    fn the_firmware_screen_is_recognised() {
        let (w, h) = (FIRMWARE_SCREEN.0 as usize, FIRMWARE_SCREEN.1 as usize);
        assert!(firmware_screen_drawn(&screen(w, h, 1000)));
        // Blank, or the 640x480 surface before the firmware runs.
        assert!(!firmware_screen_drawn(&screen(w, h, 0)));
        assert!(!firmware_screen_drawn(&screen(640, 480, 1000)));
    }

    #[test]
    fn the_link_message_is_the_protocols() {
        let message = spice_link_mess();
        assert_eq!(message.len(), 38);
        assert_eq!(&message[..4], b"REDQ");
        assert_eq!(le_u32(&message, 4), 2);
        assert_eq!(le_u32(&message, 12), 22);
        assert_eq!(message[20], SPICE_CHANNEL_MAIN);
        assert_eq!(le_u32(&message, 22), 1);
        assert_eq!(le_u32(&message, 30), 18);
        assert_eq!(le_u32(&message, 34), 0b1011);
    }

    #[test]
    fn link_replies_are_checked() {
        let mut header = [0u8; 16];
        header[..4].copy_from_slice(b"REDQ");
        header[4..8].copy_from_slice(&2u32.to_le_bytes());
        header[8..12].copy_from_slice(&2u32.to_le_bytes());
        header[12..16].copy_from_slice(&186u32.to_le_bytes());
        assert_eq!(check_link_header(&header).unwrap(), 186);
        let mut wrong = header;
        wrong[0] = b'X';
        assert!(check_link_header(&wrong).is_err());
        let mut reply = vec![0u8; 186];
        check_link_reply(&reply).unwrap();
        reply[0] = 7; // SPICE_LINK_ERR_PERMISSION_DENIED
        assert!(check_link_reply(&reply).is_err());
        assert!(check_link_reply(&[0; 8]).is_err());
    }
}
