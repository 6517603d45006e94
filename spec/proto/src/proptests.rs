//! Property tests: every virtqueue and broker decoder, fed arbitrary or
//! mutated bytes, returns a value or a typed error and never panics; what it
//! accepts re-encodes to something it decodes to the same value.

use proptest::prelude::*;

use crate::broker::{BrokerMessage, Sender};
use crate::codec::Codec;
use crate::control::{ControlRequest, Limits, RequestCode, ResponseHeader};
use crate::data::DataHeader;
use crate::device::DeviceConfig;
use crate::event::Event;
use crate::response::ResponseBody;

/// Encoded examples of every control request.
fn request_corpus() -> Vec<Vec<u8>> {
    crate::control::fixtures::every_request()
        .iter()
        .map(ControlRequest::encode)
        .collect()
}

/// Replaces bytes of `base` at `edits` (positions taken modulo the length),
/// and cuts or extends it by `resize`.
fn mutate(mut base: Vec<u8>, edits: &[(usize, u8)], resize: i8) -> Vec<u8> {
    if !base.is_empty() {
        for (pos, byte) in edits {
            let len = base.len();
            base[pos % len] = *byte;
        }
    }
    let target = base.len().saturating_add_signed(isize::from(resize));
    base.resize(target, 0xA5);
    base
}

fn check_request(bytes: &[u8]) {
    let limits = Limits::default();
    if let Ok(request) = ControlRequest::decode(bytes, &limits) {
        assert_eq!(
            ControlRequest::decode(&request.encode(), &limits),
            Ok(request)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn control_request_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_request(&bytes);
    }

    #[test]
    fn control_request_mutated(
        which in 0usize..25,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        resize in -8i8..8,
    ) {
        let corpus = request_corpus();
        let base = corpus[which % corpus.len()].clone();
        check_request(&mutate(base, &edits, resize));
    }

    #[test]
    fn control_request_any_code_with_small_bodies(
        code in prop::sample::select(RequestCode::ALL.to_vec()),
        target in prop_oneof![Just(0u32), Just(1u32), any::<u32>()],
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(code as u32).to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&target.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&body);
        check_request(&bytes);
    }

    #[test]
    fn response_decoders(
        code in prop::sample::select(RequestCode::ALL.to_vec()),
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        capacity in 0usize..2048,
    ) {
        let _ = ResponseHeader::decode(&bytes);
        if let Ok(body) = ResponseBody::decode(code, &bytes)
            && let Some(encoded) = body.encode(capacity.max(bytes.len()))
        {
            prop_assert_eq!(ResponseBody::decode(code, &encoded), Ok(body));
        }
    }

    #[test]
    fn event_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok((event, generation)) = Event::decode(&bytes) {
            prop_assert_eq!(Event::decode(&event.encode(generation)), Ok((event, generation)));
        }
    }

    #[test]
    fn data_header_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..64), max in any::<u32>()) {
        if let Ok(header) = DataHeader::decode(&bytes, max) {
            prop_assert!(header.payload_len <= max);
            prop_assert_eq!(DataHeader::decode(&header.to_bytes(), max), Ok(header));
        }
    }

    #[test]
    fn config_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(config) = DeviceConfig::decode(&bytes) {
            prop_assert_eq!(DeviceConfig::decode(&config.to_bytes()), Ok(config));
        }
    }

    #[test]
    fn broker_decoder_arbitrary(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for sender in [Sender::Client, Sender::Broker] {
            if let Ok((tag, msg)) = BrokerMessage::decode(&bytes, sender) {
                prop_assert_eq!(BrokerMessage::decode(&msg.encode(tag), sender), Ok((tag, msg)));
            }
        }
    }

    #[test]
    fn broker_decoder_mutated(
        which in 0usize..13,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        resize in -8i8..8,
    ) {
        let corpus = crate::broker::tests::every_message();
        let original = &corpus[which % corpus.len()];
        let sender = original.sender();
        if let Ok((tag, msg)) = BrokerMessage::decode(&mutate(original.encode(7), &edits, resize), sender) {
            prop_assert_eq!(BrokerMessage::decode(&msg.encode(tag), sender), Ok((tag, msg)));
        }
    }

    #[test]
    fn codec_data_checks(
        codec in prop::sample::select(Codec::ALL.to_vec()),
        data in proptest::collection::vec(any::<u8>(), 0..600),
        channels in 0u32..10,
    ) {
        let _ = codec.check_codec_data(&data, channels);
    }
}
