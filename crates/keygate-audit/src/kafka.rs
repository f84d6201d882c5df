//! Kafka topic sink: a real producer (librdkafka through the `rdkafka` crate) with
//! `acks=all` and one request in flight, so a batch is confirmed only when the broker
//! has every record, and retries cannot reorder. Records are keyed by their source,
//! so all records of one cluster (or of the control plane) land in one partition, in
//! order. The topic is created if missing (brokers such as Tansu do not auto-create).

use crate::event::CloudEvent;
use crate::pipeline::{Sink, SinkError};
use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Where and how to write.
#[derive(Clone)]
pub struct KafkaSinkConfig {
    /// `host:port[,…]`.
    pub bootstrap: String,
    /// Topic.
    pub topic: String,
    /// Partitions when creating the topic.
    pub partitions: i32,
    /// Extra librdkafka settings (`security.protocol`, `sasl.*`, …).
    pub extra: Vec<(String, String)>,
    /// How long one batch may wait for the broker before it is retried.
    pub timeout: Duration,
}

impl std::fmt::Debug for KafkaSinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `extra` may hold a SASL password.
        f.debug_struct("KafkaSinkConfig")
            .field("bootstrap", &self.bootstrap)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// The Kafka sink.
pub struct KafkaSink {
    cfg: KafkaSinkConfig,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    topic_ready: bool,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// Build the clients (they connect lazily).
    pub fn new(cfg: KafkaSinkConfig) -> Result<Self, SinkError> {
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", &cfg.bootstrap)
            .set("client.id", "keygate-audit")
            .set("log_level", "3");
        for (k, v) in &cfg.extra {
            base.set(k, v);
        }
        let mut p = base.clone();
        p.set("acks", "all")
            .set("enable.idempotence", "false")
            .set("max.in.flight.requests.per.connection", "1")
            .set("linger.ms", "5")
            .set("message.timeout.ms", cfg.timeout.as_millis().to_string());
        let producer: FutureProducer = p
            .create()
            .map_err(|e| SinkError(format!("audit Kafka producer: {e}")))?;
        let admin: AdminClient<DefaultClientContext> = base
            .create()
            .map_err(|e| SinkError(format!("audit Kafka admin client: {e}")))?;
        Ok(KafkaSink {
            cfg,
            producer,
            admin,
            topic_ready: false,
        })
    }

    async fn ensure_topic(&mut self) -> Result<(), SinkError> {
        if self.topic_ready {
            return Ok(());
        }
        let topic = NewTopic::new(
            &self.cfg.topic,
            self.cfg.partitions.max(1),
            TopicReplication::Fixed(-1),
        );
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
        let res = self
            .admin
            .create_topics([&topic], &opts)
            .await
            .map_err(|e| SinkError(format!("create audit topic: {e}")))?;
        for r in res {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(SinkError(format!("create audit topic {t}: {code}")));
                }
            }
        }
        self.topic_ready = true;
        Ok(())
    }
}

#[async_trait]
impl Sink for KafkaSink {
    async fn deliver(&mut self, batch: &[(i64, CloudEvent)]) -> Result<(), SinkError> {
        self.ensure_topic().await?;
        let mut pending = Vec::with_capacity(batch.len());
        for (_, e) in batch {
            let payload = e.to_json();
            let rec = FutureRecord::to(&self.cfg.topic)
                .key(e.source.as_str())
                .payload(payload.as_str())
                .headers(
                    rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                        key: "ce_id",
                        value: Some(e.id.as_str()),
                    }),
                );
            match self.producer.send_result(rec) {
                Ok(f) => pending.push(f),
                Err((err, _)) => {
                    return Err(SinkError(format!("queue audit record: {err}")));
                }
            }
        }
        let mut first_err = None;
        for f in pending {
            let r = match f.await {
                Ok(Ok(_)) => continue,
                Ok(Err((e, _))) => e.to_string(),
                Err(_) => "producer dropped the record".to_owned(),
            };
            first_err.get_or_insert(r);
        }
        match first_err {
            None => Ok(()),
            Some(e) => {
                // The broker may have lost the topic (restarted without storage):
                // check it again before the retry.
                self.topic_ready = false;
                Err(SinkError(format!("deliver audit records: {e}")))
            }
        }
    }
}
