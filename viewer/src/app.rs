//! The viewer as a whole: the desktop's Spice session with a window per
//! guest display (each enabled monitor of each display channel, see
//! [`monitors`](crate::monitors)), the session's audio and clipboard, and
//! the media connection whose pictures the windows draw.
//!
//! Everything GTK and Spice runs on the main thread's GLib main loop. The
//! media connection (`media-client`'s transports and the client engine)
//! runs on a thread of its own and reconnects with back-off when it drops,
//! while the desktop stays; its Spice bridge, when the media comes from a
//! Spice server, lives on the same main loop.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use client_engine::wire::SPICE_PORT_NAME;
use client_engine::{EngineConfig, OutputMode, VideoOutputHandle};
use gtk::glib;
use gtk::prelude::*;
use media_client::connection::{self, RunOptions};
use media_client::spice::{SharedPort, SpiceTarget};
use media_client::tls::TlsOptions;
use media_client::{Addr, parse_addr};
use mediaredir_peer::{Backoff, reconnect_loop};
use spice_client_glib::prelude::*;
use spice_client_glib::{Audio, ChannelEvent, DisplayChannel, MainChannel, PortChannel, Session};

use crate::ViewerError;
use crate::monitors;
use crate::options::{self, Args, Desktop};
use crate::scene::Scene;
use crate::spice_gtk;
use crate::window::{DisplayWindow, Shared, window_title};

/// Where the media comes from, parsed from `--media`.
pub fn media_addr(args: &Args) -> Result<Option<(Addr, Option<TlsOptions>)>, ViewerError> {
    let Some(media) = &args.media else {
        return Ok(None);
    };
    let bad = |e: anyhow::Error| ViewerError::Options(format!("--media {media}: {e:#}"));
    let spice = |target: &str| {
        SpiceTarget::parse(
            target,
            args.media_password_file.as_ref(),
            args.media_tls_ca.clone(),
        )
        .map_err(bad)
    };
    let addr = if let Some(rest) = media.strip_prefix("spice+unix://") {
        Addr::Spice(spice(&format!("unix:{rest}"))?)
    } else if let Some(rest) = media.strip_prefix("spice://") {
        Addr::Spice(spice(rest.trim_end_matches('/'))?)
    } else {
        parse_addr(media).map_err(bad)?
    };
    let tls = match (&addr, &args.media_tls_ca) {
        (Addr::Tcp(_), Some(ca)) => Some(TlsOptions {
            ca: ca.clone(),
            identity: args.media_tls_cert.clone().zip(args.media_tls_key.clone()),
        }),
        _ => None,
    };
    Ok(Some((addr, tls)))
}

fn configure(session: &Session, desktop: &Desktop, args: &Args) -> Result<(), ViewerError> {
    if let Some(uri) = &desktop.uri {
        session.set_uri(Some(uri));
    }
    if let Some(host) = &desktop.host {
        session.set_host(Some(host));
    }
    if let Some(port) = &desktop.port {
        session.set_port(Some(port));
    }
    if let Some(port) = &desktop.tls_port {
        session.set_tls_port(Some(port));
    }
    let password = match &args.password_file {
        Some(path) => Some(options::read_password(path)?),
        None => desktop.password.clone(),
    };
    if let Some(password) = &password {
        session.set_password(Some(password));
    }
    if let Some(ca) = args.spice_ca_file.as_ref().or(desktop.ca_file.as_ref()) {
        session.set_ca_file(Some(&ca.to_string_lossy()));
    } else if let Some(pem) = &desktop.ca_pem {
        session.set_property("ca", glib::ByteArray::from(pem.as_bytes()));
    }
    if let Some(subject) = args
        .spice_host_subject
        .as_ref()
        .or(desktop.host_subject.as_ref())
    {
        session.set_cert_subject(Some(subject));
    }
    Ok(())
}

