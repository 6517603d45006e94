//! The redirecting decoders in unmodified `playbin` and `playbin3`: the
//! daemon binary (local verify uplink: a client that decodes everything,
//! or `--uplink null`: no client), an in-process broker over vhost-user,
//! and a playbin that sets nothing but the URI and its own sinks (as an
//! application with its own sink does); the plugin is registered
//! statically, so autoplugging finds the decoders by rank.
//!
//! With a client: the client's decode is bit-exact (`verify-clip` on the
//! daemon's report), no decoder but ours is in the pipeline, and the
//! application's sink received key-colour placeholders. Without one: the
//! same pipeline decodes locally inside our decoders, with no error.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{Device, ffmpeg, init, play_to_end, verify};
use conformance_tests::scratch::Scratch;
use gstreamer as gst;
use gstreamer::prelude::*;

/// What a run did.
#[derive(Debug)]
struct Run {
    /// Factory names of the decoders in the pipeline (ours and others).
    decoders: Vec<String>,
    /// `active` of each of our decoders.
    active: Vec<String>,
    /// The video sink's last picture: its format and first pixel's bytes.
    last_picture: Option<(String, Vec<u8>)>,
}

/// Plays `clip` to EOS in a `factory` (`playbin` or `playbin3`) whose only
/// settings are the URI and the application's sinks; our decoders are
/// pointed at `socket` as they appear (an application would leave them at
/// `$MEDIAREDIR_SOCKET`).
fn play(clip: &Path, socket: &Path, factory: &str) -> Result<Run, String> {
    let video_sink = gst::ElementFactory::make("fakevideosink")
        .property("enable-last-sample", true)
        .property("sync", true)
        .build()
        .expect("fakevideosink");
    let audio_sink = gst::ElementFactory::make("fakeaudiosink")
        .property("sync", true)
        .build()
        .expect("fakeaudiosink");
    let playbin = gst::ElementFactory::make(factory)
        .property("uri", format!("file://{}", clip.display()))
        .property("video-sink", &video_sink)
        .property("audio-sink", &audio_sink)
        .build()
        .expect("make playbin");
    playbin.set_property_from_str("flags", "video+audio");
    let socket = socket.display().to_string();
    playbin
        .downcast_ref::<gst::Bin>()
        .expect("a bin")
        .connect_deep_element_added(move |_, _, element| {
            if element.find_property("socket").is_some()
                && element
                    .factory()
                    .is_some_and(|f| f.name().starts_with("mediaredir"))
            {
                element.set_property("socket", &socket);
            }
        });
    let result = play_to_end(&playbin);
    let bin = playbin.downcast_ref::<gst::Bin>().expect("a bin");
    let mut decoders = Vec::new();
    let mut active = Vec::new();
    for element in bin.iterate_recurse().into_iter().flatten() {
        let Some(f) = element.factory() else {
            continue;
        };
        let klass = f.metadata(gst::ELEMENT_METADATA_KLASS).unwrap_or_default();
        if klass.contains("Codec/Decoder") {
            decoders.push(f.name().to_string());
        }
        if f.name().starts_with("mediaredir") && element.find_property("active").is_some() {
            active.push(element.property::<String>("active"));
        }
    }
    active.sort();
    let last_picture = video_sink
        .property::<Option<gst::Sample>>("last-sample")
        .and_then(|s| {
            let format = s.caps()?.structure(0)?.get::<String>("format").ok()?;
            let map = s.buffer()?.map_readable().ok()?;
            Some((format, map.iter().take(4).copied().collect()))
        });
    playbin
        .set_state(gst::State::Null)
        .map_err(|e| format!("set to NULL: {e}"))?;
    result.map(|()| Run {
        decoders,
        active,
        last_picture,
    })
}

/// A clip as users' files are made: ffmpeg, H.264 with B-frames and AAC
/// in MP4 (an edit list for the priming), 2 s.
fn ffmpeg_h264_aac(scratch: &Scratch) -> PathBuf {
    ffmpeg(
        scratch,
        "h264aac.mp4",
        "-f lavfi -i testsrc=size=320x240:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
         -t 2 -c:v libx264 -bf 2 -pix_fmt yuv420p -c:a aac",
    )
}

