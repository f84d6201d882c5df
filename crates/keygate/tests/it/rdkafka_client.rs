//! The `rdkafka` crate (librdkafka, built from source) through the gateway.

use crate::gateway::world;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use rdkafka::Message;
use std::time::Duration;

fn config(bootstrap: &str, key: &str, secret: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", key)
        .set("sasl.password", secret)
        .set("fetch.wait.max.ms", "10")
        .set("message.timeout.ms", "10000");
    c
}

#[test]
fn rdkafka_produces_consumes_and_sees_denials() {
    let w = world(&["orders", "payments"], "");
    let (_, k, s) = w.app(
        "rust-app",
        &[
            ("TOPIC", "orders", "WRITE", "ALLOW"),
            ("TOPIC", "orders", "READ", "ALLOW"),
            ("GROUP", "rust-group", "READ", "ALLOW"),
        ],
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let producer: FutureProducer = config(&w.bootstrap, &k, &s)
            .set("enable.idempotence", "false")
            .create()
            .expect("producer");
        for i in 0..5 {
            let payload = format!("rust-{i}");
            producer
                .send(
                    FutureRecord::<(), _>::to("orders").payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("produce to orders: {e}"));
        }
        let denied = producer
            .send(
                FutureRecord::<(), _>::to("payments").payload("x"),
                Duration::from_secs(10),
            )
            .await;
        match denied {
            Err((KafkaError::MessageProduction(code), _)) => {
                assert_eq!(code, RDKafkaErrorCode::TopicAuthorizationFailed)
            }
            other => panic!("expected TopicAuthorizationFailed, got {other:?}"),
        }
        let consumer: StreamConsumer = config(&w.bootstrap, &k, &s)
            .set("group.id", "rust-group")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&["orders"]).expect("subscribe");
        let mut got = Vec::new();
        while got.len() < 5 {
            let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .expect("timed out waiting for messages")
                .expect("consume");
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
        assert_eq!(got, (0..5).map(|i| format!("rust-{i}")).collect::<Vec<_>>());
    });
}

/// Produce five messages to `orders` and read them back in `group`, over TLS
/// (SASL_SSL, trusting `ca`) when given.
pub fn round_trip(
    bootstrap: &str,
    key: &str,
    secret: &str,
    ca: Option<&std::path::Path>,
    group: &str,
) {
    let mut c = config(bootstrap, key, secret);
    if let Some(ca) = ca {
        c.set("security.protocol", "SASL_SSL")
            .set("ssl.ca.location", ca.display().to_string());
    }
    round_trip_with(c, group);
}

/// As [`round_trip`], authenticating with a client certificate (SSL, no SASL).
pub fn round_trip_mtls(
    bootstrap: &str,
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
    group: &str,
) {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", ca.display().to_string())
        .set("ssl.certificate.location", cert.display().to_string())
        .set("ssl.key.location", key.display().to_string())
        .set("fetch.wait.max.ms", "10")
        .set("message.timeout.ms", "10000");
    round_trip_with(c, group);
}

fn round_trip_with(config: ClientConfig, group: &str) {
    let base = || config.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let producer: FutureProducer = base()
            .set("enable.idempotence", "false")
            .create()
            .expect("producer");
        let tag = format!("{group}-{}", std::process::id());
        for i in 0..5 {
            producer
                .send(
                    FutureRecord::<(), _>::to("orders").payload(&format!("{tag}-{i}")),
                    Duration::from_secs(10),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("produce to orders: {e}"));
        }
        let consumer: StreamConsumer = base()
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&["orders"]).expect("subscribe");
        let mut got = Vec::new();
        while got.len() < 5 {
            let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .expect("timed out waiting for messages")
                .expect("consume");
            let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            if v.starts_with(&tag) {
                got.push(v);
            }
        }
        assert_eq!(
            got,
            (0..5).map(|i| format!("{tag}-{i}")).collect::<Vec<_>>()
        );
    });
}
