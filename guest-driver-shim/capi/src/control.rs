//! Capabilities, formats, presentations, streams and playback control:
//! the V4L2 `QUERYCAP`/`ENUM_FMT`/`TRY_FMT`/`S_FMT`/`STREAMON`/`S_CTRL`/
//! `S_SELECTION` part of the API.

use std::ffi::c_int;

use crate::errors::CapiError;
use crate::ffi::{Handle, input, input_slice, out, with_handle};
use crate::types::{CCaps, CCodecCap, CGeometry, CPosition, CStreamFormat, flag};

/// Reads a C stream format and its codec data.
///
/// # Safety
///
/// `format` is NULL or valid for reads, its `codec_data` NULL or valid
/// for `codec_data_len` bytes.
unsafe fn read_format(
    format: *const CStreamFormat,
) -> Result<mediaredir_proto::control::StreamFormat, CapiError> {
    // SAFETY: the caller's guarantee for `format`.
    let format = unsafe { input(format, "format") }?;
    // SAFETY: the caller's guarantee for the codec data.
    let data = unsafe { input_slice(format.codec_data, format.codec_data_len, "codec_data") }?;
    format.to_format(data)
}

/// `VIDIOC_QUERYCAP` + `VIDIOC_ENUM_FMT`.
///
/// # Safety
///
/// `m` NULL or a live handle; `caps` NULL or writable; `codecs` NULL or
/// writable for `max_codecs` entries.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_query_caps(
    m: *mut Handle,
    caps: *mut CCaps,
    codecs: *mut CCodecCap,
    max_codecs: usize,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let caps = out(caps, "caps")?;
        if codecs.is_null() && max_codecs != 0 {
            return Err(CapiError::Null("codecs"));
        }
        let got = h.redir.query_caps()?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { caps.write(CCaps::from(&got)) };
        for (i, cap) in got.codecs.iter().take(max_codecs).enumerate() {
            // SAFETY: i < max_codecs entries the caller made writable.
            let slot = unsafe { codecs.add(i) };
            // SAFETY: as above.
            unsafe { slot.write(CCodecCap::from(cap)) };
        }
        Ok(())
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// `VIDIOC_TRY_FMT`.
///
/// # Safety
///
/// `m` NULL or a live handle; `format` as in [`mediaredir_create_stream`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_try_format(
    m: *mut Handle,
    format: *const CStreamFormat,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        // SAFETY: the caller's guarantee for `format`.
        let format = unsafe { read_format(format) }?;
        Ok(h.redir.try_format(&format)?)
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// Creates a presentation; `*presentation` is its id.
///
/// # Safety
///
/// `m` NULL or a live handle; `presentation` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_create_presentation(
    m: *mut Handle,
    live: c_int,
    presentation: *mut u32,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let presentation = out(presentation, "presentation")?;
        let id = h.redir.create_presentation(flag(live))?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { presentation.write(id) };
        Ok(())
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// Destroys a presentation and its streams.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_destroy_presentation(
    m: *mut Handle,
    presentation: u32,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        Ok(h.redir.destroy_presentation(presentation)?)
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// `VIDIOC_S_FMT`: creates a stream; `*stream` is its id.
///
/// # Safety
///
/// `m` NULL or a live handle; `format` NULL or readable, its `codec_data`
/// NULL or readable for `codec_data_len` bytes; `stream` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_create_stream(
    m: *mut Handle,
    presentation: u32,
    format: *const CStreamFormat,
    stream: *mut u32,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let stream = out(stream, "stream")?;
        // SAFETY: the caller's guarantee for `format`.
        let format = unsafe { read_format(format) }?;
        let id = h.redir.create_stream(presentation, &format)?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { stream.write(id) };
        Ok(())
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// Destroys a stream and, once they are back, its buffers.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_destroy_stream(m: *mut Handle, stream: u32) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> { Ok(h.redir.destroy_stream(stream)?) };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// `VIDIOC_STREAMON`: plays a presentation.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_play(m: *mut Handle, presentation: u32) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> { Ok(h.redir.play(presentation)?) };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// Pauses a presentation.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_pause(m: *mut Handle, presentation: u32) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> { Ok(h.redir.pause(presentation)?) };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// Flushes a presentation for a seek to `position_ns`.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_seek(
    m: *mut Handle,
    presentation: u32,
    position_ns: u64,
) -> c_int {
    let body =
        |h: &mut Handle| -> Result<(), CapiError> { Ok(h.redir.seek(presentation, position_ns)?) };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// `VIDIOC_STREAMOFF`: pauses and flushes.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_stream_off(m: *mut Handle, presentation: u32) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> { Ok(h.redir.stream_off(presentation)?) };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// Playback rate (1.0 normal).
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_set_rate(
    m: *mut Handle,
    presentation: u32,
    rate: f64,
) -> c_int {
    let body =
        |h: &mut Handle| -> Result<(), CapiError> { Ok(h.redir.set_rate(presentation, rate)?) };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// `VIDIOC_S_CTRL` volume and mute of a stream.
///
/// # Safety
///
/// `m` NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_set_volume(
    m: *mut Handle,
    stream: u32,
    volume: f64,
    mute: c_int,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        Ok(h.redir.set_volume(stream, volume, flag(mute))?)
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// `VIDIOC_S_SELECTION`: overlay geometry of a presentation.
///
/// # Safety
///
/// `m` NULL or a live handle; `geometry` NULL or readable, its `clip`
/// NULL or readable for `num_clip` rectangles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_set_geometry(
    m: *mut Handle,
    presentation: u32,
    geometry: *const CGeometry,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        // SAFETY: the caller's guarantee for `geometry`.
        let geometry = unsafe { input(geometry, "geometry") }?;
        // SAFETY: the caller's guarantee for the clip array.
        let clip = unsafe { input_slice(geometry.clip, geometry.num_clip, "clip") }?;
        let geometry = geometry.to_geometry(clip)?;
        Ok(h.redir.set_geometry(presentation, geometry)?)
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}

/// Where playback of a presentation is.
///
/// # Safety
///
/// `m` NULL or a live handle; `position` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mediaredir_query_position(
    m: *mut Handle,
    presentation: u32,
    position: *mut CPosition,
) -> c_int {
    let body = |h: &mut Handle| -> Result<(), CapiError> {
        let position = out(position, "position")?;
        let got = h.redir.query_position(presentation)?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { position.write(CPosition::from(&got)) };
        Ok(())
    };
    // SAFETY: the caller guarantees NULL or a live handle.
    unsafe { with_handle(m, body) }
}
