//! Capabilities, formats, presentations, streams and playback control:
//! the V4L2 `QUERYCAP`/`ENUM_FMT`/`TRY_FMT`/`S_FMT`/`STREAMON`/`S_CTRL`/
//! `S_SELECTION` part of the API.

use std::ffi::c_int;

use crate::errors::CapiError;
use crate::ffi::{Handle, input_slice, output_slice, required, with_handle};
use crate::types::{CCaps, CCodecCap, CGeometry, CPosition, CStreamFormat, flag};

/// Reads a C stream format and its codec data (the header's contract:
/// `codec_data` NULL or readable for `codec_data_len` bytes).
/// # Safety
///
/// `format`'s `codec_data` is NULL or readable for `codec_data_len` bytes.
unsafe fn read_format(
    format: Option<&CStreamFormat>,
) -> Result<mediaredir_proto::control::StreamFormat, CapiError> {
    let format = required(format, "format")?;
    // SAFETY: the caller guarantees `codec_data` as `input_slice` needs it.
    let data = unsafe { input_slice(format.codec_data, format.codec_data_len, "codec_data") }?;
    format.to_format(data)
}

/// The device and what the connected client decodes. V4L2:
/// VIDIOC_QUERYCAP + VIDIOC_ENUM_FMT.
///
/// Fills *caps; writes min(caps->num_codecs, max_codecs) entries to codecs
/// (which may be NULL when max_codecs is 0). Without a client,
/// client_connected and num_codecs are 0 (not an error): poll this or wait
/// for MEDIAREDIR_EVENT_CLIENT_CONNECTED.
///
/// # Safety
///
/// `m` NULL or a live handle; `caps` NULL or writable; `codecs` NULL or
/// writable for `max_codecs` entries.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_query_caps(
    m: Option<&mut Handle>,
    caps: Option<&mut CCaps>,
    codecs: *mut CCodecCap,
    max_codecs: usize,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let caps = required(caps, "caps")?;
        // SAFETY: this export's contract: `codecs` writable for `max_codecs` entries.
        let codecs = unsafe { output_slice(codecs, max_codecs, "codecs") }?;
        let got = h.redir.query_caps()?;
        *caps = CCaps::from(&got);
        for (slot, cap) in codecs.iter_mut().zip(&got.codecs) {
            slot.write(CCodecCap::from(cap));
        }
        Ok(())
    };
    with_handle(m, body)
}

/// Whether a stream of *format would be accepted: 0, or
/// MEDIAREDIR_STATUS_UNSUPPORTED (the client cannot decode it),
/// MEDIAREDIR_STATUS_NO_CLIENT, MEDIAREDIR_STATUS_INVALID. -EINVAL for an
/// unknown codec or direction. V4L2: VIDIOC_TRY_FMT.
///
/// # Safety
///
/// `m` NULL or a live handle; `format` as in [`mediaredir_create_stream`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_try_format(
    m: Option<&mut Handle>,
    format: Option<&CStreamFormat>,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        // SAFETY: this export's contract: `codec_data` readable for its length.
        let format = unsafe { read_format(format) }?;
        Ok(h.redir.try_format(&format)?)
    };
    with_handle(m, body)
}

/// Creates a presentation: one clock for its streams (audio and video of
/// one file). live != 0: a live source, no preroll. *presentation is its
/// id. No V4L2 equivalent (a media-controller pipeline).
///
/// # Safety
///
/// `m` NULL or a live handle; `presentation` NULL or writable.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_create_presentation(
    m: Option<&mut Handle>,
    live: c_int,
    presentation: Option<&mut u32>,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let presentation = required(presentation, "presentation")?;
        let id = h.redir.create_presentation(flag(live))?;
        *presentation = id;
        Ok(())
    };
    with_handle(m, body)
}

/// Destroys a presentation and its streams; their queued buffers complete
/// with MEDIAREDIR_STATUS_CANCELLED and can still be dequeued.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_destroy_presentation(
    m: Option<&mut Handle>,
    presentation: u32,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        Ok(h.redir.destroy_presentation(presentation)?)
    };
    with_handle(m, body)
}

