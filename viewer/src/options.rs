//! What the user asks for: remote-viewer's options where they apply, the
//! connection given as a URI (`spice://host:port`, `spice+unix:///path`,
//! `spice+tls://host:port`) or as a `.vv` connection file (what libvirt
//! front ends, oVirt and Proxmox hand out), plus where the media comes
//! from (`--media`).

use std::path::{Path, PathBuf};

use clap::Parser;

use crate::ViewerError;

/// The viewer of vhost-device-media: a Spice viewer (as remote-viewer)
/// that shows the guest's redirected video inside the desktop, in place.
#[derive(Debug, Clone, Parser)]
#[command(version, name = "mediaredir-viewer")]
pub struct Args {
    /// The desktop: spice://HOST:PORT[?tls-port=N], spice+unix:///PATH,
    /// spice+tls://HOST:PORT, or a .vv connection file.
    #[arg(value_name = "URI|FILE")]
    pub target: String,
    /// Where the redirected media comes from when the desktop's session
    /// has no media port: spice://HOST:PORT or spice+unix:///PATH (the
    /// daemon's own Spice server), unix:PATH or tcp:HOST:PORT (its socket
    /// uplinks; TCP with --media-tls-ca).
    #[arg(long, value_name = "URI")]
    pub media: Option<String>,
    /// A file holding the desktop's Spice password.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// A file holding the password of a --media spice:// server.
    #[arg(long, value_name = "FILE")]
    pub media_password_file: Option<PathBuf>,
    /// Spice TLS: the CA certificate(s) (PEM) of the desktop's server.
    #[arg(long, value_name = "PEM")]
    pub spice_ca_file: Option<PathBuf>,
    /// Spice TLS: the subject the server's certificate must carry
    /// ("C=XX,L=city,O=org,CN=host").
    #[arg(long, value_name = "SUBJECT")]
    pub spice_host_subject: Option<String>,
    /// Media over TLS (--media tcp: or a TLS Spice server): the CA
    /// certificate(s) the daemon's certificate must chain to.
    #[arg(long, value_name = "PEM")]
    pub media_tls_ca: Option<PathBuf>,
    /// Media over TCP with TLS: this client's certificate chain (PEM).
    #[arg(long, value_name = "PEM", requires_all = ["media_tls_key", "media_tls_ca"])]
    pub media_tls_cert: Option<PathBuf>,
    /// Media over TCP with TLS: the private key of --media-tls-cert.
    #[arg(long, value_name = "PEM", requires_all = ["media_tls_cert", "media_tls_ca"])]
    pub media_tls_key: Option<PathBuf>,
    /// The window title.
    #[arg(short, long)]
    pub title: Option<String>,
    /// Open full screen.
    #[arg(short, long)]
    pub full_screen: bool,
    /// Zoom level of the window, in percent.
    #[arg(short, long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(10..=400))]
    pub zoom: u32,
    /// Hotkeys, as remote-viewer: ACTION=KEYS[,ACTION=KEYS...] with
    /// toggle-fullscreen, release-cursor, secure-attention (Ctrl+Alt+Del),
    /// zoom-in, zoom-out, zoom-reset; KEYS as "shift+f12".
    #[arg(long, value_name = "SPEC")]
    pub hotkeys: Option<String>,
    /// Do not resize the guest's display with the window (scale instead).
    #[arg(long)]
    pub no_resize_guest: bool,
    /// Mark redirected video with a thin border (for users and support).
    #[arg(long)]
    pub indicator: bool,
    /// Write a screenshot of the first display's window to PATH (PNG) once
    /// a redirected picture has been drawn, then go on (tests, demo).
    #[arg(long, value_name = "PATH", hide = true)]
    pub screenshot: Option<PathBuf>,
}

/// How to reach the desktop's Spice server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desktop {
    /// The Spice URI (spice-gtk parses it).
    pub uri: Option<String>,
    /// Host, port and TLS port when they come from a `.vv` file.
    pub host: Option<String>,
    /// Plain port.
    pub port: Option<String>,
    /// TLS port.
    pub tls_port: Option<String>,
    /// The password.
    pub password: Option<String>,
    /// The CA (PEM text, from a `.vv` file) or `None`.
    pub ca_pem: Option<String>,
    /// The CA file.
    pub ca_file: Option<PathBuf>,
    /// The certificate subject the server must carry.
    pub host_subject: Option<String>,
    /// Title from the `.vv` file.
    pub title: Option<String>,
    /// Full screen from the `.vv` file.
    pub full_screen: bool,
    /// Hotkeys from the `.vv` file, as `action=keys` pairs.
    pub hotkeys: Vec<(String, String)>,
    /// The `.vv` file asks to be deleted once read (it holds a one-time
    /// password).
    pub delete_file: bool,
}

/// A remote-viewer hotkey action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hotkey {
    /// Toggle full screen.
    ToggleFullscreen,
    /// Release the pointer and keyboard grab.
    ReleaseCursor,
    /// Send Ctrl+Alt+Del.
    SecureAttention,
    /// Zoom in.
    ZoomIn,
    /// Zoom out.
    ZoomOut,
    /// Back to 100 %.
    ZoomReset,
}