/// Starts the media connection thread: the engine draws into `scene`.
fn start_media(addr: Addr, tls: Option<TlsOptions>, scene: Arc<Scene>) -> std::io::Result<()> {
    media_client::spice::default_context_is_run_elsewhere();
    let opts = RunOptions {
        name: "mediaredir-viewer".into(),
        stats_interval: 0,
        tls,
        verify_report: None,
        once: false,
    };
    std::thread::Builder::new()
        .name("media".into())
        .spawn(move || {
            reconnect_loop(
                Backoff::new(Duration::from_millis(500), Duration::from_secs(5)),
                || {
                    let config = EngineConfig {
                        output: OutputMode::Auto,
                        video_output: Some(VideoOutputHandle(scene.clone())),
                        ..EngineConfig::default()
                    };
                    let result = connection::run(&addr, config, &opts);
                    // The presentations died with the engine.
                    scene.clear();
                    match &result {
                        Ok(()) => log::info!("media connection ended"),
                        Err(e) => log::warn!("media connection: {e:#}"),
                    }
                    result
                },
                || true,
            );
        })?;
    Ok(())
}

/// Takes the media from the desktop's own session when its Spice server
/// offers the media port (QEMU with the daemon behind a `spiceport`
/// chardev): once the port announces its name, the media connection runs
/// over it, as `--media` would over a connection of its own.
fn watch_media_port(port: &PortChannel, started: &Rc<std::cell::Cell<bool>>, scene: &Arc<Scene>) {
    let (started, scene) = (started.clone(), scene.clone());
    let take = move |port: &PortChannel| {
        if started.get() || port.port_name().as_deref() != Some(SPICE_PORT_NAME) {
            return;
        }
        started.set(true);
        log::info!("media: the desktop's session offers the media port {SPICE_PORT_NAME}");
        let addr = Addr::SharedSpicePort(SharedPort::register(port));
        if let Err(e) = start_media(addr, None, scene.clone()) {
            log::warn!("media: {e}");
        }
    };
    take(port);
    port.connect_port_name_notify(take);
    // Port channels are connected by the application (spice-gtk connects
    // the display, cursor and inputs channels only); the name comes once
    // it is connected.
    if !ChannelExt::connect(port) {
        log::warn!("media: cannot connect a port channel of the desktop's session");
    }
}

/// The open windows, by (channel id, monitor id).
type Windows = Rc<RefCell<BTreeMap<(i32, u32), DisplayWindow>>>;

/// How windows are opened: what every window of the session shares.
struct Opener {
    shared: Rc<Shared>,
    windows: Windows,
    full_screen: bool,
    screenshot: Option<std::path::PathBuf>,
}

impl Opener {
    /// Opens the window of monitor `monitor_id` of `channel`.
    fn open(&self, channel: &DisplayChannel, monitor_id: u32) {
        let channel_id = channel.property::<i32>("channel-id");
        let key = (channel_id, monitor_id);
        let win = DisplayWindow::open(&self.shared, channel, channel_id, monitor_id);
        if self.full_screen {
            win.window.fullscreen();
        }
        let ws = self.windows.clone();
        win.window.connect_delete_event(move |_, _| {
            ws.borrow_mut().remove(&key);
            if ws.borrow().is_empty() {
                gtk::main_quit();
            }
            glib::Propagation::Proceed
        });
        if key == (0, 0)
            && let Some(path) = self.screenshot.clone()
        {
            crate::screenshot::after_first_picture(&win, path);
        }
        self.windows.borrow_mut().insert(key, win);
    }

    /// Opens and closes the windows of `channel`'s monitors as it
    /// announces them.
    fn follow_monitors(&self, channel: &DisplayChannel) {
        let channel_id = channel.property::<i32>("channel-id");
        let open = self
            .windows
            .borrow()
            .keys()
            .filter(|(c, _)| *c == channel_id)
            .map(|&(_, m)| m)
            .collect();
        let announced = spice_gtk::monitors(channel);
        let changes = monitors::changes(&open, &announced);
        if changes != monitors::Changes::default() {
            log::info!(
                "display channel {channel_id}: monitors {announced:?} (of at most {}): windows \
                 open for {:?}, closed for {:?}",
                channel.monitors_max(),
                changes.open,
                changes.close
            );
        }
        for monitor_id in changes.close {
            // Removed before it closes: not the user closing the last one.
            let win = self.windows.borrow_mut().remove(&(channel_id, monitor_id));
            if let Some(win) = win {
                win.window.close();
            }
        }
        for monitor_id in changes.open {
            self.open(channel, monitor_id);
        }
    }
}

