//! Whatever an authenticated client sends as a request body, the gateway's path —
//! decode (kafka-protocol), plan (the authorizer's checks), the denial encoded at the
//! request's version — returns a decision or an error and never panics, at every
//! version of every API the gateway advertises, whether the checks allow or deny.
//!
//! Bodies are drawn mostly from the bytes that steer a Kafka decoder (0, 1, -1, small
//! lengths), so they get past the first fields into arrays, strings and tagged fields.
//! Some claim billions of array elements or bytes. The test process runs under an
//! address-space limit (RLIMIT_AS, 512 MiB — what `vm.overcommit_memory=2` means for a
//! process: a reservation the machine cannot back fails) with the system allocator, so
//! a decoder that reserves what a length claims before reading it aborts the test. The
//! vendored kafka-protocol checks every length against the bytes left in the frame
//! (`vendor/kafka-protocol/KEYGATE-PATCH.md`); without that patch this test aborts.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::RequestKind;
use keygate_core::{Operation, ResourceType};
use keygate_kafka::classify::{gateway_versions, plan, Plan};
use proptest::prelude::*;

/// The address space this test process may use: far below what one claimed array of
/// 2^31 elements would reserve, far above what the decoder needs for a 200-byte body.
const ADDRESS_SPACE: u64 = 512 << 20;

fn limit_address_space() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        rlimit::setrlimit(rlimit::Resource::AS, ADDRESS_SPACE, ADDRESS_SPACE)
            .expect("setrlimit(RLIMIT_AS)");
    });
}

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
    limit_address_space();
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

/// A huge length at every field position a decoder reaches along a body of zeros (or
/// of ones, the empty compact string and array): 2^31 - 1 as a classic array or bytes
/// length, 2^32 - 1 as a compact one, for every advertised API and version. The
/// decoder must refuse each without reserving what it claims.
#[test]
fn huge_lengths_are_refused_everywhere() {
    let lengths: [&[u8]; 3] = [
        &[0x7f, 0xff, 0xff, 0xff],
        &[0xff, 0xff, 0xff, 0xff, 0x0f],
        &[0x7f, 0xff],
    ];
    let versions = gateway_versions();
    for (i, (_, min, max)) in versions.iter().enumerate() {
        for v in *min..=*max {
            let pick = u16::try_from(v - min).expect("small");
            for filler in [0u8, 1] {
                for prefix in 0..48 {
                    for length in lengths {
                        let mut body = vec![filler; prefix];
                        body.extend_from_slice(length);
                        body.extend_from_slice(&[filler; 8]);
                        run(i, pick, body, prefix % 2 == 0);
                    }
                }
            }
        }
    }
}

/// The limit is real: reserving what one claimed array would reserve fails here.
#[test]
fn the_address_space_limit_bites() {
    limit_address_space();
    let mut v: Vec<u64> = Vec::new();
    assert!(
        v.try_reserve_exact(1 << 28).is_err(),
        "2 GiB reserved under a 512 MiB limit"
    );
}
