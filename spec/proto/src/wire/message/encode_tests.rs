//! Tests of the encoder: every message survives a round trip, and the
//! header's bytes are what the schema says (identifier, absent fields).

use std::collections::BTreeSet;

use flatbuffers::FlatBufferBuilder;

use crate::wire::WireError;
use crate::wire::generated::mediaredir::wire as fb;
use crate::wire::message::fixtures::{all_messages, raw, round_trip, sample};
use crate::wire::message::{Clip, Message, SampleHeader};
use crate::wire::types::{SampleFlags, TIME_NONE};

#[test]
fn every_variant_round_trips() {
    let msgs = all_messages();
    for m in &msgs {
        m.validate().unwrap_or_else(|e| panic!("{m:?}: {e}"));
        assert_eq!(round_trip(m).as_ref(), Ok(m), "{}", m.name());
    }
    // Every union member of the schema is covered, under its schema name.
    let covered: BTreeSet<&str> = msgs.iter().map(Message::name).collect();
    let schema: BTreeSet<&str> = fb::Message::ENUM_VALUES
        .iter()
        .filter(|t| **t != fb::Message::NONE)
        .map(|t| t.variant_name().unwrap())
        .collect();
    assert_eq!(covered, schema);
}

#[test]
fn header_carries_identifier_and_reuses_builder() {
    let mut fbb = FlatBufferBuilder::new();
    for m in all_messages() {
        let bytes = m.encode(&mut fbb).to_vec();
        assert_eq!(&bytes[4..8], b"MRW1");
        assert_eq!(Message::decode(&bytes), Ok(m));
    }
}

#[test]
fn sample_clipping_travels_and_capture_has_none() {
    let clip = Clip {
        start: 312,
        end: 648,
    };
    let m = Message::Sample(SampleHeader { clip, ..sample() });
    let bytes = m.to_header_bytes();
    let f = fb::root_as_frame(&bytes).unwrap().msg_as_sample().unwrap();
    assert_eq!((f.clip_start(), f.clip_end()), (312, 648));
    assert_eq!(Message::decode(&bytes), Ok(m));
    // A sample without clipping writes neither field: what a peer of
    // minor 0 sends, and reads as no clipping.
    let plain = Message::Sample(sample()).to_header_bytes();
    assert!(plain.len() < bytes.len());
    // Capture samples never carry clipping.
    let cap = Message::CaptureSample(SampleHeader { clip, ..sample() });
    assert_eq!(
        Message::decode(&cap.to_header_bytes()),
        Ok(Message::CaptureSample(sample()))
    );
}

#[test]
fn time_none_is_absent() {
    let m = Message::Sample(SampleHeader {
        pts: None,
        dts: None,
        duration: None,
        ..sample()
    });
    let bytes = m.to_header_bytes();
    let f = fb::root_as_frame(&bytes).unwrap().msg_as_sample().unwrap();
    assert_eq!(
        (f.pts(), f.dts(), f.duration()),
        (TIME_NONE, TIME_NONE, TIME_NONE)
    );
    assert_eq!(Message::decode(&bytes), Ok(m));
    assert_eq!(
        Message::Sample(SampleHeader {
            pts: Some(TIME_NONE),
            ..sample()
        })
        .validate(),
        Err(WireError::Inconsistent {
            field: "Sample.pts",
            rule: "Some(TIME_NONE) is not a time; use None"
        })
    );
    assert!(matches!(
        Message::CaptureSample(SampleHeader {
            duration: Some(TIME_NONE),
            ..sample()
        })
        .validate(),
        Err(WireError::Inconsistent {
            field: "CaptureSample.duration",
            ..
        })
    ));
    // Explicit TIME_NONE on the wire decodes as None.
    let bytes = raw(|fbb| {
        let args = fb::SampleArgs {
            stream: 1,
            seq: 1,
            pts: 5,
            dts: 0,
            duration: TIME_NONE,
            flags: 0,
            ..Default::default()
        };
        (
            fb::Message::Sample,
            fb::Sample::create(fbb, &args).as_union_value(),
        )
    });
    assert_eq!(
        Message::decode(&bytes),
        Ok(Message::Sample(SampleHeader {
            clip: Default::default(),
            stream: 1,
            seq: 1,
            pts: Some(5),
            dts: Some(0),
            duration: None,
            flags: SampleFlags::empty()
        }))
    );
}
