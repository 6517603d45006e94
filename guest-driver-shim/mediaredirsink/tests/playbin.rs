//! The sinks in a real `playbin`: the daemon binary (local verify uplink:
//! a client that decodes everything, or `--uplink null`: no client), an
//! in-process broker over vhost-user, and playbin with our elements as
//! audio and video sinks (registered statically from the rlib).
//!
//! With a client, playbin stops autoplugging at the demuxer (no decoder in
//! the pipeline) and the client's decode, reported by the daemon, is
//! bit-exact with decoding the file locally (`verify-clip`). Without a
//! client, `mediaredirsink` offers no caps, and the
//! `mediaredirvideosink`/`mediarediraudiosink` bins make playbin decode
//! locally into their fallback sinks.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{AUDIO, Device, VIDEO, generate, init, play_to_end, verify};
use conformance_tests::scratch::Scratch;
use gstreamer as gst;
use gstreamer::prelude::*;

/// (file name, gst-launch pipeline with `{out}`, streams).
const CLIPS: &[(&str, &str, usize)] = &[
    (
        "vp9opus.webm",
        "{V} ! vp9enc deadline=1 ! queue ! webmmux name=mux ! filesink location={out} \
         {A} ! opusenc ! queue ! mux.",
        2,
    ),
    (
        "h264.mp4",
        "{V} ! x264enc bframes=2 speed-preset=ultrafast ! h264parse ! mp4mux ! \
         filesink location={out}",
        1,
    ),
    (
        // qtdemux trims the edit list's end by segment, not clipping meta.
        "aac.mp4",
        "{A} ! audioconvert ! avenc_aac ! aacparse ! mp4mux ! filesink location={out}",
        1,
    ),
    (
        "vp8vorbis.webm",
        "{V} ! vp8enc deadline=1 ! queue ! webmmux name=mux ! filesink location={out} \
         {A} ! audioconvert ! vorbisenc ! queue ! mux.",
        2,
    ),
    // mpeg2enc rather than avenc_mpeg2video, which rejects every frame
    // rate (libav sees the time base as the rate); 25 fps, a PAL rate.
    (
        "mpeg2ac3.ts",
        "videotestsrc num-buffers=25 pattern=ball ! \
         video/x-raw,format=I420,width=320,height=240,framerate=25/1 ! \
         mpeg2enc ! mpegvideoparse ! queue ! mpegtsmux name=mux ! \
         filesink location={out} {A} ! avenc_ac3 ! ac3parse ! queue ! mux.",
        2,
    ),
    (
        "mp2.mka",
        "{A} ! avenc_mp2 ! mpegaudioparse ! matroskamux ! filesink location={out}",
        1,
    ),
    // oggdemux trims the last Vorbis packet by the segment's stop (the end
    // granule), which the client's decoder must clip as GStreamer's does.
    (
        "vorbis.ogg",
        "{A} ! audioconvert ! vorbisenc ! oggmux ! filesink location={out}",
        1,
    ),
    // Ogg FLAC: codec data from the Ogg mapping header's STREAMINFO.
    (
        "flac.ogg",
        "{A} ! audioconvert ! audio/x-raw,format=S16LE ! flacenc ! oggmux ! \
         filesink location={out}",
        1,
    ),
    // MPEG-4 Part 2 (avimux would label it DivX, which this GStreamer
    // cannot play at all).
    (
        "mpeg4.mkv",
        "{V} ! avenc_mpeg4 ! matroskamux ! filesink location={out}",
        1,
    ),
];

/// What a playbin run did.
struct Run {
    /// Factory names of every element in the pipeline.
    factories: Vec<String>,
    /// Those of decoders.
    decoders: Vec<String>,
    /// `active` of the bins (when the bins were used).
    active: Vec<String>,
    /// Whether each bin's fallback sink rendered something.
    fallback_rendered: Vec<bool>,
    /// The volume of the audio fallback's volume element.
    fallback_volume: Option<f64>,
}

fn make(factory: &str, socket: &Path) -> gst::Element {
    let sink = gst::ElementFactory::make(factory)
        .property("socket", socket.display().to_string())
        .build()
        .unwrap_or_else(|e| panic!("make {factory}: {e}"));
    if factory != "mediaredirsink" {
        // fakeaudiosink has GstStreamVolume (as pulsesink has).
        let fallback = if factory.contains("video") {
            "fakevideosink"
        } else {
            "fakeaudiosink"
        };
        let fallback = gst::ElementFactory::make(fallback)
            .build()
            .expect("fakesink");
        sink.set_property("fallback-sink", &fallback);
    }
    sink
}

