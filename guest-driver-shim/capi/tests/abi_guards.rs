//! The exports as C sees them, called through the Rust symbols: NULL
//! pointers and bad arguments give `-EINVAL` (never a crash), refusals
//! give the protocol status, non-blocking and timed waits give `-EAGAIN`
//! and `-ETIMEDOUT`, and each failure leaves a message in
//! `mediaredir_last_error`.

mod common;

use std::ffi::{CStr, c_int};
use std::ptr::{self, NonNull};

use conformance_tests::daemon::DaemonProcess;
use conformance_tests::rig::daemon_binary;
use conformance_tests::scratch::Scratch;
use mediaredir::Handle;
use mediaredir::buffers::*;
use mediaredir::control::*;
use mediaredir::events::*;
use mediaredir::handle::*;
use mediaredir::types::{CBufferInfo, CCaps, CEvent, CGeometry, CPosition, CRect, CStreamFormat};

const EINVAL: c_int = -libc::EINVAL;

fn vp8_format() -> CStreamFormat {
    CStreamFormat {
        codec: 0x003,
        direction: 0,
        txq: 0,
        source_id: 0,
        width: 320,
        height: 240,
        fps_num: 30,
        fps_den: 1,
        sample_rate: 0,
        channels: 0,
        bitrate: 0,
        reserved: 0,
        codec_data: ptr::null(),
        codec_data_len: 0,
    }
}

fn last_error(m: Option<&Handle>) -> String {
    let message = mediaredir_last_error(m);
    // SAFETY: the message is NUL-terminated and valid until the next call
    // on `m`.
    unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned()
}

// Safe wrappers of the `unsafe` exports this test calls: each passes only
// pointers the export's contract allows.

/// `mediaredir_open` of `path`.
fn open(path: &CStr, out: Option<&mut Option<Box<Handle>>>) -> c_int {
    // SAFETY: `path` is a NUL-terminated C string; the out slot is NULL or
    // writable.
    unsafe { mediaredir_open(path.as_ptr(), out) }
}

/// `mediaredir_query_caps` with NULL `codecs`.
fn query_caps(m: Option<&mut Handle>, caps: Option<&mut CCaps>, max_codecs: usize) -> c_int {
    // SAFETY: `codecs` is NULL, which the contract allows with any count.
    unsafe { mediaredir_query_caps(m, caps, ptr::null_mut(), max_codecs) }
}

/// `mediaredir_try_format` of a format without codec data.
fn try_format(m: Option<&mut Handle>, format: &CStreamFormat) -> c_int {
    assert!(
        format.codec_data.is_null(),
        "test formats have no codec data"
    );
    // SAFETY: `codec_data` is NULL (checked), which the contract allows
    // with any length.
    unsafe { mediaredir_try_format(m, Some(format)) }
}

/// `mediaredir_create_stream` of a format without codec data.
fn create_stream(
    m: Option<&mut Handle>,
    presentation: u32,
    format: &CStreamFormat,
    stream: &mut u32,
) -> c_int {
    assert!(
        format.codec_data.is_null(),
        "test formats have no codec data"
    );
    // SAFETY: `codec_data` is NULL (checked), which the contract allows
    // with any length.
    unsafe { mediaredir_create_stream(m, presentation, Some(format), Some(stream)) }
}

/// `mediaredir_set_geometry` of `geometry` with `clip` as its clip array.
fn set_geometry(
    m: Option<&mut Handle>,
    presentation: u32,
    geometry: CGeometry,
    clip: &[CRect],
) -> c_int {
    let geometry = CGeometry {
        clip: clip.as_ptr(),
        num_clip: clip.len(),
        ..geometry
    };
    // SAFETY: `clip` points to `num_clip` readable rectangles.
    unsafe { mediaredir_set_geometry(m, presentation, Some(&geometry)) }
}

/// `mediaredir_strerror` of `code`.
fn strerror(code: c_int) -> &'static CStr {
    // SAFETY: strerror returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(mediaredir_strerror(code)) }
}

