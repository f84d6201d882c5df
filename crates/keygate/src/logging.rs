//! The server's log: tracing to stderr, with two guards against what clients send.
//!
//! - **Rate per call site.** Each log statement may write at most
//!   [`LINES_PER_SECOND`] lines a second; the rest are counted and reported once
//!   every ten seconds (`log lines suppressed`). A flood of denied requests or failed
//!   logins costs the log a few lines a second, not one per request.
//! - **Scrubbing and a length cap.** Every formatted line passes through
//!   [`keygate_core::redact::scrub`] (a keygate secret or a JWT that reached a log field
//!   anyway is replaced) and is cut at [`MAX_LINE`] bytes.
//!
//! Both are the last line of defence: the call sites already log only identifiers
//! (`redact::key_id`, `redact::text`).

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Lines one call site may write per second.
pub(crate) const LINES_PER_SECOND: u32 = 20;
/// The longest line written.
pub(crate) const MAX_LINE: usize = 4096;

static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

struct Sites {
    start: Instant,
    counts: HashMap<tracing::callsite::Identifier, (u64, u32)>,
}

static SITES: Mutex<Option<Sites>> = Mutex::new(None);

/// The per-call-site rate as a per-layer filter. `event_enabled` is consulted for
/// every event, whatever interest the call site has cached.
struct PerSiteRate;

impl<S> tracing_subscriber::layer::Filter<S> for PerSiteRate {
    fn enabled(
        &self,
        _: &tracing::Metadata<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        true
    }

    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        admit(event.metadata())
    }
}

/// Whether an event of this call site may be written now.
fn admit(meta: &tracing::Metadata<'_>) -> bool {
    let mut g = SITES.lock().unwrap_or_else(|e| e.into_inner());
    let sites = g.get_or_insert_with(|| Sites {
        start: Instant::now(),
        counts: HashMap::new(),
    });
    let second = sites.start.elapsed().as_secs();
    let (at, n) = sites.counts.entry(meta.callsite()).or_insert((second, 0));
    if *at != second {
        *at = second;
        *n = 0;
    }
    *n += 1;
    if *n > LINES_PER_SECOND {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    true
}

/// Lines suppressed since the last call (for the periodic report).
pub(crate) fn take_suppressed() -> u64 {
    SUPPRESSED.swap(0, Ordering::Relaxed)
}

/// Stderr, one formatted event per write: scrubbed and capped.
struct Scrubbed;

impl Write for Scrubbed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let clean = keygate_core::redact::scrub(&text);
        let mut out = clean.as_bytes();
        let cut = out.len() > MAX_LINE;
        if cut {
            out = &out[..MAX_LINE];
        }
        let mut err = std::io::stderr().lock();
        err.write_all(out)?;
        if cut {
            err.write_all(b"...<line cut>\n")?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

type FilterHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;
static FILTER: std::sync::OnceLock<FilterHandle> = std::sync::OnceLock::new();

/// Install the subscriber: `KEYGATE_LOG` (or `default`) as the filter, replaceable
/// later by [`set_level`].
pub(crate) fn init(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let _ = FILTER.set(handle);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(|| Scrubbed)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(PerSiteRate);
    tracing_subscriber::registry().with(filter).with(fmt).init();
}

/// Replace the filter with `level` (an `EnvFilter` directive such as `debug` or
/// `info,keygate_kafka=debug`), unless `KEYGATE_LOG` is set: the environment wins over
/// the file, at start and on reload.
pub(crate) fn set_level(level: &str) -> anyhow::Result<()> {
    if std::env::var_os("KEYGATE_LOG").is_some() {
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("log_level {level:?}: {e}"))?;
    if let Some(h) = FILTER.get() {
        h.reload(filter)?;
    }
    Ok(())
}

/// Report suppressed lines every ten seconds, forever.
pub(crate) async fn report_suppressed() {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        every.tick().await;
        let n = take_suppressed();
        if n > 0 {
            tracing::warn!(
                lines = n,
                per_site_per_second = LINES_PER_SECOND,
                "log lines suppressed (repeated too often)"
            );
        }
    }
}