/// H.264 with B-frames and AAC in Matroska (no decode times) and in
/// MPEG-TS, by ffmpeg.
fn ffmpeg_h264_aac_in(scratch: &Scratch, name: &str) -> PathBuf {
    ffmpeg(
        scratch,
        name,
        "-f lavfi -i testsrc=size=320x240:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
         -t 2 -c:v libx264 -bf 3 -pix_fmt yuv420p -c:a aac",
    )
}

/// VP9 and Opus in WebM, by ffmpeg.
fn ffmpeg_vp9_opus(scratch: &Scratch) -> PathBuf {
    ffmpeg(
        scratch,
        "vp9opus.webm",
        "-f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine=frequency=440:sample_rate=48000 \
         -t 2 -c:v libvpx-vp9 -deadline realtime -c:a libopus",
    )
}

/// Plays `clip` through a local:verify daemon in `factory`; checks that
/// only our decoders ran, both redirected, the client's decode is
/// bit-exact and the application's sink showed the key colour.
fn redirect_and_verify(scratch: &Scratch, tag: &str, clip: &Path, factory: &str) -> Run {
    let (mut device, report) = Device::start_verifying(scratch, tag);
    let started = Instant::now();
    let run = play(clip, &device.broker_socket, factory);
    eprintln!(
        "{factory} {}: played in {:?}",
        clip.display(),
        started.elapsed()
    );
    let counters = device.daemon.take().expect("daemon").stop();
    let run = run.unwrap_or_else(|e| panic!("{factory} {}: {e}", clip.display()));
    let mut decoders = run.decoders.clone();
    decoders.sort();
    assert_eq!(
        decoders,
        ["mediarediraudiodec", "mediaredirvideodec"],
        "while redirected, only our decoders are in the pipeline"
    );
    assert_eq!(run.active, ["redirect", "redirect"], "{run:?}");
    assert!(
        counters.get("payload_bytes").copied().unwrap_or(0) > 0,
        "no payload reached the daemon ({counters:?})"
    );
    verify(clip, &report, 2).unwrap_or_else(|e| panic!("{factory}: {e}"));
    let (format, pixel) = run.last_picture.clone().expect("the sink showed a picture");
    let key = match format.as_str() {
        "BGRx" | "RGBx" | "BGRA" | "RGBA" => vec![255, 0, 255, 255],
        _ => panic!("placeholder in {format}: expected a 32-bit RGB format first"),
    };
    assert_eq!(pixel, key, "the placeholder is the key colour");
    run
}

#[test]
fn playbin_plugs_the_redirecting_decoders_and_the_client_decodes_bit_exact() {
    init();
    let scratch = Scratch::new("dec-playbin");
    let clips = [
        ffmpeg_h264_aac(&scratch),
        ffmpeg_vp9_opus(&scratch),
        ffmpeg_h264_aac_in(&scratch, "h264aac.mkv"),
        ffmpeg_h264_aac_in(&scratch, "h264aac.ts"),
    ];
    for (i, clip) in clips.iter().enumerate() {
        redirect_and_verify(&scratch, &format!("pb{i}"), clip, "playbin");
    }
}

#[test]
fn playbin3_plugs_the_redirecting_decoders_too() {
    init();
    let scratch = Scratch::new("dec-playbin3");
    let clip = ffmpeg_h264_aac(&scratch);
    redirect_and_verify(&scratch, "pb3", &clip, "playbin3");
}

#[test]
fn without_a_client_the_same_pipeline_decodes_locally_without_error() {
    init();
    let scratch = Scratch::new("dec-local");
    let clip = ffmpeg_h264_aac(&scratch);
    let device = Device::start(&scratch, "null", &["--uplink", "null"]);
    device.wait_client(false);
    for (socket, what) in [
        (device.broker_socket.clone(), "no client"),
        (scratch.path("nobody.sock"), "no broker"),
    ] {
        let run = play(&clip, &socket, "playbin").unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(run.active, ["local", "local"], "{what}: {run:?}");
        // Ours, each with the system's decoder inside.
        assert!(
            run.decoders.iter().any(|d| d == "avdec_h264")
                && run
                    .decoders
                    .iter()
                    .any(|d| !d.starts_with("mediaredir") && d.contains("aac")),
            "{what}: no local decoders in {:?}",
            run.decoders
        );
        let (format, pixel) = run.last_picture.expect("a picture");
        assert!(
            !(format == "BGRx" && pixel == [255, 0, 255, 255]),
            "{what}: a placeholder, not the video"
        );
    }
}
