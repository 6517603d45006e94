//! Engine configuration: where decoded media goes and how much compressed
//! media the engine lets the daemon keep in flight (spec 10.7).

use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::time::Duration;

use mediaredir_proto::codec::Codec;

use crate::frames::VideoOutputHandle;

/// Where decoded media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// The engine opens no window: video goes to
    /// [`EngineConfig::video_output`] when set (the viewer draws it),
    /// otherwise to `fakesink` as in `Headless`. Audio goes to a real sink,
    /// chosen from an explicit list and never autoplugged (see
    /// [`crate::sinks`] for the list, its order and packages):
    /// `pulsesink` (`gstreamer1.0-plugins-good`) when a PulseAudio or
    /// PipeWire-pulse server is reachable (`PULSE_SERVER`,
    /// `$XDG_RUNTIME_DIR/pulse/native`), `pipewiresink`
    /// (`gstreamer1.0-pipewire`) when a PipeWire socket exists, `alsasink`
    /// (`gstreamer1.0-alsa`) when `/dev/snd` has a playback PCM.
    ///
    /// Each candidate must reach READY. When none does, the audio stream
    /// (or the call) fails with [`crate::EngineError::NoSink`], which names
    /// the environment, each sink tried and the packages to install; a
    /// machine without a sound device wants `Headless`.
    #[default]
    Auto,
    /// No output device: `fakesink sync=true`, so the clock, pause, QoS and
    /// positions behave as with real sinks; geometry is only recorded.
    Headless,
    /// Like `Headless`, but every decoded video frame (I420) and audio sample
    /// (F32LE interleaved) is hashed into a [`crate::VerificationReport`];
    /// the sinks are `appsink`s with `sync` = [`EngineConfig::verify_sync`].
    /// Only with the crate's `verify` feature (the bit-exact oracle).
    #[cfg(feature = "verify")]
    Verify,
}

impl OutputMode {
    /// Whether decoded media is hashed (Verify mode): it is then decoded
    /// as it is, audio not muted at rates other than 1x.
    pub fn hashes(self) -> bool {
        #[cfg(feature = "verify")]
        {
            self == OutputMode::Verify
        }
        #[cfg(not(feature = "verify"))]
        {
            false
        }
    }
}

/// Where capture streams and calls take their media from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureSources {
    /// The machine's microphones and cameras (`gst::DeviceMonitor`).
    #[default]
    Devices,
    /// A synthetic "test microphone" (`audiotestsrc`, 440 Hz sine) and
    /// "test camera" (`videotestsrc`): headless machines and tests.
    Test,
    /// No capture sources: the engine announces neither capture nor calls.
    None,
}

/// Configuration of call media sessions (spec 7.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallConfig {
    /// Address the RTP/RTCP sockets bind to and that the SDP announces: an
    /// address of this machine the remote peer can reach. Media goes to
    /// loopback destinations only when this address is loopback (tests).
    pub address: IpAddr,
    /// UDP ports for RTP (even) and RTCP (RTP + 1).
    pub ports: RangeInclusive<u16>,
    /// Sessions that may exist at once; more are refused (`LIMIT`).
    pub max_sessions: usize,
    /// Offer video (VP8) in the client's own offers (the guest's
    /// `CALL_CREATE` with `OFFER` cannot ask for it); answers take video
    /// when the remote offer has a VP8 video line.
    pub offer_video: bool,
    /// How often `CallStats` are sent while a call is active.
    pub stats_interval: Duration,
    /// A started, unheld call with no RTP or RTCP from the peer for this
    /// long ends with `CallEnded` (`IO`).
    pub peer_timeout: Duration,
}

impl Default for CallConfig {
    fn default() -> Self {
        CallConfig {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: 40000..=49999,
            max_sessions: 4,
            offer_video: false,
            stats_interval: Duration::from_secs(2),
            peer_timeout: Duration::from_secs(10),
        }
    }
}

/// The two watermarks of one stream, in bytes and media duration (10.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// Below this many queued bytes samples are acknowledged on receipt.
    pub low_bytes: u64,
    /// At or above this many queued bytes acknowledgements are withheld.
    pub high_bytes: u64,
    /// Below this much queued media (ns) samples are acknowledged on receipt.
    pub low_ns: u64,
    /// At or above this much queued media (ns) acknowledgements are withheld.
    pub high_ns: u64,
}

impl Watermarks {
    /// The spec's recommendation for non-live presentations: 1 s / 4 MiB,
    /// 2 s / 8 MiB.
    pub const RECOMMENDED: Watermarks = Watermarks {
        low_bytes: 4 << 20,
        high_bytes: 8 << 20,
        low_ns: 1_000_000_000,
        high_ns: 2_000_000_000,
    };
    /// The spec's recommendation for live presentations: 100 ms / 300 ms.
    pub const LIVE: Watermarks = Watermarks {
        low_bytes: 4 << 20,
        high_bytes: 8 << 20,
        low_ns: 100_000_000,
        high_ns: 300_000_000,
    };
}

/// Configuration of an [`crate::Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where decoded media goes.
    pub output: OutputMode,
    /// Watermarks of streams of non-live presentations.
    pub watermarks: Watermarks,
    /// Watermarks of streams of live presentations.
    pub live_watermarks: Watermarks,
    /// Whether the verification `appsink`s synchronise to the clock
    /// (`false`: decode as fast as possible).
    #[cfg(feature = "verify")]
    pub verify_sync: bool,
    /// How often positions (while playing) and QoS (when changed) are
    /// reported; at most 1 s (spec 7.13).
    pub report_interval: Duration,
    /// Codecs never offered nor decoded even if a decoder exists (e.g. a
    /// broken hardware decoder).
    pub disabled_codecs: Vec<Codec>,
    /// Where capture and call media come from.
    pub capture_sources: CaptureSources,
    /// Call media sessions.
    pub call: CallConfig,
    /// Auto mode: where decoded video goes when the integrator draws it
    /// itself (the viewer); audio still goes to the real sinks. Without
    /// it, Auto-mode video is discarded on the clock like `Headless`.
    pub video_output: Option<VideoOutputHandle>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            output: OutputMode::Auto,
            watermarks: Watermarks::RECOMMENDED,
            live_watermarks: Watermarks::LIVE,
            #[cfg(feature = "verify")]
            verify_sync: false,
            report_interval: Duration::from_millis(500),
            disabled_codecs: Vec::new(),
            capture_sources: CaptureSources::Devices,
            call: CallConfig::default(),
            video_output: None,
        }
    }
}

impl EngineConfig {
    /// The default configuration with another output mode; the headless
    /// modes capture from the synthetic test sources.
    pub fn with_output(output: OutputMode) -> Self {
        EngineConfig {
            output,
            capture_sources: match output {
                OutputMode::Auto => CaptureSources::Devices,
                _ => CaptureSources::Test,
            },
            ..EngineConfig::default()
        }
    }

    /// Whether the sinks of played streams synchronise to the clock:
    /// always, except the verification `appsink`s without
    /// [`EngineConfig::verify_sync`].
    pub(crate) fn sink_sync(&self) -> bool {
        #[cfg(feature = "verify")]
        if self.output == OutputMode::Verify {
            return self.verify_sync;
        }
        true
    }
}