impl Hotkey {
    fn parse(name: &str) -> Option<Hotkey> {
        Some(match name {
            "toggle-fullscreen" => Hotkey::ToggleFullscreen,
            "release-cursor" => Hotkey::ReleaseCursor,
            "secure-attention" => Hotkey::SecureAttention,
            "zoom-in" => Hotkey::ZoomIn,
            "zoom-out" => Hotkey::ZoomOut,
            "zoom-reset" => Hotkey::ZoomReset,
            _ => return None,
        })
    }
}

/// remote-viewer's key syntax ("shift+f12", "ctrl+alt+r") as a GTK
/// accelerator ("<Shift>F12", "<Control><Alt>r").
pub fn accelerator(keys: &str) -> Option<String> {
    let mut out = String::new();
    let parts: Vec<&str> = keys.split('+').map(str::trim).collect();
    let (key, modifiers) = parts.split_last()?;
    for m in modifiers {
        out.push_str(match m.to_ascii_lowercase().as_str() {
            "shift" => "<Shift>",
            "ctrl" | "control" => "<Control>",
            "alt" => "<Alt>",
            "super" | "win" => "<Super>",
            _ => return None,
        });
    }
    if key.is_empty() {
        return None;
    }
    let key = if key.len() > 1 && key.starts_with(['f', 'F']) && key[1..].parse::<u8>().is_ok() {
        key.to_ascii_uppercase()
    } else {
        keysym_name(key).to_owned()
    };
    out.push_str(&key);
    Some(out)
}

/// The X keysym name GTK looks up (case-sensitive) for a key as users
/// write it in hotkeys (`end`, `del`, `pgup`, ...); other names as given.
fn keysym_name(key: &str) -> &str {
    const NAMES: &[(&[&str], &str)] = &[
        (&["end"], "End"),
        (&["home"], "Home"),
        (&["insert", "ins"], "Insert"),
        (&["delete", "del"], "Delete"),
        (&["escape", "esc"], "Escape"),
        (&["return", "enter"], "Return"),
        (&["backspace"], "BackSpace"),
        (&["tab"], "Tab"),
        (&["pageup", "page_up", "pgup", "prior"], "Page_Up"),
        (&["pagedown", "page_down", "pgdn", "next"], "Page_Down"),
        (&["print", "printscreen", "sysrq"], "Print"),
        (&["pause", "break"], "Pause"),
        (&["up"], "Up"),
        (&["down"], "Down"),
        (&["left"], "Left"),
        (&["right"], "Right"),
    ];
    let lower = key.to_ascii_lowercase();
    NAMES
        .iter()
        .find(|(names, _)| names.contains(&lower.as_str()))
        .map_or(key, |(_, name)| name)
}

/// remote-viewer's hotkeys when neither `--hotkeys` nor the `.vv` file
/// sets any.
pub const DEFAULT_HOTKEYS: &str = "toggle-fullscreen=shift+f11,release-cursor=shift+f12,\
     secure-attention=ctrl+alt+end,zoom-in=ctrl+plus,zoom-out=ctrl+minus,zoom-reset=ctrl+0";

/// `ACTION=KEYS,...` as (action, GTK accelerator) pairs.
pub fn parse_hotkeys(spec: &str) -> Result<Vec<(Hotkey, String)>, ViewerError> {
    let mut keys = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (action, combo) = item
            .split_once('=')
            .ok_or_else(|| ViewerError::Options(format!("hotkey {item:?}: want ACTION=KEYS")))?;
        let action = Hotkey::parse(action.trim())
            .ok_or_else(|| ViewerError::Options(format!("unknown hotkey action {action:?}")))?;
        let accel = accelerator(combo)
            .ok_or_else(|| ViewerError::Options(format!("hotkey keys {combo:?} not understood")))?;
        keys.push((action, accel));
    }
    Ok(keys)
}

/// The desktop target: a URI or a `.vv` file.
pub fn desktop(target: &str) -> Result<Desktop, ViewerError> {
    if target.starts_with("spice://")
        || target.starts_with("spice+unix://")
        || target.starts_with("spice+tls://")
    {
        return Ok(Desktop {
            uri: Some(target.to_owned()),
            ..Desktop::default()
        });
    }
    let path = Path::new(target);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ViewerError::Options(format!("{}: {e}", path.display())))?;
        let desktop = vv_file(&text)?;
        if desktop.delete_file
            && let Err(e) = std::fs::remove_file(path)
        {
            log::warn!("{}: cannot delete it as it asks: {e}", path.display());
        }
        return Ok(desktop);
    }
    Err(ViewerError::Options(format!(
        "{target}: want spice://, spice+unix:// or spice+tls:// URI, or a .vv file"
    )))
}