/// Runs the viewer until the user closes it or the desktop's session ends.
pub fn run(args: Args) -> Result<(), ViewerError> {
    gtk::init().map_err(|e| ViewerError::Gtk(e.to_string()))?;
    let desktop = options::desktop(&args.target)?;
    let mut hotkeys = match &args.hotkeys {
        Some(spec) => options::parse_hotkeys(spec)?,
        None => Vec::new(),
    };
    for (action, keys) in &desktop.hotkeys {
        hotkeys.extend(options::parse_hotkeys(&format!("{action}={keys}"))?);
    }
    if hotkeys.is_empty() {
        hotkeys = options::parse_hotkeys(options::DEFAULT_HOTKEYS)?;
    }
    let session = Session::new();
    configure(&session, &desktop, &args)?;
    spice_gtk::share_clipboard(&session);
    // Plays the session's playback channel (and records for its record
    // channel) through spice-gtk's GStreamer backend.
    let _audio = Audio::get(&session, None);
    let scene = Scene::new();
    if let Some((addr, tls)) = media_addr(&args)? {
        start_media(addr, tls, scene.clone()).map_err(|e| ViewerError::Media(e.to_string()))?;
    }
    let fixed_title = args.title.clone().or_else(|| desktop.title.clone());
    let title = fixed_title
        .clone()
        .unwrap_or_else(|| format!("{} - mediaredir-viewer", args.target));
    let shared = Rc::new(Shared {
        session: session.clone(),
        scene,
        title,
        zoom: std::cell::Cell::new(args.zoom),
        hotkeys,
        resize_guest: !args.no_resize_guest,
        indicator: args.indicator,
    });
    let windows: Windows = Rc::default();
    let failure: Rc<RefCell<Option<String>>> = Rc::default();
    let opener = Rc::new(Opener {
        shared: shared.clone(),
        windows: windows.clone(),
        full_screen: args.full_screen || desktop.full_screen,
        screenshot: args.screenshot.clone(),
    });
    let (s, f) = (shared.clone(), failure.clone());
    let media_given = args.media.is_some();
    let media_started = Rc::new(std::cell::Cell::new(media_given));
    session.connect_channel_new(move |_, channel| {
        if let Some(display) = channel.downcast_ref::<DisplayChannel>() {
            opener.open(display, 0);
            opener.follow_monitors(display);
            let o = opener.clone();
            display.connect_monitors_notify(move |display| o.follow_monitors(display));
        } else if let Some(port) = channel.downcast_ref::<PortChannel>() {
            if !media_given {
                watch_media_port(port, &media_started, &s.scene);
            }
        } else if let Some(main) = channel.downcast_ref::<MainChannel>() {
            let f = f.clone();
            main.connect_channel_event(move |_, event| match event {
                ChannelEvent::Closed => gtk::main_quit(),
                ChannelEvent::ErrorAuth => {
                    *f.borrow_mut() = Some("the desktop's server refused the password".into());
                    gtk::main_quit();
                }
                ChannelEvent::ErrorConnect
                | ChannelEvent::ErrorTls
                | ChannelEvent::ErrorLink
                | ChannelEvent::ErrorIo => {
                    *f.borrow_mut() = Some(format!("the desktop's connection failed: {event:?}"));
                    gtk::main_quit();
                }
                _ => {}
            });
        }
    });
    if fixed_title.is_none() {
        // As remote-viewer: the VM's name once the server tells it.
        let w = windows.clone();
        session.connect_name_notify(move |session| {
            if let Some(name) = session.name() {
                for (&(channel_id, monitor_id), win) in w.borrow().iter() {
                    let id = monitors::display_id(channel_id, monitor_id);
                    win.window.set_title(&window_title(&name, id));
                }
            }
        });
    }
    let w = windows.clone();
    session.connect_channel_destroy(move |_, channel| {
        if channel.is::<DisplayChannel>() {
            let id = channel.property::<i32>("channel-id");
            let gone: Vec<_> = w.borrow().keys().filter(|k| k.0 == id).copied().collect();
            for key in gone {
                let win = w.borrow_mut().remove(&key);
                if let Some(win) = win {
                    win.window.close();
                }
            }
        }
    });
    if !session.connect() {
        return Err(ViewerError::Spice("cannot start the Spice session".into()));
    }
    gtk::main();
    session.disconnect();
    windows.borrow_mut().clear();
    match failure.borrow_mut().take() {
        Some(why) => Err(ViewerError::Spice(why)),
        None => Ok(()),
    }
}