/// Creates a stream of *format in a presentation; *stream is its id.
/// format->codec_data is copied. V4L2: VIDIOC_S_FMT.
///
/// # Safety
///
/// `m` NULL or a live handle; `format` NULL or readable, its `codec_data`
/// NULL or readable for `codec_data_len` bytes; `stream` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_create_stream(
    m: Option<&mut Handle>,
    presentation: u32,
    format: Option<&CStreamFormat>,
    stream: Option<&mut u32>,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let stream = required(stream, "stream")?;
        // SAFETY: this export's contract: `codec_data` readable for its length.
        let format = unsafe { read_format(format) }?;
        let id = h.redir.create_stream(presentation, &format)?;
        *stream = id;
        Ok(())
    };
    with_handle(m, body)
}

/// Destroys a stream; waits until its queued buffers come back
/// (cancelled), then frees them.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_destroy_stream(m: Option<&mut Handle>, stream: u32) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> { Ok(h.redir.destroy_stream(stream)?) };
    with_handle(m, body)
}

/// Plays a presentation. V4L2: VIDIOC_STREAMON.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_play(m: Option<&mut Handle>, presentation: u32) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> { Ok(h.redir.play(presentation)?) };
    with_handle(m, body)
}

/// Pauses a presentation (buffers stay queued). V4L2: VIDIOC_DECODER_CMD
/// (V4L2_DEC_CMD_PAUSE).
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_pause(m: Option<&mut Handle>, presentation: u32) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> { Ok(h.redir.pause(presentation)?) };
    with_handle(m, body)
}

/// Flushes a presentation for a seek: queued buffers come back
/// MEDIAREDIR_STATUS_CANCELLED; the next buffers start at position_ns.
/// V4L2: VIDIOC_STREAMOFF + VIDIOC_STREAMON.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_seek(
    m: Option<&mut Handle>,
    presentation: u32,
    position_ns: u64,
) -> c_int {
    let body =
        |h: &mut Handle| -> Result<(), CapiError> { Ok(h.redir.seek(presentation, position_ns)?) };
    with_handle(m, body)
}

/// Pauses and flushes (seek to 0). V4L2: VIDIOC_STREAMOFF.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_stream_off(m: Option<&mut Handle>, presentation: u32) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> { Ok(h.redir.stream_off(presentation)?) };
    with_handle(m, body)
}

/// Playback rate, 1.0 normal (0.125 .. 8 accepted by the device; -EINVAL
/// when not finite or not positive). No V4L2 equivalent.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_set_rate(
    m: Option<&mut Handle>,
    presentation: u32,
    rate: f64,
) -> c_int {
    let body =
        |h: &mut Handle| -> Result<(), CapiError> { Ok(h.redir.set_rate(presentation, rate)?) };
    with_handle(m, body)
}

/// Volume of an audio stream (1.0: unity gain, at most 4.0) and mute.
/// V4L2: VIDIOC_S_CTRL (V4L2_CID_AUDIO_VOLUME, V4L2_CID_AUDIO_MUTE).
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_set_volume(
    m: Option<&mut Handle>,
    stream: u32,
    volume: f64,
    mute: c_int,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        Ok(h.redir.set_volume(stream, volume, flag(mute))?)
    };
    with_handle(m, body)
}

/// Where and whether the client shows a presentation's video; the
/// clip array is copied. V4L2: VIDIOC_S_SELECTION.
///
/// # Safety
///
/// `m` NULL or a live handle; `geometry` NULL or readable, its `clip`
/// NULL or readable for `num_clip` rectangles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_set_geometry(
    m: Option<&mut Handle>,
    presentation: u32,
    geometry: Option<&CGeometry>,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let geometry = required(geometry, "geometry")?;
        // SAFETY: this export's contract: `clip` readable for `num_clip` rectangles.
        let clip = unsafe { input_slice(geometry.clip, geometry.num_clip, "clip") }?;
        let geometry = geometry.to_geometry(clip)?;
        Ok(h.redir.set_geometry(presentation, geometry)?)
    };
    with_handle(m, body)
}

/// Where playback of a presentation is. V4L2: VIDIOC_G_CTRL-style
/// query (no exact equivalent).
///
/// # Safety
///
/// `m` NULL or a live handle; `position` NULL or writable.
#[unsafe(no_mangle)]
pub extern "C" fn mediaredir_query_position(
    m: Option<&mut Handle>,
    presentation: u32,
    position: Option<&mut CPosition>,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let position = required(position, "position")?;
        let got = h.redir.query_position(presentation)?;
        *position = CPosition::from(&got);
        Ok(())
    };
    with_handle(m, body)
}
