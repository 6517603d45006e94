//! Control-request types turned into the wire messages that tell the
//! client the same thing (on the request, and again when a client
//! reconnects and the model replays its state).

use mediaredir_proto::control::Geometry;
use mediaredir_proto::wire;

pub(super) fn create_presentation_msg(id: u32, live: bool) -> wire::Message {
    let flags = if live {
        wire::PresentationFlags::LIVE
    } else {
        wire::PresentationFlags::empty()
    };
    wire::Message::CreatePresentation { id, flags }
}

pub(super) fn geometry_msg(presentation: u32, g: &Geometry) -> wire::SetGeometry {
    wire::SetGeometry {
        presentation,
        display: g.display_id,
        visible: g.visible,
        color_key: g.color_key,
        z: g.z,
        dest: g.dest,
        source: g.source,
        clip: g.clip.clone(),
    }
}
