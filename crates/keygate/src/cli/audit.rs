//! `keygate audit-log search|tail`: the audit log over `GET /audit/v1/events`.

use super::client::{enc, Client};
use super::output::{print_list, Col, Format};
use super::parse_duration;
use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCmd {
    /// Records matching filters, oldest first.
    Search {
        #[command(flatten)]
        f: Filters,
        /// Only records at or after this time (RFC 3339).
        #[arg(long, conflicts_with = "since")]
        start_time: Option<String>,
        /// Only records from this long ago on (30m, 12h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only records before this time (RFC 3339).
        #[arg(long)]
        end_time: Option<String>,
        /// At most this many records.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// The newest records; with -f, keep printing new ones as they arrive.
    Tail {
        #[command(flatten)]
        f: Filters,
        /// Keep following the log.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many of the newest records to print first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// How often to ask for new records while following, in milliseconds.
        #[arg(long, default_value_t = 1000, hide = true)]
        poll_ms: u64,
    },
}

#[derive(Debug, Args)]
pub(crate) struct Filters {
    /// Principal, e.g. User:sa-abc123.
    #[arg(long)]
    principal: Option<String>,
    /// Method, e.g. kafka.Authentication, kafka.CreateTopics, CreateAPIKey.
    #[arg(long)]
    method: Option<String>,
    /// Resource CRN; a trailing * matches by prefix.
    #[arg(long)]
    resource: Option<String>,
    /// Only allowed calls.
    #[arg(long, conflicts_with = "denied")]
    granted: bool,
    /// Only denied calls.
    #[arg(long)]
    denied: bool,
    /// Only records of this API key.
    #[arg(long = "api-key")]
    key: Option<String>,
}

impl Filters {
    fn query(&self) -> Vec<String> {
        let mut q = Vec::new();
        let mut add = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                q.push(format!("{k}={}", enc(v)));
            }
        };
        add("principal", &self.principal);
        add("method", &self.method);
        add("resource", &self.resource);
        add("identifier", &self.key);
        if self.granted {
            q.push("granted=true".into());
        }
        if self.denied {
            q.push("granted=false".into());
        }
        q
    }
}

pub(crate) const EVENT_COLS: &[Col] = &[
    ("Time", "/time"),
    ("Method", "/data/methodName"),
    ("Principal", "/data/authenticationInfo/principal"),
    ("Credential", "/data/authenticationInfo/metadata/identifier"),
    ("Resource", "/data/resourceName"),
    ("Granted", "/data/authorizationInfo/granted"),
    ("Result", "/data/result/status"),
    ("Client", "/data/requestMetadata/clientAddress"),
];

fn page(cl: &Client, q: &[String]) -> anyhow::Result<(Vec<Value>, Option<String>)> {
    let page = cl.get(&format!("/audit/v1/events?{}", q.join("&")))?;
    let data = page
        .get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let token = page
        .pointer("/metadata/next_page_token")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((data, token))
}

fn print_lines(fmt: Format, events: &[Value]) -> anyhow::Result<()> {
    // Following prints one JSON document per line (JSON lines), whatever -o says.
    let mut out = std::io::stdout().lock();
    for e in events {
        match fmt {
            Format::Human => {
                let get = |p: &str| match e.pointer(p) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => "-".into(),
                    Some(v) => v.to_string(),
                };
                writeln!(
                    out,
                    "{} {} {} {} {} granted={} {}",
                    get("/time"),
                    get("/data/methodName"),
                    get("/data/authenticationInfo/principal"),
                    get("/data/authenticationInfo/metadata/identifier"),
                    get("/data/resourceName"),
                    get("/data/authorizationInfo/granted"),
                    get("/data/result/status"),
                )?;
            }
            _ => writeln!(out, "{}", serde_json::to_string(e)?)?,
        }
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn run(c: AuditCmd, fmt: Format) -> anyhow::Result<()> {
    let cl = super::client()?;
    match c {
        AuditCmd::Search {
            f,
            start_time,
            since,
            end_time,
            limit,
        } => {
            let mut q = f.query();
            let start = match since {
                Some(s) => Some((chrono::Utc::now() - parse_duration(&s)?).to_rfc3339()),
                None => start_time,
            };
            if let Some(s) = start {
                q.push(format!("start_time={}", enc(&s)));
            }
            if let Some(e) = end_time {
                q.push(format!("end_time={}", enc(&e)));
            }
            let mut out: Vec<Value> = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let want = (limit - out.len()).clamp(1, 1000);
                let mut qq = q.clone();
                qq.push(format!("page_size={want}"));
                if let Some(t) = &token {
                    qq.push(format!("page_token={t}"));
                }
                let (data, next) = page(&cl, &qq)?;
                let n = data.len();
                out.extend(data);
                token = next;
                if n < want || out.len() >= limit || token.is_none() {
                    break;
                }
            }
            print_list(fmt, &out, EVENT_COLS)
        }
        AuditCmd::Tail {
            f,
            follow,
            lines,
            poll_ms,
        } => {
            if lines > 1000 {
                bail!("--lines must be at most 1000");
            }
            let q = f.query();
            // The newest `lines`, then everything after the newest one seen.
            let mut first = q.clone();
            first.push("order=desc".into());
            first.push(format!("page_size={}", lines.max(1)));
            let page0 = cl.get(&format!("/audit/v1/events?{}", first.join("&")))?;
            let mut newest = page0
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            // Following continues after the newest record shown (the first of a
            // newest-first page).
            let mut pos = page0
                .pointer("/metadata/prev_page_token")
                .and_then(Value::as_str)
                .map(str::to_owned);
            newest.truncate(lines);
            newest.reverse();
            if !follow {
                return print_list(fmt, &newest, EVENT_COLS);
            }
            print_lines(fmt, &newest)?;
            loop {
                std::thread::sleep(Duration::from_millis(poll_ms.max(50)));
                let mut qq = q.clone();
                qq.push("page_size=1000".into());
                if let Some(t) = &pos {
                    qq.push(format!("page_token={t}"));
                }
                let (data, next) = page(&cl, &qq)?;
                if !data.is_empty() {
                    print_lines(fmt, &data)?;
                    pos = next;
                }
            }
        }
    }
}
