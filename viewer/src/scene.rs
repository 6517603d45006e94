//! What the media engine has told the viewer: each presentation's latest
//! picture and geometry. The engine writes it from its own threads (the
//! [`VideoOutput`] calls); the windows read it when they draw, on GTK's
//! thread, and redraw when its generation has moved (a tick callback, so no
//! GTK call is ever made off GTK's thread).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use client_engine::wire::SetGeometry;
use client_engine::{VideoFrame, VideoOutput};

/// One presentation as the viewer draws it.
#[derive(Debug, Default, Clone)]
pub struct Presentation {
    /// The latest geometry; until the first one the video is not shown
    /// (spec 7.14).
    pub geometry: Option<SetGeometry>,
    /// The latest picture due, and its number (counts pictures received).
    pub frame: Option<(u64, Arc<VideoFrame>)>,
    /// The size the window last drew the whole picture at, which the
    /// engine scales later pictures to ([`VideoOutput::wanted_size`]).
    pub shown_at: Option<(u32, u32)>,
}

/// Every presentation by id, and a generation that moves on each change.
#[derive(Debug, Default)]
pub struct Scene {
    presentations: Mutex<BTreeMap<u32, Presentation>>,
    generation: AtomicU64,
    frames: AtomicU64,
}

impl Scene {
    /// A new, empty scene.
    pub fn new() -> Arc<Scene> {
        Arc::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u32, Presentation>> {
        self.presentations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Moves on every change: a window redraws when it differs from what
    /// it drew last.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The presentations on guest display `display`, bottom to top: by
    /// `z`, then by id (spec 7.14: higher `z` on top).
    pub fn on_display(&self, display: u32) -> Vec<(u32, Presentation)> {
        let mut shown: Vec<(u32, Presentation)> = self
            .lock()
            .iter()
            .filter(|(_, p)| p.geometry.as_ref().is_some_and(|g| g.display == display))
            .map(|(id, p)| (*id, p.clone()))
            .collect();
        shown.sort_by_key(|(id, p)| (p.geometry.as_ref().map_or(0, |g| g.z), *id));
        shown
    }

    /// Records the size presentation `id`'s whole picture is drawn at, for
    /// the engine to scale to. Not a change of what is drawn: the
    /// generation stays.
    pub fn show_at(&self, id: u32, size: (u32, u32)) {
        if let Some(p) = self.lock().get_mut(&id) {
            p.shown_at = Some(size);
        }
    }

    /// Forgets every presentation (the media connection ended).
    pub fn clear(&self) {
        self.lock().clear();
        self.changed();
    }
}

impl VideoOutput for Scene {
    fn frame(&self, frame: VideoFrame) {
        let n = self.frames.fetch_add(1, Ordering::AcqRel) + 1;
        let id = frame.presentation;
        self.lock().entry(id).or_default().frame = Some((n, Arc::new(frame)));
        self.changed();
    }

    fn geometry(&self, presentation: u32, geometry: &SetGeometry) {
        self.lock().entry(presentation).or_default().geometry = Some(geometry.clone());
        self.changed();
    }

    fn closed(&self, presentation: u32) {
        self.lock().remove(&presentation);
        self.changed();
    }

    fn wanted_size(&self, presentation: u32) -> Option<(u32, u32)> {
        self.lock().get(&presentation).and_then(|p| p.shown_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use client_engine::wire::Rect;

    fn geometry(display: u32, z: i32) -> SetGeometry {
        SetGeometry {
            presentation: 0,
            display,
            visible: true,
            color_key: false,
            z,
            dest: Rect::new(0, 0, 10, 10),
            source: Rect::default(),
            clip: Vec::new(),
        }
    }

    #[test]
    fn presentations_stack_by_z_then_id_per_display() {
        let scene = Scene::new();
        let g0 = scene.generation();
        scene.geometry(3, &geometry(0, 5));
        scene.geometry(1, &geometry(0, 5));
        scene.geometry(2, &geometry(0, -1));
        scene.geometry(4, &geometry(1, 9));
        assert!(scene.generation() > g0);
        let ids: Vec<u32> = scene.on_display(0).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, vec![2, 1, 3]);
        assert_eq!(scene.on_display(1).len(), 1);
        let g1 = scene.generation();
        scene.show_at(3, (320, 180));
        assert_eq!(scene.wanted_size(3), Some((320, 180)));
        assert_eq!(scene.wanted_size(1), None);
        assert_eq!(scene.generation(), g1, "no redraw for it");
        scene.closed(1);
        assert_eq!(scene.on_display(0).len(), 2);
        scene.clear();
        assert!(scene.on_display(0).is_empty());
    }
}