#[test]
fn null_handles_and_outputs_are_rejected_without_a_broker() {
    let scratch = Scratch::new("capi-null");
    let nowhere = scratch.path("nobody.sock");
    let path = std::ffi::CString::new(nowhere.as_os_str().as_encoded_bytes()).expect("no NUL");

    assert_eq!(open(&path, None), EINVAL);
    // What C may leave in the slot: a stale pointer, never read or freed.
    let mut stale: *mut Handle = NonNull::dangling().as_ptr();
    // SAFETY: the slot is a valid, aligned pointer-sized place, as C's
    // `struct mediaredir *out;` is; `Option<Box<Handle>>` has the layout of
    // a nullable pointer, and mediaredir_open overwrites the slot without
    // reading it; the stale value is never used as a Box.
    let out = unsafe { &mut *(&raw mut stale).cast::<Option<Box<Handle>>>() };
    let r = open(&path, Some(out));
    assert_eq!(r, -libc::ENOENT);
    assert!(stale.is_null(), "out not reset on failure");

    let mut id = 0u32;
    let mut caps = CCaps::default();
    let mut event = CEvent::default();
    {
        assert_eq!(mediaredir_fd(None), EINVAL);
        assert_eq!(mediaredir_set_nonblocking(None, 1), EINVAL);
        assert_eq!(query_caps(None, Some(&mut caps), 0), EINVAL);
        assert_eq!(
            mediaredir_create_presentation(None, 0, Some(&mut id)),
            EINVAL
        );
        assert_eq!(mediaredir_play(None, 1), EINVAL);
        assert_eq!(mediaredir_dequeue_event(None, Some(&mut event)), EINVAL);
        assert_eq!(mediaredir_queue_buffer(None, 1, 0, None), EINVAL);
        mediaredir_close(None);
        assert_eq!(last_error(None), "invalid handle");
    }
    for code in [
        0,
        1,
        12,
        13,
        -libc::EINVAL,
        -libc::EAGAIN,
        -9999,
        c_int::MIN,
    ] {
        let message = strerror(code);
        assert!(!message.is_empty(), "no message for {code}");
    }
}

