//! Decoded video for an integrator that draws it itself: the viewer
//! composites each presentation's pictures into the guest's desktop, so the
//! engine hands it the pictures and the geometry instead of rendering them.
//!
//! The interface is plain data (a picture is BGRx pixels with its size,
//! stride and timestamp; the geometry is the wire's `SetGeometry`), so that
//! the engine can later run in a sandboxed process of its own and hand the
//! same pictures over shared memory without the viewer changing.
//!
//! A picture reaches [`VideoOutput::frame`] when the presentation's clock
//! says it is due (the chain ends in an `appsink` with `sync=true`), from
//! that stream's GStreamer streaming thread: the receiver keeps the latest
//! picture and returns at once.
//!
//! The integrator says at what size it shows each presentation's pictures
//! ([`VideoOutput::wanted_size`]); the chain scales them to it in the
//! decoder's own format and converts to BGRx in the same pass
//! (`videoconvertscale`), so that a 1080p stream shown in a 720-pixel
//! window is converted, handed over and drawn at 720 pixels, not at 1080p.

use std::sync::{Arc, Mutex, PoisonError};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use mediaredir_proto::wire::SetGeometry;

use crate::EngineError;

/// A decoded picture in BGRx (B, G, R, unused byte per pixel), the
/// source rectangle not yet applied.
pub struct VideoFrame {
    /// The presentation it belongs to.
    pub presentation: u32,
    /// The stream it comes from.
    pub stream: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes from one row to the next.
    pub stride: usize,
    /// Presentation timestamp (ns), if the decoder gave one.
    pub pts_ns: Option<u64>,
    /// The stream's own picture size, in which the guest gives the
    /// geometry's `source` rectangle; differs from (`width`, `height`)
    /// when the engine scaled the picture to [`VideoOutput::wanted_size`].
    pub stream_size: (u32, u32),
    pixels: gst::MappedBuffer<gst::buffer::Readable>,
}

impl VideoFrame {
    /// A picture of `width` x `height` BGRx pixels in rows of `stride`
    /// bytes, from memory the caller hands over (a picture from another
    /// process, a test's pattern). `None` when the bytes are too few.
    pub fn from_bgrx(
        presentation: u32,
        stream: u32,
        (width, height, stride): (u32, u32, usize),
        pts_ns: Option<u64>,
        bytes: Vec<u8>,
    ) -> Option<VideoFrame> {
        if !rows_fit((width, height, stride), bytes.len()) {
            return None;
        }
        let pixels = gst::Buffer::from_mut_slice(bytes)
            .into_mapped_buffer_readable()
            .ok()?;
        Some(VideoFrame {
            presentation,
            stream,
            width,
            height,
            stride,
            pts_ns,
            stream_size: (width, height),
            pixels,
        })
    }

    /// The pixels: `height` rows of `stride` bytes (the last row may end
    /// after `4 * width` bytes).
    pub fn pixels(&self) -> &[u8] {
        self.pixels.as_slice()
    }

    /// The BGRx value of the pixel at (`x`, `y`), if inside the picture.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = y as usize * self.stride + x as usize * 4;
        self.pixels().get(at..at + 4)?.try_into().ok()
    }
}

impl std::fmt::Debug for VideoFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoFrame")
            .field("presentation", &self.presentation)
            .field("stream", &self.stream)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("pts_ns", &self.pts_ns)
            .field("stream_size", &self.stream_size)
            .finish_non_exhaustive()
    }
}

/// Receives decoded video and each presentation's geometry. Called from
/// GStreamer streaming threads and the engine's caller: cheap, never calls
/// back into the engine.
pub trait VideoOutput: Send + Sync {
    /// A picture is due now.
    fn frame(&self, frame: VideoFrame);
    /// The guest set the presentation's geometry (spec 7.8).
    fn geometry(&self, presentation: u32, geometry: &SetGeometry);
    /// The presentation is gone: forget its pictures and geometry.
    fn closed(&self, presentation: u32);
    /// The size at which the integrator shows the presentation's whole
    /// picture, if it knows it: later pictures come scaled to it (asked
    /// once per picture, from the streaming thread). `None`: the stream's
    /// own size.
    fn wanted_size(&self, presentation: u32) -> Option<(u32, u32)> {
        let _ = presentation;
        None
    }
}

