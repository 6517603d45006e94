//! A QMP client for tests that drive a real QEMU: capabilities
//! negotiation, commands, and `screendump` (what the VM's display shows,
//! as QEMU itself renders it).

use std::io::{self, BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::image::Image;

/// A QMP connection over a Unix socket.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects, reads the greeting and negotiates capabilities; every
    /// later read waits at most 30 s.
    pub fn connect(path: &Path) -> io::Result<Qmp> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        let greeting = qmp.line()?;
        if !greeting.contains("\"QMP\"") {
            return Err(io::Error::other(format!(
                "unexpected QMP greeting: {greeting}"
            )));
        }
        qmp.execute(r#"{"execute":"qmp_capabilities"}"#)?;
        Ok(qmp)
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "QMP connection closed",
            ));
        }
        Ok(line)
    }

    /// Sends a command (one JSON object); returns its reply line. An error
    /// reply is an error; events in between are skipped.
    pub fn execute(&mut self, command: &str) -> io::Result<String> {
        self.writer.write_all(command.as_bytes())?;
        self.writer.write_all(b"\n")?;
        loop {
            let line = self.line()?;
            if line.contains("\"return\"") {
                return Ok(line);
            }
            if line.contains("\"error\"") {
                return Err(io::Error::other(format!("QMP `{command}` failed: {line}")));
            }
        }
    }

    /// What the VM's display shows now: QMP `screendump` into `file` (a
    /// PPM), read back.
    pub fn screendump(&mut self, file: &Path) -> io::Result<Image> {
        let command = crate::serde_json::json!({
            "execute": "screendump",
            "arguments": { "filename": file.to_string_lossy() },
        });
        self.execute(&command.to_string())?;
        Image::from_ppm(&std::fs::read(file)?)
    }
}