/// Plays `clip` in a playbin with `video`/`audio` sink factories to EOS.
fn play(clip: &Path, socket: &Path, video: &str, audio: &str, volume: f64) -> Result<Run, String> {
    let playbin = gst::ElementFactory::make("playbin")
        .property("uri", format!("file://{}", clip.display()))
        .property("video-sink", make(video, socket))
        .property("audio-sink", make(audio, socket))
        .build()
        .expect("make playbin");
    // Video and audio only: no visualisation, subtitles or soft volume.
    playbin.set_property_from_str("flags", "video+audio");
    if volume != 1.0 {
        playbin.set_property("volume", volume);
    }
    let result = play_to_end(&playbin);
    let bin = playbin
        .downcast_ref::<gst::Bin>()
        .expect("playbin is a bin");
    let mut factories = Vec::new();
    let mut decoders = Vec::new();
    for element in bin.iterate_recurse().into_iter().flatten() {
        if let Some(f) = element.factory() {
            // Not decodebin and uridecodebin ("Generic/Bin/Decoder").
            if !element.is::<gst::Bin>()
                && f.metadata(gst::ELEMENT_METADATA_KLASS)
                    .is_some_and(|k| k.contains("Decoder"))
            {
                decoders.push(f.name().to_string());
            }
            factories.push(f.name().to_string());
        }
    }
    let mut active = Vec::new();
    let mut fallback_rendered = Vec::new();
    let mut fallback_volume = None;
    for property in ["video-sink", "audio-sink"] {
        let sink = playbin.property::<gst::Element>(property);
        if sink.find_property("active").is_some() {
            active.push(sink.property::<String>("active"));
            let fallback = sink.property::<Option<gst::Element>>("fallback-sink");
            fallback_rendered.push(
                fallback
                    .as_ref()
                    .is_some_and(|f| f.property::<Option<gst::Sample>>("last-sample").is_some()),
            );
            if let Some(f) = fallback.filter(|f| f.find_property("volume").is_some()) {
                fallback_volume = Some(f.property::<f64>("volume"));
            }
        }
    }
    playbin
        .set_state(gst::State::Null)
        .map_err(|e| format!("set to NULL: {e}"))?;
    result.map(|()| Run {
        factories,
        decoders,
        active,
        fallback_rendered,
        fallback_volume,
    })
}

/// Plays `clip` through a local:verify daemon with the given sinks; checks
/// that nothing was decoded in the guest and the client's decode is
/// bit-exact.
fn redirect_and_verify(
    scratch: &Scratch,
    tag: &str,
    clip: &Path,
    streams: usize,
    video: &str,
    audio: &str,
) -> Result<Run, String> {
    let (mut device, report) = Device::start_verifying(scratch, tag);
    let run = play(clip, &device.broker_socket, video, audio, 1.0);
    let counters = device.daemon.take().expect("daemon").stop();
    let run = run?;
    if !run.decoders.is_empty() {
        return Err(format!(
            "decoders plugged despite a client: {:?}",
            run.decoders
        ));
    }
    if counters.get("payload_bytes").copied().unwrap_or(0) == 0 {
        return Err(format!("no payload reached the daemon ({counters:?})"));
    }
    verify(clip, &report, streams)?;
    Ok(run)
}

