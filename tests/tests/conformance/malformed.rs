//! Malformed input: every bad chain or field gets its status (or, when no
//! status can be written, used length 0), and the daemon keeps serving
//! (DEV-SEC-1..4, 7.3).

use std::time::Duration;

use conformance_tests::client::AckPolicy;
use conformance_tests::rig::{Driver, Rig, audio, call, data_header, ok, video};
use guest_driver_shim::{DmaBuffer, RawDesc, UsedElem};
use mediaredir_proto::control::{ControlRequest, Request, StreamFormat};
use mediaredir_proto::data::{DATA_HDR_SIZE, DataHeader, FLAG_EOS, FLAG_KEYFRAME};
use mediaredir_proto::device::{CONTROLQ, TXQ_BASE};
use mediaredir_proto::status::Status;

use crate::data::collect;

const NEXT: u16 = 1;
const WRITE: u16 = 2;
const INDIRECT: u16 = 4;
/// An address far outside the 64 MiB of guest RAM the transport maps.
const OUTSIDE: u64 = 0x7000_0000_0000;

/// Publishes raw descriptors (their `next` fields relative to the first
/// one) as one chain and waits for its completion.
fn raw_chain(dev: &mut Driver, queue: u16, descs: &[RawDesc]) -> UsedElem {
    let vq = dev.queue_mut(queue).unwrap();
    let n = u16::try_from(descs.len()).unwrap();
    let first = vq.find_free_run(n).expect("free descriptors");
    let descs: Vec<RawDesc> = descs
        .iter()
        .map(|d| RawDesc {
            next: d.next + first,
            ..*d
        })
        .collect();
    vq.add_raw_descriptors(first, &descs, first).unwrap();
    dev.kick(queue).unwrap();
    dev.wait_used(queue, Duration::from_secs(10))
        .unwrap()
        .expect("the device completes every chain")
}

fn buffer(dev: &Driver, len: usize) -> DmaBuffer {
    dev.dma().alloc(len, 64).unwrap()
}

fn desc(buf: &DmaBuffer, len: u32, flags: u16, next: u16) -> RawDesc {
    RawDesc {
        addr: buf.gpa(),
        len,
        flags,
        next,
    }
}

fn status_in(buf: &DmaBuffer) -> u32 {
    u32::from_le_bytes(buf.read_vec(0, 4).unwrap().try_into().unwrap())
}

fn still_serving(dev: &mut Driver) {
    assert_eq!(
        call(dev, 0, Request::GetCaps).0,
        Status::Ok,
        "the daemon still serves"
    );
}

/// DEV-SEC-3: structurally broken chains are completed with used length 0
/// and the device serves on: addresses outside guest memory, lengths that
/// overflow, a readable descriptor after a writable one, a descriptor loop,
/// an indirect table larger than the queue, a nested indirect table.
#[test]
fn broken_chains_on_every_queue() {
    let rig = Rig::start("chains", &[]);
    let (_client, mut dev) = rig.connected(AckPolicy::Immediate);
    let pres = ok(&mut dev, 0, Request::PresCreate { live: false });
    ok(&mut dev, pres, Request::StreamCreate(video(0)));
    let hdr = buffer(&dev, 4096);
    let status = buffer(&dev, 64);
    let queue_size = dev.queue_mut(TXQ_BASE).unwrap().size();
    let big_table = buffer(&dev, (usize::from(queue_size) + 1) * 16);
    let nested = buffer(&dev, 16);
    nested
        .write_at(
            0,
            &RawDesc {
                addr: hdr.gpa(),
                len: 16,
                flags: INDIRECT,
                next: 0,
            }
            .to_bytes(),
        )
        .unwrap();
    let cases: Vec<(&str, Vec<RawDesc>)> = vec![
        (
            "outside guest memory",
            vec![
                RawDesc {
                    addr: OUTSIDE,
                    len: 48,
                    flags: NEXT,
                    next: 1,
                },
                desc(&status, 8, WRITE, 0),
            ],
        ),
        (
            "length overflows",
            vec![
                RawDesc {
                    addr: u64::MAX - 16,
                    len: 48,
                    flags: NEXT,
                    next: 1,
                },
                desc(&status, 8, WRITE, 0),
            ],
        ),
        (
            "readable after writable",
            vec![desc(&status, 8, WRITE | NEXT, 1), desc(&hdr, 48, 0, 0)],
        ),
        (
            "descriptor loop",
            vec![desc(&hdr, 48, NEXT, 1), desc(&hdr, 48, NEXT, 0)],
        ),
        (
            "next out of range",
            vec![RawDesc {
                addr: hdr.gpa(),
                len: 48,
                flags: NEXT,
                next: queue_size + 10,
            }],
        ),
        (
            "indirect table too large",
            vec![RawDesc {
                addr: big_table.gpa(),
                len: (u32::from(queue_size) + 1) * 16,
                flags: INDIRECT,
                next: 0,
            }],
        ),
        (
            "indirect table not a multiple of 16",
            vec![RawDesc {
                addr: big_table.gpa(),
                len: 24,
                flags: INDIRECT,
                next: 0,
            }],
        ),
        (
            "nested indirect table",
            vec![RawDesc {
                addr: nested.gpa(),
                len: 16,
                flags: INDIRECT,
                next: 0,
            }],
        ),
    ];
    for queue in [CONTROLQ, TXQ_BASE] {
        for (what, descs) in &cases {
            let used = raw_chain(&mut dev, queue, descs);
            assert_eq!(used.len, 0, "queue {queue}: {what}");
            still_serving(&mut dev);
        }
    }
    let counters = rig.daemon().counters();
    assert!(
        counters["malformed_chains"] >= 2 * cases.len() as u64 - 2,
        "{counters:?}"
    );
}