#[test]
fn a_live_handle_reports_each_kind_of_failure() {
    let scratch = Scratch::new("capi-guards");
    let vhost = scratch.path("vhost.sock");
    let socket = scratch.path("broker.sock");
    let daemon = DaemonProcess::start(&daemon_binary(), &vhost, &["--uplink", "local:verify"]);
    let broker = common::Broker::start(&vhost, &socket);
    let path = std::ffi::CString::new(socket.as_os_str().as_encoded_bytes()).expect("no NUL");
    let mut m: Option<Box<Handle>> = None;
    assert_eq!(open(&path, Some(&mut m)), 0);
    assert!(m.is_some());

    {
        assert!(mediaredir_fd(m.as_deref()) >= 0);
        let mut caps = CCaps::default();
        assert_eq!(query_caps(m.as_deref_mut(), None, 0), EINVAL);
        assert!(
            last_error(m.as_deref()).contains("caps is NULL"),
            "{}",
            last_error(m.as_deref())
        );
        assert_eq!(query_caps(m.as_deref_mut(), Some(&mut caps), 4), EINVAL);
        assert_eq!(query_caps(m.as_deref_mut(), Some(&mut caps), 0), 0);
        assert_eq!(
            last_error(m.as_deref()),
            "codecs is NULL",
            "kept until the next failure"
        );

        let mut format = vp8_format();
        format.codec = 0x999;
        assert_eq!(try_format(m.as_deref_mut(), &format), EINVAL);
        assert!(last_error(m.as_deref()).contains("unknown codec"));
        let mut format = vp8_format();
        format.codec_data_len = 4;
        assert_eq!(
            try_format(m.as_deref_mut(), &format),
            EINVAL,
            "NULL codec data"
        );

        // Refusals by the device are positive statuses.
        let mut position = CPosition::default();
        assert_eq!(
            mediaredir_query_position(m.as_deref_mut(), 999, Some(&mut position)),
            4,
            "NO_ENTITY"
        );
        assert_eq!(mediaredir_set_rate(m.as_deref_mut(), 1, f64::NAN), EINVAL);

        let mut presentation = 0;
        let mut stream = 0;
        assert_eq!(
            mediaredir_create_presentation(m.as_deref_mut(), 0, Some(&mut presentation)),
            0
        );
        assert_eq!(
            create_stream(m.as_deref_mut(), presentation, &vp8_format(), &mut stream),
            0
        );
        let clip = [CRect::default(); 17];
        let geometry = CGeometry {
            display_id: 0,
            visible: 1,
            z: 0,
            color_key: 0,
            dest: CRect {
                x: 0,
                y: 0,
                width: 320,
                height: 240,
            },
            source: CRect::default(),
            clip: ptr::null(),
            num_clip: 0,
        };
        assert_eq!(
            set_geometry(m.as_deref_mut(), presentation, geometry, &clip),
            EINVAL
        );

        // Buffers: none yet, then two; indices the caller does not hold.
        let (mut data, mut size) = (ptr::null_mut(), 0usize);
        let mut buffer = |m: Option<&mut Handle>, index| {
            mediaredir_buffer(m, stream, index, Some(&mut data), Some(&mut size))
        };
        assert_eq!(buffer(m.as_deref_mut(), 0), EINVAL);
        let (mut index, mut status) = (0u32, 0u32);
        assert_eq!(
            mediaredir_dequeue_buffer(
                m.as_deref_mut(),
                stream,
                Some(&mut index),
                Some(&mut status)
            ),
            EINVAL
        );
        let (mut count, mut slot) = (0u32, 0usize);
        assert_eq!(
            mediaredir_request_buffers(
                m.as_deref_mut(),
                stream,
                2,
                1000,
                Some(&mut count),
                Some(&mut slot)
            ),
            0
        );
        assert_eq!((count, slot), (2, 1024));
        assert_eq!(buffer(m.as_deref_mut(), 2), EINVAL);
        assert_eq!(buffer(m.as_deref_mut(), 1), 0);
        assert!(!data.is_null() && size == 1024);
        let too_big = CBufferInfo {
            bytes_used: 1025,
            ..CBufferInfo::default()
        };
        assert_eq!(
            mediaredir_queue_buffer(m.as_deref_mut(), stream, 1, Some(&too_big)),
            EINVAL
        );

        // Non-blocking: once the events are drained, -EAGAIN; timed: -ETIMEDOUT.
        assert_eq!(mediaredir_set_nonblocking(m.as_deref_mut(), 1), 0);
        let mut event = CEvent::default();
        // Events may still arrive (client state, QoS) while the test runs:
        // each call either returns one (0) or the documented error, and
        // the error comes once the queue is empty.
        let mut drained = 0;
        let last = loop {
            let r = mediaredir_dequeue_event(m.as_deref_mut(), Some(&mut event));
            if r != 0 {
                break r;
            }
            drained += 1;
            assert!(drained < 100, "endless events");
        };
        assert_eq!(last, -libc::EAGAIN);
        let last = loop {
            let r = mediaredir_wait_event(m.as_deref_mut(), 10, Some(&mut event));
            if r != 0 {
                break r;
            }
            drained += 1;
            assert!(drained < 100, "endless events");
        };
        assert_eq!(last, -libc::ETIMEDOUT);

        assert_eq!(
            mediaredir_destroy_presentation(m.as_deref_mut(), presentation),
            0
        );
        assert_eq!(
            mediaredir_destroy_presentation(m.as_deref_mut(), presentation),
            4,
            "NO_ENTITY"
        );
        mediaredir_close(m);
    }
    drop(broker);
    daemon.stop();
}
