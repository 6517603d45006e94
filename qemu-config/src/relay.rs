//! The media port in the VM's own Spice session: QEMU's `chardev-relay`
//! (`patches/0004-chardev-relay.patch`) joins a Spice port chardev to a
//! socket chardev on the daemon's Unix uplink (docs/qemu-relay.md).
//!
//! QEMU's Spice server then offers the port to every client of the
//! session, under the session's ticket and TLS; the relay hands the bytes
//! to the daemon, which speaks the same wire there as to media-client on
//! its own socket.

use std::path::PathBuf;

/// The three argument pairs: `-chardev spiceport`, `-chardev socket` and
/// `-object chardev-relay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRelay {
    /// The Spice port's name (the wire's `SPICE_PORT_NAME`).
    pub port_name: String,
    /// The daemon's Unix uplink (`--uplink unix:PATH`).
    pub uplink: PathBuf,
    /// How soon QEMU connects again after the daemon went away or a client
    /// left (`reconnect-ms`).
    pub reconnect_ms: u32,
    /// Bytes the relay holds per direction at most; `None`: QEMU's
    /// default (64 KiB).
    pub buffer_size: Option<u32>,
}

impl MediaRelay {
    /// The Spice port chardev's id.
    pub const PORT_ID: &'static str = "mediaport";
    /// The socket chardev's id.
    pub const SOCKET_ID: &'static str = "mediasock";
    /// The relay object's id.
    pub const RELAY_ID: &'static str = "mediarelay";

    /// The port `port_name` relayed to the daemon's uplink `uplink`,
    /// reconnecting after 500 ms.
    pub fn new(port_name: &str, uplink: impl Into<PathBuf>) -> Self {
        Self {
            port_name: port_name.to_string(),
            uplink: uplink.into(),
            reconnect_ms: 500,
            buffer_size: None,
        }
    }

    /// The arguments (QEMU doubles a comma inside an option value).
    pub fn args(&self) -> Vec<String> {
        let path = self.uplink.display().to_string().replace(',', ",,");
        let mut relay = format!(
            "chardev-relay,id={},chardev-a={},chardev-b={}",
            Self::RELAY_ID,
            Self::PORT_ID,
            Self::SOCKET_ID
        );
        if let Some(size) = self.buffer_size {
            relay.push_str(&format!(",buffer-size={size}"));
        }
        vec![
            "-chardev".into(),
            format!(
                "spiceport,id={},name={}",
                Self::PORT_ID,
                self.port_name.replace(',', ",,")
            ),
            "-chardev".into(),
            format!(
                "socket,id={},path={path},reconnect-ms={}",
                Self::SOCKET_ID,
                self.reconnect_ms
            ),
            "-object".into(),
            relay,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_command_line() {
        let r = MediaRelay::new("org.example.0", "/run/a,b/uplink.sock");
        assert_eq!(
            r.args().join(" "),
            "-chardev spiceport,id=mediaport,name=org.example.0 \
             -chardev socket,id=mediasock,path=/run/a,,b/uplink.sock,reconnect-ms=500 \
             -object chardev-relay,id=mediarelay,chardev-a=mediaport,chardev-b=mediasock"
        );
        let sized = MediaRelay {
            buffer_size: Some(4096),
            ..r
        };
        assert!(sized.args()[5].ends_with(",buffer-size=4096"));
    }
}