#[test]
fn playbin_redirects_to_a_connected_client_bit_exact() {
    init();
    let scratch = Scratch::new("sink-redirect");
    let mut failures = Vec::new();
    for (i, &(name, pipeline, streams)) in CLIPS.iter().enumerate() {
        let clip = generate(&scratch, name, pipeline);
        let result = redirect_and_verify(
            &scratch,
            &format!("clip{i}"),
            &clip,
            streams,
            "mediaredirsink",
            "mediaredirsink",
        );
        eprintln!(
            "playbin with mediaredirsink: {name}: {}",
            match &result {
                Ok(run) => format!("redirected, pipeline {:?}", run.factories),
                Err(e) => format!("FAILED: {e}"),
            }
        );
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
}

#[test]
fn auto_sinks_redirect_when_a_client_is_connected() {
    init();
    let scratch = Scratch::new("sink-auto-redirect");
    let (name, pipeline, streams) = CLIPS[0];
    let clip = generate(&scratch, name, pipeline);
    let run = redirect_and_verify(
        &scratch,
        "auto",
        &clip,
        streams,
        "mediaredirvideosink",
        "mediarediraudiosink",
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(run.active, ["redirect", "redirect"], "{:?}", run.factories);
    assert_eq!(run.fallback_rendered, [false, false]);
}

#[test]
fn playbin_decodes_locally_without_a_client() {
    init();
    let scratch = Scratch::new("sink-fallback");
    let (name, pipeline, _) = CLIPS[0];
    let clip = generate(&scratch, name, pipeline);
    let device = Device::start(&scratch, "null", &["--uplink", "null"]);
    device.wait_client(false);

    // mediaredirsink offers nothing without a client ...
    let sink = make("mediaredirsink", &device.broker_socket);
    let pad = sink.static_pad("sink").expect("sink pad");
    assert!(pad.query_caps(None).is_empty(), "caps without a client");
    let opus = gst::Caps::builder("audio/x-opus").build();
    assert!(!pad.query_accept_caps(&opus));
    // ... nor with no broker at all.
    let nowhere = make("mediaredirsink", &scratch.path("nobody.sock"));
    let pad = nowhere.static_pad("sink").expect("sink pad");
    assert!(pad.query_caps(None).is_empty(), "caps without a broker");

    // The bins make playbin decode locally into their fallback sinks.
    let run = play(
        &clip,
        &device.broker_socket,
        "mediaredirvideosink",
        "mediarediraudiosink",
        0.5,
    )
    .unwrap_or_else(|e| panic!("local playback: {e}"));
    assert!(
        run.decoders.len() >= 2,
        "no local decoders: {:?}",
        run.factories
    );
    assert_eq!(run.active, ["fallback", "fallback"], "{:?}", run.factories);
    assert_eq!(run.fallback_rendered, [true, true]);
    // playbin's volume went to the redirect sink, and on to the fallback.
    assert_eq!(run.fallback_volume, Some(0.5));
}

/// Waits for `kind` on `bus`, failing on an error or warning message
/// (the sink posts failed volume or geometry requests as warnings).
fn wait_for(bus: &gst::Bus, kind: gst::MessageType, what: &str) {
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[kind, gst::MessageType::Error, gst::MessageType::Warning],
        )
        .unwrap_or_else(|| panic!("no {kind:?} within 30 s ({what})"));
    match msg.view() {
        gst::MessageView::Error(e) => panic!(
            "{what}: error from {:?}: {} ({:?})",
            e.src().map(|s| s.path_string()),
            e.error(),
            e.debug()
        ),
        gst::MessageView::Warning(w) => panic!(
            "{what}: warning from {:?}: {} ({:?})",
            w.src().map(|s| s.path_string()),
            w.error(),
            w.debug()
        ),
        _ => {}
    }
}

#[test]
fn flushing_seeks_and_pauses_never_hang() {
    init();
    let scratch = Scratch::new("sink-seek");
    let mut device = Device::start(&scratch, "seek", &["--uplink", "local:verify"]);
    device.wait_client(true);
    // A pause right after PLAYING, while a render waits for the device
    // (its `unlock` must not become FLUSHING upstream) ...
    let (name, pipeline, _) = CLIPS[0];
    let clip = generate(&scratch, name, pipeline);
    seek_and_pause(&clip, &device.broker_socket, Duration::ZERO);
    // ... and in the middle of 3 s.
    let pipeline = CLIPS[0]
        .1
        .replace("{V}", &VIDEO.replace("num-buffers=30", "num-buffers=90"))
        .replace("{A}", &AUDIO.replace("num-buffers=50", "num-buffers=150"));
    let clip = generate(&scratch, "long.webm", &pipeline);
    seek_and_pause(&clip, &device.broker_socket, Duration::from_millis(700));
    let counters = device.daemon.take().expect("daemon").stop();
    assert!(
        counters.get("payload_bytes").copied().unwrap_or(0) > 0,
        "{counters:?}"
    );
}

/// Seeks while prerolled, pauses `pause_after` into playing, resumes,
/// seeks after EOS and shuts down while playing.
fn seek_and_pause(clip: &Path, socket: &Path, pause_after: Duration) {
    let playbin = gst::ElementFactory::make("playbin")
        .property("uri", format!("file://{}", clip.display()))
        .property("video-sink", make("mediaredirsink", socket))
        .property("audio-sink", make("mediaredirsink", socket))
        .build()
        .expect("make playbin");
    playbin.set_property_from_str("flags", "video+audio");
    let bus = playbin.bus().expect("bus");

    // A seek while prerolled, then play to the end.
    playbin.set_state(gst::State::Paused).expect("PAUSED");
    wait_for(&bus, gst::MessageType::AsyncDone, "preroll");
    playbin
        .seek_simple(
            gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT,
            gst::ClockTime::from_mseconds(500),
        )
        .expect("seek while paused");
    wait_for(&bus, gst::MessageType::AsyncDone, "seek while paused");
    playbin.set_state(gst::State::Playing).expect("PLAYING");
    // Pause and resume while playing.
    std::thread::sleep(pause_after);
    playbin.set_state(gst::State::Paused).expect("PAUSED again");
    let (ret, _, _) = playbin.state(gst::ClockTime::from_seconds(30));
    assert_eq!(
        ret,
        Ok(gst::StateChangeSuccess::Success),
        "paused while playing"
    );
    std::thread::sleep(Duration::from_millis(300));
    playbin
        .set_state(gst::State::Playing)
        .expect("PLAYING again");
    // playbin's volume reaches the sink (GstStreamVolume), thence the client.
    playbin.set_property("volume", 0.5f64);
    playbin.set_property("mute", true);
    playbin.set_property("mute", false);
    let audio_sink = playbin.property::<gst::Element>("audio-sink");
    assert_eq!(audio_sink.property::<f64>("volume"), 0.5);
    assert!(!audio_sink.property::<bool>("mute"));
    // Geometry goes to the presentation live.
    let video_sink = playbin.property::<gst::Element>("video-sink");
    video_sink.set_property("x", 10i32);
    video_sink.set_property("y", 20i32);
    video_sink.set_property("width", 160u32);
    video_sink.set_property("height", 120u32);
    video_sink.set_property("visible", false);
    wait_for(&bus, gst::MessageType::Eos, "playing after the seek");

    // A seek after the end plays again to the end.
    playbin
        .seek_simple(gst::SeekFlags::FLUSH, gst::ClockTime::ZERO)
        .expect("seek after EOS");
    wait_for(&bus, gst::MessageType::Eos, "playing again from the start");

    // And shutting down while playing does not hang either.
    playbin
        .seek_simple(gst::SeekFlags::FLUSH, gst::ClockTime::ZERO)
        .expect("seek to replay");
    let stopped = Instant::now();
    playbin.set_state(gst::State::Null).expect("NULL");
    // A hang check, below the sink's 5 s broker timeout: a shutdown that
    // waits for a reply or a buffer that never comes (or that it already
    // has) shows here. It takes tens of milliseconds.
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
}

#[test]
fn losing_the_device_is_an_error_on_the_bus() {
    init();
    let scratch = Scratch::new("sink-lost");
    let mut device = Device::start(&scratch, "lost", &["--uplink", "local:verify"]);
    device.wait_client(true);
    let pipeline = CLIPS[0]
        .1
        .replace("{V}", &VIDEO.replace("num-buffers=30", "num-buffers=150"))
        .replace("{A}", &AUDIO.replace("num-buffers=50", "num-buffers=250"));
    let clip = generate(&scratch, "five.webm", &pipeline);
    let socket = device.broker_socket.clone();
    let sink = || {
        let s = make("mediaredirsink", &socket);
        s.set_property("stall-timeout", 3u32);
        s
    };
    let playbin = gst::ElementFactory::make("playbin")
        .property("uri", format!("file://{}", clip.display()))
        .property("video-sink", sink())
        .property("audio-sink", sink())
        .build()
        .expect("make playbin");
    playbin.set_property_from_str("flags", "video+audio");
    let bus = playbin.bus().expect("bus");
    playbin.set_state(gst::State::Playing).expect("PLAYING");
    wait_for(&bus, gst::MessageType::AsyncDone, "preroll");
    std::thread::sleep(Duration::from_millis(500));
    // The host daemon dies mid-play: the broker loses the device.
    device.daemon.take().expect("daemon").kill();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .expect("no error within 30 s of losing the device");
    assert!(
        matches!(msg.view(), gst::MessageView::Error(_)),
        "playback went on without the device: {msg:?}"
    );
    let stopped = Instant::now();
    playbin.set_state(gst::State::Null).expect("NULL");
    assert!(stopped.elapsed() < Duration::from_secs(15), "slow shutdown");
}
