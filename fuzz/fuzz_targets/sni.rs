//! SNI names as the single TLS port routes them (the ClientHello's server name, any
//! bytes a client sends): a name routes to a cluster's bootstrap or one broker, or to
//! nothing — never a panic; a routed name's canonical form routes the same way.
#![no_main]

use keygate_kafka::conn::Target;
use keygate_kafka::SniConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let sni = SniConfig {
        domain: "kafka.example.com".into(),
        port: 9092,
    };
    let Some((cluster, target)) = sni.route(name) else {
        return;
    };
    assert!(!cluster.contains('.'), "a cluster id never spans labels");
    let canonical = match target {
        Target::Broker(id) => sni.broker_host(&cluster, id),
        Target::Bootstrap => sni.bootstrap(&cluster).trim_end_matches(":9092").to_owned(),
    };
    assert_eq!(sni.route(&canonical), Some((cluster, target)), "{name:?}");
});