/// DEV-DATA-1: data buffers with bad fields get their status.
#[test]
fn bad_data_buffers_get_their_status() {
    let rig = Rig::start("databad", &[]);
    let (_client, mut dev) = rig.connected(AckPolicy::Immediate);
    let pres = ok(&mut dev, 0, Request::PresCreate { live: false });
    let v = ok(&mut dev, pres, Request::StreamCreate(video(0)));
    let a = ok(&mut dev, pres, Request::StreamCreate(audio(1)));
    let generation = dev.config().unwrap().generation;
    let header = |stream, flags| DataHeader {
        generation,
        payload_len: 4,
        ..data_header(stream, flags, Some(0))
    };

    // Too short for the header: 10 readable bytes.
    let short = buffer(&dev, 64);
    let status = buffer(&dev, 8);
    let used = raw_chain(
        &mut dev,
        TXQ_BASE,
        &[desc(&short, 10, NEXT, 1), desc(&status, 8, WRITE, 0)],
    );
    assert_eq!(
        (used.len, status_in(&status)),
        (8, Status::Invalid.as_u32())
    );

    // payload_len disagrees with the bytes the chain carries.
    let hdr = buffer(&dev, 64 + 100);
    hdr.write_at(0, &header(v, FLAG_KEYFRAME).to_bytes())
        .unwrap();
    let status = buffer(&dev, 8);
    let used = raw_chain(
        &mut dev,
        TXQ_BASE,
        &[
            desc(&hdr, u32::try_from(DATA_HDR_SIZE + 100).unwrap(), NEXT, 1),
            desc(&status, 8, WRITE, 0),
        ],
    );
    assert_eq!(
        (used.len, status_in(&status)),
        (8, Status::Invalid.as_u32())
    );

    // Unknown stream id, wrong txq, stale generation, unknown flag bits.
    let submit = |dev: &mut Driver, txq: u16, h: DataHeader| {
        dev.submit_data_copy(txq, &h, &[1, 2, 3, 4]).unwrap();
        collect(dev, txq, 1)[0]
    };
    assert_eq!(
        submit(&mut dev, 0, header(9999, FLAG_KEYFRAME)),
        Status::NoEntity
    );
    assert_eq!(
        submit(&mut dev, 1, header(v, FLAG_KEYFRAME)),
        Status::Invalid,
        "stream bound to txq 0"
    );
    assert_eq!(
        submit(
            &mut dev,
            0,
            DataHeader {
                generation: generation ^ 1,
                ..header(v, FLAG_KEYFRAME)
            }
        ),
        Status::Stale
    );
    assert_eq!(submit(&mut dev, 0, header(v, 1 << 12)), Status::Invalid);

    // Data for a stream that is no longer open (after EOS).
    assert_eq!(submit(&mut dev, 1, header(a, FLAG_EOS)), Status::Ok);
    assert_eq!(submit(&mut dev, 1, header(a, 0)), Status::BadState);
    still_serving(&mut dev);
}

/// DEV-CTRL-5, DEV-STRM-3, DEV-SEC-4: bad control requests get their status.
#[test]
fn bad_control_requests_get_their_status() {
    let rig = Rig::start("ctrlbad", &["--max-codec-data", "64", "--max-streams", "1"]);
    let (_client, mut dev) = rig.connected(AckPolicy::Immediate);
    let generation = dev.config().unwrap().generation;
    let status_of = |bytes: &[u8]| u32::from_le_bytes(bytes[..4].try_into().unwrap());

    // Unknown request code.
    let mut bytes = ControlRequest {
        generation,
        target: 0,
        request: Request::GetCaps,
    }
    .encode();
    bytes[0..4].copy_from_slice(&0x0999u32.to_le_bytes());
    assert_eq!(
        status_of(&dev.control_raw(&bytes, 64).unwrap().bytes),
        Status::UnknownRequest.as_u32()
    );

    // Shorter than its header.
    assert_eq!(
        status_of(&dev.control_raw(&bytes[..8], 64).unwrap().bytes),
        Status::Invalid.as_u32()
    );

    // No room for the response: used length 0.
    let caps = ControlRequest {
        generation,
        target: 0,
        request: Request::GetCaps,
    }
    .encode();
    assert_eq!(dev.control_raw(&caps, 8).unwrap().used_len, 0);

    // Oversized codec data: LIMIT.
    let pres = ok(&mut dev, 0, Request::PresCreate { live: false });
    let big = StreamFormat {
        codec_data: vec![1; 100],
        ..video(0)
    };
    let mut record = vec![1, 0x64, 0, 0x1f];
    record.resize(100, 0);
    let big = StreamFormat {
        codec_data: record,
        ..big
    };
    assert_eq!(
        call(&mut dev, pres, Request::StreamCreate(big)).0,
        Status::Limit
    );
    // A codec data that is not an avcC record: INVALID.
    let garbage = StreamFormat {
        codec_data: vec![0, 0, 0, 1, 0x67],
        ..video(0)
    };
    assert_eq!(
        call(&mut dev, pres, Request::StreamCreate(garbage)).0,
        Status::Invalid
    );
    // More streams than the limit.
    ok(&mut dev, pres, Request::StreamCreate(video(0)));
    assert_eq!(
        call(&mut dev, pres, Request::StreamCreate(audio(1))).0,
        Status::Limit
    );
    // Unknown ids.
    assert_eq!(call(&mut dev, 4242, Request::PresPlay).0, Status::NoEntity);
    assert_eq!(
        call(&mut dev, 4242, Request::StreamDestroy).0,
        Status::NoEntity
    );
    // Out-of-range fields.
    assert_eq!(
        call(&mut dev, pres, Request::PresSetRate { rate_q16: 1 }).0,
        Status::Invalid
    );
    still_serving(&mut dev);
}
