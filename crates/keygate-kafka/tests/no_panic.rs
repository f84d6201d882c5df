//! Whatever an authenticated client sends as a request body, the gateway's path —
//! decode (kafka-protocol), plan (the authorizer's checks), the denial encoded at the
//! request's version — returns a decision or an error and never panics, at every
//! version of every API the gateway advertises, whether the checks allow or deny.
//!
//! Bodies are drawn mostly from the bytes that steer a Kafka decoder (0, 1, -1, small
//! lengths), so they get past the first fields into arrays, strings and tagged fields.
//! Some claim billions of array elements: this test runs under mimalloc, as the binary
//! does (see `crates/keygate/src/main.rs`), because kafka-protocol reserves such arrays
//! before reading them.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::RequestKind;
use keygate_core::{Operation, ResourceType};
use keygate_kafka::classify::{gateway_versions, plan, Plan};
use proptest::prelude::*;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn steering_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => Just(0u8),
        2 => Just(1u8),
        2 => Just(0xffu8),
        1 => Just(2u8),
        1 => Just(0x7fu8),
        4 => any::<u8>(),
    ]
}

fn run(api_index: usize, version_pick: u16, body: Vec<u8>, allow: bool) {
    let versions = gateway_versions();
    let (api, min, max) = versions[api_index % versions.len()];
    let span = u16::try_from(max - min + 1).expect("a version range");
    let version = min + i16::try_from(version_pick % span).expect("in range");
    let mut buf = Bytes::from(body);
    let Ok(req) = RequestKind::decode(api, &mut buf, version) else {
        return; // refused by the decoder: the gateway closes the connection
    };
    let policy = move |_: ResourceType, name: &str, _: Operation| allow && !name.starts_with('x');
    if let Some(Plan::Answer(resp)) = plan(&req, version, &policy) {
        // A denial is answered at the request's own version; when it cannot be
        // encoded the gateway closes the connection instead — either is fine, a
        // panic is not.
        let _ = resp.encode(&mut BytesMut::new(), version);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_request_bodies_are_decided_or_refused(
        api_index in any::<usize>(),
        version_pick in any::<u16>(),
        body in proptest::collection::vec(steering_byte(), 0..160),
        allow in any::<bool>(),
    ) {
        run(api_index, version_pick, body, allow);
    }
}

/// The shapes found by hand: a count of 2^31 - 1 (classic array) and 2^32 - 2
/// (compact array) in a body of a few bytes, for every advertised API and version.
#[test]
fn billion_element_counts_are_refused_everywhere() {
    let versions = gateway_versions();
    for (i, (_, min, max)) in versions.iter().enumerate() {
        for v in *min..=*max {
            let pick = u16::try_from(v - min).expect("small");
            for prefix in 0..12 {
                let mut classic = vec![0u8; prefix];
                classic.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
                run(i, pick, classic, false);
                let mut compact = vec![0u8; prefix];
                compact.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
                run(i, pick, compact, true);
            }
        }
    }
}
