//! Files for captured streams: Ogg Opus (RFC 7845) for Opus, IVF for VP8,
//! so that any player or `gst-launch-1.0` opens what was recorded.
//!
//! The client sends Opus without its OpusHead (spec 7.10: up to two
//! channels it is not needed), so the writer makes the identification and
//! comment headers itself; granule positions count 48 kHz samples from the
//! samples' durations.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, bail};
use ogg::writing::{PacketWriteEndInfo, PacketWriter};

/// A file one compressed stream is written to.
pub(crate) trait SampleWriter {
    /// Writes one sample lasting `duration_ns`.
    fn write(
        &mut self,
        data: &[u8],
        pts_ns: Option<u64>,
        duration_ns: Option<u64>,
    ) -> anyhow::Result<()>;
    /// Completes the file.
    fn finish(self: Box<Self>) -> anyhow::Result<()>;
}

/// Ogg Opus.
pub(crate) struct OggOpus {
    writer: PacketWriter<'static, BufWriter<File>>,
    granule: u64,
    pending: Option<(Vec<u8>, u64)>,
}

const SERIAL: u32 = 0x6d72_6564;

impl OggOpus {
    pub(crate) fn create(path: &Path, channels: u8) -> anyhow::Result<OggOpus> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = PacketWriter::new(BufWriter::new(file));
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(channels);
        head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
        head.extend_from_slice(&48_000u32.to_le_bytes()); // input rate
        head.extend_from_slice(&0u16.to_le_bytes()); // output gain
        head.push(0); // mapping family
        writer.write_packet(head, SERIAL, PacketWriteEndInfo::EndPage, 0)?;
        let vendor = b"redir-record";
        let mut tags = Vec::new();
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&u32::try_from(vendor.len())?.to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes());
        writer.write_packet(tags, SERIAL, PacketWriteEndInfo::EndPage, 0)?;
        Ok(OggOpus {
            writer,
            granule: 0,
            pending: None,
        })
    }
}

impl SampleWriter for OggOpus {
    fn write(
        &mut self,
        data: &[u8],
        _pts: Option<u64>,
        duration_ns: Option<u64>,
    ) -> anyhow::Result<()> {
        // 48 kHz samples; 20 ms when the client did not say.
        let samples = duration_ns.unwrap_or(20_000_000) * 48 / 1_000_000;
        // One packet is kept back so the last can end the stream.
        if let Some((packet, granule)) = self.pending.take() {
            self.writer
                .write_packet(packet, SERIAL, PacketWriteEndInfo::NormalPacket, granule)?;
        }
        self.granule += samples;
        self.pending = Some((data.to_vec(), self.granule));
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        match self.pending.take() {
            Some((packet, granule)) => {
                self.writer
                    .write_packet(packet, SERIAL, PacketWriteEndInfo::EndStream, granule)?;
            }
            None => bail!("nothing was captured"),
        }
        self.writer.inner_mut().flush()?;
        Ok(())
    }
}

/// IVF (VP8).
pub(crate) struct Ivf {
    file: BufWriter<File>,
    frames: u32,
}

impl Ivf {
    pub(crate) fn create(path: &Path, width: u16, height: u16, fps: u32) -> anyhow::Result<Ivf> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut file = BufWriter::new(file);
        let mut header = Vec::with_capacity(32);
        header.extend_from_slice(b"DKIF");
        header.extend_from_slice(&0u16.to_le_bytes());
        header.extend_from_slice(&32u16.to_le_bytes());
        header.extend_from_slice(b"VP80");
        header.extend_from_slice(&width.to_le_bytes());
        header.extend_from_slice(&height.to_le_bytes());
        // Time base: nanoseconds / 1000 (microseconds).
        header.extend_from_slice(&1_000_000u32.to_le_bytes());
        header.extend_from_slice(&1u32.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes()); // frame count, set at the end
        header.extend_from_slice(&0u32.to_le_bytes());
        let _ = fps;
        file.write_all(&header)?;
        Ok(Ivf { file, frames: 0 })
    }
}

impl SampleWriter for Ivf {
    fn write(
        &mut self,
        data: &[u8],
        pts_ns: Option<u64>,
        _duration: Option<u64>,
    ) -> anyhow::Result<()> {
        self.file
            .write_all(&u32::try_from(data.len())?.to_le_bytes())?;
        self.file
            .write_all(&(pts_ns.unwrap_or(0) / 1000).to_le_bytes())?;
        self.file.write_all(data)?;
        self.frames += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        if self.frames == 0 {
            bail!("nothing was captured");
        }
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(24))?;
        file.write_all(&self.frames.to_le_bytes())?;
        file.flush()?;
        Ok(())
    }
}
