//! Connects to a running `vhost-user-mediaredir --socket-path PATH`, initialises
//! the device as a guest would, and runs a few requests:
//! `cargo run -p guest-driver-shim --example smoke -- PATH`.

use std::time::Duration;

use guest_driver_shim::driver::{DriverOptions, MediaDevice};
use guest_driver_shim::vhost_user::{VhostUserOptions, VhostUserTransport};
use mediaredir_proto::control::Request;
use mediaredir_proto::data::{DataHeader, FLAG_EOS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let path = std::env::args().nth(1).ok_or("usage: smoke SOCKET")?;
    let transport = VhostUserTransport::connect_new(&path, VhostUserOptions::default())?;
    let mut device = MediaDevice::new(transport, DriverOptions::default())?;
    println!("features {:#x}", device.features()?);
    println!("config {:?}", device.cached_config()?);
    println!("GET_CAPS -> {:?}", device.control(Request::GetCaps, 0)?);
    let (hdr, _) = device.control(Request::PresCreate { live: false }, 0)?;
    println!("PRES_CREATE -> {hdr:?}");
    println!(
        "PRES_QUERY_POSITION -> {:?}",
        device.control(Request::PresQueryPosition, hdr.id)?
    );
    let header = DataHeader {
        clip: Default::default(),
        stream_id: 12345,
        generation: 0,
        flags: FLAG_EOS,
        payload_len: 0,
        pts: None,
        dts: None,
        duration: None,
    };
    let token = device.submit_data_copy(0, &header, &[])?;
    println!(
        "data {token:?} -> {:?}",
        device.wait_data_completions(0, Duration::from_secs(2))?
    );
    println!(
        "event -> {:?}",
        device.next_event(Duration::from_millis(200))?
    );
    println!(
        "PRES_DESTROY -> {:?}",
        device.control(Request::PresDestroy, hdr.id)?
    );
    device.reset()?;
    println!(
        "after reset: GET_CAPS -> {:?}",
        device.control(Request::GetCaps, 0)?
    );
    Ok(())
}
