//! Engine configuration: where decoded media goes and how much compressed
//! media the engine lets the daemon keep in flight (spec 10.7).

use std::time::Duration;

use mediaredir_proto::codec::Codec;

/// Where decoded media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// Real sinks: `autovideosink` / `autoaudiosink` (needs a display and a
    /// sound device).
    #[default]
    Auto,
    /// No output device: `fakesink sync=true`, so the clock, pause, QoS and
    /// positions behave as with real sinks; geometry is only recorded.
    Headless,
    /// Like `Headless`, but every decoded video frame (I420) and audio sample
    /// (F32LE interleaved) is hashed into a [`crate::VerificationReport`];
    /// the sinks are `appsink`s with `sync` = [`EngineConfig::verify_sync`].
    Verify,
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
    pub verify_sync: bool,
    /// How often positions (while playing) and QoS (when changed) are
    /// reported; at most 1 s (spec 7.13).
    pub report_interval: Duration,
    /// Codecs never offered nor decoded even if a decoder exists (e.g. a
    /// broken hardware decoder).
    pub disabled_codecs: Vec<Codec>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            output: OutputMode::Auto,
            watermarks: Watermarks::RECOMMENDED,
            live_watermarks: Watermarks::LIVE,
            verify_sync: false,
            report_interval: Duration::from_millis(500),
            disabled_codecs: Vec::new(),
        }
    }
}

impl EngineConfig {
    /// The default configuration with another output mode.
    pub fn with_output(output: OutputMode) -> Self {
        EngineConfig {
            output,
            ..EngineConfig::default()
        }
    }
}