/// The integrator's [`VideoOutput`], as the engine configuration holds it.
#[derive(Clone)]
pub struct VideoOutputHandle(pub Arc<dyn VideoOutput>);

impl std::fmt::Debug for VideoOutputHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VideoOutputHandle")
    }
}

/// The end of a video chain that hands pictures to `output`: a converter
/// that also scales, a BGRx capsfilter that says the size `output` wants,
/// and an `appsink` on the clock.
pub(crate) fn tail(
    output: VideoOutputHandle,
    presentation: u32,
    stream: u32,
) -> Result<Vec<gst::Element>, EngineError> {
    let convert = gst::ElementFactory::make("videoconvertscale")
        // The integrator's size is the picture's whole size: stretched to
        // it, never letterboxed inside it.
        .property("add-borders", false)
        .build()?;
    let stream_size = Arc::new(Mutex::new(None));
    watch_size(&convert, stream_size.clone());
    let filter = gst::ElementFactory::make("capsfilter")
        .property("caps", bgrx(None))
        .build()?;
    let sink = gst_app::AppSink::builder()
        .name(format!("frames-{stream}"))
        .caps(&bgrx(None))
        .sync(true)
        .qos(true)
        .max_buffers(2)
        .build();
    let resize = filter.clone();
    let mut asked = None;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let wanted = output.0.wanted_size(presentation);
                if wanted != asked {
                    // Takes effect from a later picture: the converter
                    // renegotiates on its next input.
                    resize.set_property("caps", bgrx(wanted));
                    asked = wanted;
                }
                let size = *stream_size.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(frame) = frame_of(&sample, presentation, stream, size) {
                    output.0.frame(frame);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .new_preroll(move |_| Ok(gst::FlowSuccess::Ok))
            .build(),
    );
    Ok(vec![convert, filter, sink.upcast()])
}

/// BGRx caps, of `size` when given.
fn bgrx(size: Option<(u32, u32)>) -> gst::Caps {
    let caps = gst::Caps::builder("video/x-raw").field("format", "BGRx");
    match size.and_then(|(w, h)| Some((i32::try_from(w).ok()?, i32::try_from(h).ok()?))) {
        Some((w, h)) if w > 0 && h > 0 => caps.field("width", w).field("height", h).build(),
        _ => caps.build(),
    }
}

/// Keeps `size` at the picture size `convert` takes in (the stream's own),
/// from each caps event on its sink pad.
fn watch_size(convert: &gst::Element, size: Arc<Mutex<Option<(u32, u32)>>>) {
    let Some(pad) = convert.static_pad("sink") else {
        return;
    };
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(ref e)) = info.data
            && let gst::EventView::Caps(c) = e.view()
            && let Ok(v) = gst_video::VideoInfo::from_caps(c.caps())
        {
            *size.lock().unwrap_or_else(PoisonError::into_inner) = Some((v.width(), v.height()));
        }
        gst::PadProbeReturn::Ok
    });
}

/// Whether `len` bytes hold `height` rows of `width` BGRx pixels, `stride`
/// bytes apart (the last row needs only its pixels).
fn rows_fit((width, height, stride): (u32, u32, usize), len: usize) -> bool {
    let row = width as usize * 4;
    let needed = (height as usize)
        .checked_sub(1)
        .and_then(|rows| stride.checked_mul(rows))
        .and_then(|n| n.checked_add(row));
    stride >= row && needed.is_some_and(|n| len >= n)
}

fn frame_of(
    sample: &gst::Sample,
    presentation: u32,
    stream: u32,
    stream_size: Option<(u32, u32)>,
) -> Option<VideoFrame> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let buffer = sample.buffer_owned()?;
    let pts_ns = buffer.pts().map(gst::ClockTime::nseconds);
    let stride = usize::try_from(*info.stride().first()?).ok()?;
    let pixels = buffer.into_mapped_buffer_readable().ok()?;
    if info.offset().first() != Some(&0)
        || !rows_fit((info.width(), info.height(), stride), pixels.len())
    {
        return None;
    }
    Some(VideoFrame {
        presentation,
        stream,
        width: info.width(),
        height: info.height(),
        stride,
        pts_ns,
        stream_size: stream_size.unwrap_or((info.width(), info.height())),
        pixels,
    })
}
