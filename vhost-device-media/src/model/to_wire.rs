//! Control-request types turned into the wire messages that tell the
//! client the same thing (on the request, and again when a client
//! reconnects and the model replays its state).

use mediaredir_proto::control::{Geometry, Rect, StreamFormat};
use mediaredir_proto::wire;

pub(super) fn create_presentation_msg(id: u32, live: bool) -> wire::Message {
    let flags = if live {
        wire::PresentationFlags::LIVE
    } else {
        wire::PresentationFlags::empty()
    };
    wire::Message::CreatePresentation { id, flags }
}

fn rect_msg(r: &Rect) -> wire::Rect {
    wire::Rect {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
    }
}

pub(super) fn geometry_msg(presentation: u32, g: &Geometry) -> wire::SetGeometry {
    wire::SetGeometry {
        presentation,
        display: g.display_id,
        visible: g.visible,
        z: g.z,
        dest: rect_msg(&g.dest),
        source: rect_msg(&g.source),
        clip: g.clip.iter().map(rect_msg).collect(),
    }
}

pub(super) fn create_stream_msg(
    id: u32,
    presentation: u32,
    f: &StreamFormat,
) -> wire::CreateStream {
    wire::CreateStream {
        id,
        presentation,
        direction: f.direction,
        codec: f.codec,
        width: f.width,
        height: f.height,
        fps_num: f.fps_num,
        fps_den: f.fps_den,
        sample_rate: f.sample_rate,
        channels: f.channels,
        bitrate: f.bitrate,
        source: f.source_id,
        codec_data: f.codec_data.clone(),
    }
}
