//! A request body at any advertised API and version: decode, plan (allowing or
//! denying), encode the denial — never a panic.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::RequestKind;
use keygate_core::{Operation, ResourceType};
use keygate_kafka::classify::{gateway_versions, plan, Plan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [api_pick, version_pick, allow, body @ ..] = data else {
        return;
    };
    let versions = gateway_versions();
    let (api, min, max) = versions[usize::from(*api_pick) % versions.len()];
    let span = i16::try_from(i32::from(max) - i32::from(min) + 1)
        .unwrap_or(1)
        .max(1);
    let version = min + i16::from(*version_pick) % span;
    let mut buf = Bytes::copy_from_slice(body);
    let Ok(req) = RequestKind::decode(api, &mut buf, version) else {
        return;
    };
    let allow = allow & 1 == 1;
    let policy = move |_: ResourceType, name: &str, _: Operation| allow && !name.starts_with('x');
    if let Some(Plan::Answer(resp)) = plan(&req, version, &policy) {
        let _ = resp.encode(&mut BytesMut::new(), version);
    }
});
