//! The JSON-lines audit sink (`SIGNET_AUDIT_SINK`): a copy of every committed audit record, one
//! JSON object per line, on stdout or appended to a file, for SIEM shipping. It tails the audit
//! table, so it never slows the token endpoint; a file sink resumes after the last record it
//! holds, so a crash or restart leaves no gap and no duplicate.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use signet_core::config::AuditSink;
use signet_http::admin::audit::record_json;
use signet_store::Store;

/// How often the sink looks for new records.
const POLL: Duration = Duration::from_millis(200);
const BATCH: u32 = 1000;

/// Starts the sink in the background. Returns an error the operator can act on when the file
/// cannot be written at all.
pub async fn spawn(store: Store, sink: AuditSink) -> Result<(), String> {
    let newest = store
        .last_audit_id()
        .await
        .map_err(|e| format!("audit sink: {e}"))?;
    let after = match &sink {
        // Stdout has no memory: from the records after start.
        AuditSink::Stdout => newest,
        AuditSink::File(path) => match last_id_in(path) {
            Ok(Some(id)) => id,
            // A new (or rotated) file starts with the records after start.
            Ok(None) => newest,
            Err(e) => return Err(format!("audit sink {}: {e}", path.display())),
        },
    };
    if let AuditSink::File(path) = &sink {
        // Fail at start, not silently later, when the file cannot be written.
        append(path, b"").map_err(|e| format!("audit sink {}: {e}", path.display()))?;
    }
    tokio::spawn(run(store, sink, after));
    Ok(())
}

async fn run(store: Store, sink: AuditSink, mut after: i64) {
    let mut failing = false;
    loop {
        let records = match store.audit_after(after, BATCH).await {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %e, "audit sink: cannot read the audit log");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        let Some(last) = records.last().map(|r| r.id) else {
            tokio::time::sleep(POLL).await;
            continue;
        };
        // Ids follow one another; a gap is records deleted (by retention, while the sink was
        // behind or stopped) before the sink copied them. Said once per gap, and copied on.
        if let Some(first) = records.first().map(|r| r.id)
            && after > 0
            && first > after + 1
        {
            tracing::warn!(
                from = after + 1,
                to = first - 1,
                "audit sink: records were deleted before the sink copied them"
            );
        }
        let mut lines = Vec::with_capacity(records.len() * 300);
        for record in &records {
            lines.extend_from_slice(record_json(record).to_string().as_bytes());
            lines.push(b'\n');
        }
        let written = match &sink {
            AuditSink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&lines).and_then(|()| out.flush())
            }
            AuditSink::File(path) => append(path, &lines),
        };
        match written {
            Ok(()) => {
                if failing {
                    tracing::info!("audit sink: writing again");
                    failing = false;
                }
                after = last;
            }
            Err(e) => {
                // Retried from the same record: the sink falls behind, it does not skip.
                if !failing {
                    tracing::error!(error = %e, "audit sink: cannot write; retrying");
                    failing = true;
                }
                tokio::time::sleep(POLL * 5).await;
            }
        }
        if records.len() < BATCH as usize {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Appends `bytes` to the file (created 0600 if missing; opened per batch, so a rotated file
/// is recreated), completing a line a crash left half-written first.
fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    let length = file.metadata()?.len();
    if length > 0 && !bytes.is_empty() {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(length - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
    }
    file.write_all(bytes)?;
    file.sync_data()
}

/// The id of the last complete record in the file, if any.
fn last_id_in(path: &PathBuf) -> std::io::Result<Option<i64>> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let length = file.metadata()?.len();
    let start = length.saturating_sub(256 * 1024);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let complete = match tail.iter().rposition(|b| *b == b'\n') {
        Some(end) => &tail[..end],
        None => return Ok(None),
    };
    Ok(complete
        .split(|b| *b == b'\n')
        .rev()
        .find_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .and_then(|record| record["id"].as_i64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_resumes_after_its_last_complete_record() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.jsonl");
        assert_eq!(last_id_in(&path).expect("read"), None);
        append(&path, b"{\"id\":1}\n{\"id\":2}\n").expect("append");
        assert_eq!(last_id_in(&path).expect("read"), Some(2));
        // A crash mid-line: the half line is not a record, and the next write starts afresh.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"id\":3,\"ev"))
            .expect("write");
        assert_eq!(last_id_in(&path).expect("read"), Some(2));
        append(&path, b"{\"id\":3}\n").expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().last(), Some("{\"id\":3}"));
        assert_eq!(last_id_in(&path).expect("read"), Some(3));
    }
}
