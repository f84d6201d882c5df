//! JSON-lines file sink with size rotation: `audit.jsonl` is written until it would
//! pass `max_bytes`, then renamed to `audit.jsonl.1` (older ones shift up, the oldest
//! beyond `keep` is deleted). Each batch is synced before the shipper's cursor moves.

use crate::event::CloudEvent;
use crate::pipeline::{Sink, SinkError};
use async_trait::async_trait;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file sink.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
}

impl FileSink {
    /// Write to `path`, rotating at `max_bytes`, keeping `keep` rotated files.
    pub fn new(path: PathBuf, max_bytes: u64, keep: u32) -> Self {
        FileSink {
            path,
            max_bytes: max_bytes.max(1024),
            keep: keep.max(1),
        }
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }

    fn rotate(&self) -> std::io::Result<()> {
        let _ = std::fs::remove_file(self.rotated(self.keep));
        for n in (1..self.keep).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1))
    }

    fn write(&self, lines: &[String]) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut size = file_size(&self.path);
        let mut f = open(&self.path)?;
        for line in lines {
            let n = line.len() as u64 + 1;
            if size > 0 && size + n > self.max_bytes {
                f.sync_data()?;
                drop(f);
                self.rotate()?;
                f = open(&self.path)?;
                size = 0;
            }
            f.write_all(line.as_bytes())?;
            f.write_all(b"\n")?;
            size += n;
        }
        f.sync_data()
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn open(p: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(p)
}

#[async_trait]
impl Sink for FileSink {
    async fn deliver(&mut self, batch: &[(i64, CloudEvent)]) -> Result<(), SinkError> {
        let lines: Vec<String> = batch.iter().map(|(_, e)| e.to_json()).collect();
        let me = FileSink {
            path: self.path.clone(),
            max_bytes: self.max_bytes,
            keep: self.keep,
        };
        tokio::task::spawn_blocking(move || me.write(&lines))
            .await
            .map_err(|e| SinkError(format!("audit file task failed: {e}")))?
            .map_err(|e| SinkError(format!("audit file {}: {e}", self.path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: usize) -> (i64, CloudEvent) {
        (
            i as i64,
            CloudEvent::new(
                crate::types::IAM_REQUEST,
                "s",
                "keygate.iam",
                "CreateAPIKey",
                format!("r{i}"),
                chrono::Utc::now(),
            ),
        )
    }

    #[tokio::test]
    async fn rotates_by_size_and_keeps_every_line_until_the_oldest_file_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let mut s = FileSink::new(path.clone(), 2048, 2);
        for chunk in (0..40).collect::<Vec<_>>().chunks(5) {
            let batch: Vec<_> = chunk.iter().map(|i| ev(*i)).collect();
            s.deliver(&batch).await.expect("deliver");
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        for p in [&path, &s.rotated(1), &s.rotated(2)] {
            let text = read(p);
            assert!(!text.is_empty(), "{} exists", p.display());
            assert!(text.len() as u64 <= 2048, "{} within the size", p.display());
            for line in text.lines() {
                CloudEvent::from_json(line).expect("every line is one record");
            }
        }
        assert!(!s.rotated(3).exists(), "only `keep` rotated files");
        let newest = read(&path);
        assert!(
            newest.contains("\"r39\""),
            "the last record is in the live file"
        );
    }
}
