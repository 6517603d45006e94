//! The Spice uplink's options, spelled as QEMU's `-spice` spells them:
//! `spice:port=5930,addr=127.0.0.1,password-file=F` or
//! `spice:unix=on,addr=/run/vm1-media.spice,disable-ticketing=on`, plus
//! `tls-port=N,x509-dir=D` (D holding `ca-cert.pem`, `server-cert.pem` and
//! `server-key.pem`, as QEMU expects). One of `password-file` (ticketing)
//! or `disable-ticketing=on` must be given, and ticketing may only be
//! disabled on loopback or a Unix socket: the Spice transport must
//! authenticate its client (spec WIRE-10). QEMU's `password-secret` names a
//! secret object; the daemon reads the password from a file instead, which
//! keeps it off the command line as well.

use std::net::IpAddr;
use std::path::PathBuf;

/// The Spice uplink's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpiceOptions {
    /// Plain port (TCP), if any.
    pub port: Option<u16>,
    /// Listening address, or the socket path with `unix`.
    pub addr: Option<String>,
    /// Listen on a Unix socket at `addr`.
    pub unix: bool,
    /// A file holding the ticket (password).
    pub password_file: Option<PathBuf>,
    /// No authentication (loopback or Unix only).
    pub disable_ticketing: bool,
    /// TLS port, if any.
    pub tls_port: Option<u16>,
    /// Directory with `ca-cert.pem`, `server-cert.pem`, `server-key.pem`.
    pub x509_dir: Option<PathBuf>,
}

/// Why Spice options are refused, or the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SpiceError {
    /// An option does not parse.
    #[error("bad Spice option {0:?}")]
    BadOption(String),
    /// The options contradict each other or miss something.
    #[error("Spice uplink: {0}")]
    Invalid(&'static str),
    /// The password file cannot be read.
    #[error("cannot read the Spice password file {path}: {source}")]
    Password {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// libspice-server refused a setting or could not start.
    #[error("libspice-server: {0}")]
    Server(String),
}

fn on_off(key: &str, value: &str) -> Result<bool, SpiceError> {
    match value {
        "on" | "yes" | "true" | "" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(SpiceError::BadOption(format!("{key}={value}"))),
    }
}

fn port(key: &str, value: &str) -> Result<u16, SpiceError> {
    value
        .parse()
        .map_err(|_| SpiceError::BadOption(format!("{key}={value}")))
}

impl SpiceOptions {
    /// Parses the part after `spice:`.
    pub fn parse(text: &str) -> Result<SpiceOptions, SpiceError> {
        let mut o = SpiceOptions::default();
        for item in text.split(',').filter(|i| !i.is_empty()) {
            let (key, value) = item.split_once('=').unwrap_or((item, ""));
            match key {
                "port" => o.port = Some(port(key, value)?),
                "tls-port" => o.tls_port = Some(port(key, value)?),
                "addr" => o.addr = Some(value.to_owned()),
                "unix" => o.unix = on_off(key, value)?,
                "password-file" => o.password_file = Some(value.into()),
                "disable-ticketing" => o.disable_ticketing = on_off(key, value)?,
                "x509-dir" => o.x509_dir = Some(value.into()),
                _ => return Err(SpiceError::BadOption(item.to_owned())),
            }
        }
        o.validate()?;
        Ok(o)
    }

    fn validate(&self) -> Result<(), SpiceError> {
        match (&self.password_file, self.disable_ticketing) {
            (None, false) => {
                return Err(SpiceError::Invalid(
                    "give password-file=F (ticketing) or disable-ticketing=on",
                ));
            }
            (Some(_), true) => {
                return Err(SpiceError::Invalid(
                    "password-file and disable-ticketing=on exclude each other",
                ));
            }
            _ => {}
        }
        if self.unix {
            if self.addr.as_deref().is_none_or(str::is_empty) {
                return Err(SpiceError::Invalid("unix=on needs addr=PATH"));
            }
            if self.port.is_some() || self.tls_port.is_some() {
                return Err(SpiceError::Invalid("unix=on takes no port or tls-port"));
            }
            return Ok(());
        }
        if self.port.is_none() && self.tls_port.is_none() {
            return Err(SpiceError::Invalid("give port=N, tls-port=N or unix=on"));
        }
        if self.tls_port.is_some() != self.x509_dir.is_some() {
            return Err(SpiceError::Invalid("tls-port and x509-dir go together"));
        }
        if self.disable_ticketing && !self.is_loopback() {
            return Err(SpiceError::Invalid(
                "disable-ticketing=on is only allowed on a loopback address or a Unix socket",
            ));
        }
        Ok(())
    }

    fn is_loopback(&self) -> bool {
        match self.addr.as_deref() {
            Some("localhost") => true,
            Some(a) => a
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        }
    }

    /// Reads the ticket, when ticketing is on.
    pub(super) fn password(&self) -> Result<Option<String>, SpiceError> {
        let Some(path) = &self.password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| SpiceError::Password {
            path: path.clone(),
            source,
        })?;
        Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemu_style_options() {
        let o = SpiceOptions::parse("port=5930,addr=127.0.0.1,disable-ticketing=on").unwrap();
        assert_eq!(o.port, Some(5930));
        assert!(o.disable_ticketing);
        let o = SpiceOptions::parse("unix=on,addr=/tmp/s,password-file=/tmp/p").unwrap();
        assert!(o.unix);
        let o = SpiceOptions::parse("tls-port=5931,x509-dir=/etc/pki,password-file=/p").unwrap();
        assert_eq!(o.tls_port, Some(5931));
    }

    #[test]
    fn refuses_what_qemu_would_not_do_safely() {
        // No authentication choice.
        assert!(SpiceOptions::parse("port=5930,addr=127.0.0.1").is_err());
        // No authentication off loopback.
        assert!(SpiceOptions::parse("port=5930,disable-ticketing=on").is_err());
        assert!(SpiceOptions::parse("port=5930,addr=10.0.0.1,disable-ticketing=on").is_err());
        // TLS half given.
        assert!(SpiceOptions::parse("tls-port=1,password-file=/p").is_err());
        assert!(SpiceOptions::parse("port=1,tls=x,password-file=/p").is_err());
        assert!(SpiceOptions::parse("unix=on,password-file=/p").is_err());
    }
}