/// Parses a virt-viewer connection file (a key file with a `[virt-viewer]`
/// group; `type=spice`).
pub fn vv_file(text: &str) -> Result<Desktop, ViewerError> {
    let kf = gtk::glib::KeyFile::new();
    kf.load_from_data(text, gtk::glib::KeyFileFlags::NONE)
        .map_err(|e| ViewerError::Options(format!(".vv file: {e}")))?;
    const GROUP: &str = "virt-viewer";
    let get = |key: &str| kf.string(GROUP, key).ok().map(|s| s.to_string());
    match get("type").as_deref() {
        Some("spice") => {}
        other => {
            return Err(ViewerError::Options(format!(
                ".vv file: type {other:?}, only spice is supported"
            )));
        }
    }
    let host = get("host");
    if host.is_none() {
        return Err(ViewerError::Options(".vv file: no host".into()));
    }
    let hotkeys = [
        "toggle-fullscreen",
        "release-cursor",
        "secure-attention",
        "zoom-in",
        "zoom-out",
        "zoom-reset",
    ]
    .into_iter()
    .filter_map(|k| get(k).map(|v| (k.to_owned(), v)))
    .collect();
    Ok(Desktop {
        uri: None,
        host,
        port: get("port"),
        tls_port: get("tls-port"),
        password: get("password"),
        // virt-viewer writes the CA with literal "\n" escapes.
        ca_pem: get("ca").map(|s| s.replace("\\n", "\n")),
        ca_file: None,
        host_subject: get("host-subject"),
        title: get("title"),
        full_screen: kf.boolean(GROUP, "fullscreen").unwrap_or(false),
        hotkeys,
        delete_file: kf.boolean(GROUP, "delete-this-file").unwrap_or(false),
    })
}

/// Reads a password file: its first line, without the line end.
pub fn read_password(path: &Path) -> Result<String, ViewerError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ViewerError::Options(format!("{}: {e}", path.display())))?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_pass_through() {
        for uri in [
            "spice://localhost:5900",
            "spice+unix:///run/vm.sock",
            "spice+tls://h:5901",
        ] {
            assert_eq!(desktop(uri).unwrap().uri.as_deref(), Some(uri));
        }
        assert!(desktop("vnc://x:1").is_err());
    }

    #[test]
    fn a_libvirt_style_vv_file() {
        let vv = "[virt-viewer]\ntype=spice\nhost=192.0.2.7\nport=5900\ntls-port=5901\n\
                  password=s3cret\ntitle=VM one\nfullscreen=1\n\
                  ca=-----BEGIN CERTIFICATE-----\\nAAA\\n-----END CERTIFICATE-----\\n\n\
                  host-subject=CN=host\nrelease-cursor=shift+f12\ndelete-this-file=1\n";
        let d = vv_file(vv).unwrap();
        assert_eq!(d.host.as_deref(), Some("192.0.2.7"));
        assert_eq!(d.port.as_deref(), Some("5900"));
        assert_eq!(d.tls_port.as_deref(), Some("5901"));
        assert_eq!(d.password.as_deref(), Some("s3cret"));
        assert_eq!(d.title.as_deref(), Some("VM one"));
        assert!(d.full_screen);
        assert!(d.ca_pem.unwrap().contains("\nAAA\n"));
        assert_eq!(d.host_subject.as_deref(), Some("CN=host"));
        assert_eq!(
            d.hotkeys,
            vec![("release-cursor".to_owned(), "shift+f12".to_owned())]
        );
        assert!(vv_file("[virt-viewer]\ntype=vnc\nhost=h\n").is_err());
        assert!(vv_file("[virt-viewer]\ntype=spice\n").is_err());
    }

    #[test]
    fn a_vv_file_that_asks_is_deleted_once_read() {
        let dir = test_support::scratch("vv");
        let path = dir.path().join("console.vv");
        std::fs::write(
            &path,
            "[virt-viewer]\ntype=spice\nhost=h\nport=1\ndelete-this-file=1\n",
        )
        .unwrap();
        let d = desktop(&path.to_string_lossy()).unwrap();
        assert_eq!(d.host.as_deref(), Some("h"));
        assert!(!path.exists());
        std::fs::write(&path, "[virt-viewer]\ntype=spice\nhost=h\nport=1\n").unwrap();
        desktop(&path.to_string_lossy()).unwrap();
        assert!(path.exists());
    }

    #[test]
    fn hotkeys_in_remote_viewer_syntax() {
        let keys =
            parse_hotkeys("toggle-fullscreen=shift+f11,secure-attention=ctrl+alt+end").unwrap();
        assert_eq!(
            keys,
            vec![
                (Hotkey::ToggleFullscreen, "<Shift>F11".to_owned()),
                (Hotkey::SecureAttention, "<Control><Alt>End".to_owned()),
            ]
        );
        assert!(parse_hotkeys("explode=shift+f1").is_err());
        // Every default is a key GTK knows (its key names are
        // case-sensitive: "end" is none, "End" is).
        let defaults = parse_hotkeys(DEFAULT_HOTKEYS).unwrap();
        assert_eq!(defaults.len(), 6);
        for (action, accel) in defaults {
            let name = accel.rsplit('>').next().unwrap();
            let key = gtk::gdk::keys::Key::from_name(name);
            assert_ne!(
                *key, 0xff_ffff,
                "{action:?}: {accel}: GDK knows no {name:?}"
            );
        }
        assert_eq!(accelerator("ctrl+alt+Del").unwrap(), "<Control><Alt>Delete");
    }
}
