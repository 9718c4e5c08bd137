//! `POST /v1/snapshot`, `GET /v1/snapshot`, and the snapshot and log figures `/v1/status` and
//! `/metrics` report.
//!
//! A snapshot is this node's own (each node snapshots its state machine by itself), so neither
//! route is forwarded to the leader: `POST` snapshots the node it is sent to, `GET` streams that
//! node's newest complete snapshot file, byte for byte as the store holds it (the format of
//! docs/SNAPSHOT_FORMAT.md, which `raft-node restore` verifies before it trusts a byte).
//!
//! The file is read in [`DOWNLOAD_CHUNK_BYTES`] pieces on the blocking thread pool: a snapshot
//! can be gigabytes, so it is never read whole, never held whole in memory, and no disk read
//! runs on an HTTP worker thread.

use crate::http_api::api_error::ApiError;
use crate::http_api::api_state::ApiState;
use crate::http_api::query::no_query_parameters;
use actix_web::{web, HttpRequest, HttpResponse};
use raft_proto::applier::TakeSnapshot;
use raft_proto::snapshot::SnapshotFile;
use raft_types::SnapshotMeta;
use serde::Serialize;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Bytes read from the snapshot file per blocking read while streaming it.
pub const DOWNLOAD_CHUNK_BYTES: usize = 1 << 20;

/// How long `POST /v1/snapshot` waits for the snapshot to be durable. Far longer than a write's
/// `request_timeout_ms`: writing the state of a large store takes seconds, not milliseconds.
pub const TAKE_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(300);

/// Response headers of `GET /v1/snapshot`, describing the file in the body.
pub const HEADER_INDEX: &str = "x-raft-snapshot-index";
pub const HEADER_TERM: &str = "x-raft-snapshot-term";
pub const HEADER_SIZE_BYTES: &str = "x-raft-snapshot-size-bytes";
pub const HEADER_FILE_CHECKSUM: &str = "x-raft-snapshot-file-checksum";
pub const HEADER_MEMBERS: &str = "x-raft-snapshot-members";

/// The snapshot and log figures of `/v1/status` (field names as in JSON) and `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotStatus {
    /// Last index the newest complete snapshot covers; 0 without one.
    pub snapshot_index: u64,
    /// Term of that entry; 0 without a snapshot.
    pub snapshot_term: u64,
    /// The snapshot file's length; 0 without one.
    pub snapshot_size_bytes: u64,
    /// How long the applier's last successful snapshot write took (0 before the first).
    pub snapshot_last_write_duration_ms: u64,
    /// Whether the applier is writing a snapshot now.
    pub snapshot_write_in_progress: bool,
    /// Snapshots the applier wrote since the process started.
    pub snapshots_taken_total: u64,
    /// Snapshot writes that failed since the process started.
    pub snapshot_failures_total: u64,
    /// Snapshots the state machine was restored from (at start, or sent by a leader).
    pub snapshots_restored_total: u64,
    /// First index of the log held after the snapshot (`snapshot_index + 1` right after a
    /// compaction).
    pub log_first_index: u64,
    /// Entries in the log: `last_log_index - log_first_index + 1`, 0 when empty.
    pub log_entries: u64,
    /// Bytes of the write-ahead log's segment files; `None` for the memory engine.
    pub log_size_bytes: Option<u64>,
}

/// Gathers [`SnapshotStatus`]. The segment sizes come from the disk, so they are read on the
/// blocking pool; everything else is in memory.
pub async fn snapshot_status(state: &ApiState) -> SnapshotStatus {
    let mut status = SnapshotStatus::default();
    if let Some(newest) = state.snapshot_store.newest() {
        status.snapshot_index = newest.last_log_id.index.0;
        status.snapshot_term = newest.last_log_id.term.0;
        status.snapshot_size_bytes = newest.size_bytes;
    }
    if let Some(metrics) = &state.snapshot_metrics {
        let values = metrics.read();
        status.snapshot_last_write_duration_ms = values.last_write_duration_ms;
        status.snapshot_write_in_progress = values.write_in_progress;
        status.snapshots_taken_total = values.taken;
        status.snapshot_failures_total = values.failures;
        status.snapshots_restored_total = values.restored;
    }
    if let Some(metrics) = &state.raft_metrics {
        let raft = metrics.snapshot();
        status.log_first_index = raft.first_log_index.0;
        status.log_entries = (raft.last_log_index.0 + 1).saturating_sub(raft.first_log_index.0);
    }
    if let Some(directory) = state.wal_directory.clone() {
        match web::block(move || segment_bytes(&directory)).await {
            Ok(Ok(bytes)) => status.log_size_bytes = Some(bytes),
            Ok(Err(error)) => tracing::warn!(%error, "cannot measure the write-ahead log"),
            Err(error) => tracing::warn!(%error, "cannot measure the write-ahead log"),
        }
    }
    status
}

/// The total length of the segment files in `directory` (other files there are not log).
fn segment_bytes(directory: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for item in std::fs::read_dir(directory)? {
        let item = item?;
        let name = item.file_name();
        let is_segment = name
            .to_str()
            .and_then(storage_actor::wal_segment::parse_segment_name)
            .is_some();
        if is_segment {
            // A segment removed by compaction between the listing and here is simply gone.
            match item.metadata() {
                Ok(metadata) => total += metadata.len(),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
    }
    Ok(total)
}

/// The JSON description of a snapshot, as `POST /v1/snapshot` answers it.
pub fn snapshot_json(snapshot: &SnapshotMeta) -> serde_json::Value {
    json!({
        "index": snapshot.last_log_id.index.0,
        "term": snapshot.last_log_id.term.0,
        "size_bytes": snapshot.size_bytes,
        "file_checksum": format_checksum(snapshot.file_checksum),
        "members": snapshot
            .membership
            .all_voters()
            .iter()
            .map(|member| member.0)
            .collect::<Vec<_>>(),
        "learners": snapshot
            .membership
            .learners
            .iter()
            .map(|member| member.0)
            .collect::<Vec<_>>(),
    })
}

/// A file checksum as the API writes it: 8 lowercase hex digits, as docs/SNAPSHOT_FORMAT.md
/// and the snapshot file names do.
pub fn format_checksum(checksum: u32) -> String {
    format!("{checksum:08x}")
}

/// `POST /v1/snapshot`: snapshot this node's state machine now; `200` once it is durable.
///
/// The snapshot covers at least every entry this node knew committed when the request arrived
/// (on the leader: every acknowledged write). The applier answers a request that comes while
/// it is writing a snapshot with that one, which may have begun before those entries were
/// applied, and a follower may not have applied them yet: so the request is repeated until the
/// snapshot reaches that index.
pub async fn take_snapshot(
    request: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    no_query_parameters(&request)?;
    let required = state
        .raft_metrics
        .as_ref()
        .map_or(0, |metrics| metrics.snapshot().commit_index.0);
    let deadline = Instant::now() + TAKE_SNAPSHOT_TIMEOUT;
    loop {
        let snapshot = request_snapshot(&state, deadline).await?;
        if snapshot.last_log_id.index.0 >= required {
            return Ok(HttpResponse::Ok().json(snapshot_json(&snapshot)));
        }
        if Instant::now() >= deadline {
            return Err(not_durable_in_time());
        }
        tokio::time::sleep(RETAKE_INTERVAL).await;
    }
}

/// How long `POST /v1/snapshot` waits before asking again for a snapshot that reaches the
/// commit index (the applier is still catching up, or was writing an older one).
const RETAKE_INTERVAL: Duration = Duration::from_millis(10);

fn not_durable_in_time() -> ApiError {
    ApiError::outcome_unknown(format!(
        "the snapshot was not durable within {} s; it may still complete",
        TAKE_SNAPSHOT_TIMEOUT.as_secs()
    ))
}

/// One `TakeSnapshot` to the applier, answered by `deadline`.
async fn request_snapshot(state: &ApiState, deadline: Instant) -> Result<SnapshotMeta, ApiError> {
    let (responder, answer) = oneshot::channel();
    state
        .ports
        .take_snapshot
        .try_send(TakeSnapshot { responder })
        .map_err(|error| {
            ApiError::unavailable(format!("the applier cannot take the request: {error}"))
        })?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(remaining, answer).await {
        Err(_elapsed) => Err(not_durable_in_time()),
        Ok(Err(_dropped)) => Err(ApiError::unavailable(
            "the applier dropped the snapshot request (stopping?)",
        )),
        Ok(Ok(Err(reason))) => Err(ApiError::unavailable(format!(
            "cannot take a snapshot: {reason}"
        ))),
        Ok(Ok(Ok(snapshot))) => Ok(snapshot),
    }
}

/// `GET /v1/snapshot`: the newest complete snapshot file, streamed.
pub async fn download_snapshot(
    request: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    no_query_parameters(&request)?;
    let Some(newest) = state.snapshot_store.newest() else {
        return Err(ApiError::NotFound {
            code: "no_snapshot",
            message: "this node has no snapshot yet (POST /v1/snapshot takes one)".to_string(),
        });
    };
    // Opened before answering, so a file retention removed a moment ago is a clean error and
    // not a cut body; once open, the file stays readable even if retention removes it.
    let store = Arc::clone(&state.snapshot_store);
    let id = newest.id();
    let file = web::block(move || store.open(&id))
        .await
        .map_err(|error| ApiError::Internal {
            message: format!("cannot open {newest}: {error}"),
        })?
        .map_err(|error| ApiError::unavailable(format!("cannot open {newest}: {error}")))?;
    let meta = file.meta().clone();
    let members: Vec<String> = meta
        .membership
        .all_voters()
        .iter()
        .map(|member| member.0.to_string())
        .collect();
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((HEADER_INDEX, meta.last_log_id.index.0.to_string()))
        .insert_header((HEADER_TERM, meta.last_log_id.term.0.to_string()))
        .insert_header((HEADER_SIZE_BYTES, meta.size_bytes.to_string()))
        .insert_header((HEADER_FILE_CHECKSUM, format_checksum(meta.file_checksum)))
        .insert_header((HEADER_MEMBERS, members.join(",")))
        .no_chunking(meta.size_bytes)
        .streaming(file_chunks(file, meta.size_bytes)))
}

/// The bytes of `file`, `size_bytes` long, as a stream of blocking reads. A read that fails
/// ends the stream with an error, which cuts the response short of its `Content-Length`: the
/// client sees a broken download, never a shorter file passed off as whole.
fn file_chunks(
    file: Arc<dyn SnapshotFile>,
    size_bytes: u64,
) -> impl futures::Stream<Item = Result<bytes::Bytes, actix_web::Error>> {
    futures::stream::try_unfold(0u64, move |offset| {
        let file = Arc::clone(&file);
        async move {
            if offset >= size_bytes {
                return Ok(None);
            }
            let length = DOWNLOAD_CHUNK_BYTES.min((size_bytes - offset) as usize);
            let chunk = web::block(move || file.read_at(offset, length))
                .await
                .map_err(actix_web::error::ErrorInternalServerError)?
                .map_err(|error| {
                    tracing::warn!(%error, offset, "snapshot download cut short");
                    actix_web::error::ErrorInternalServerError(error.to_string())
                })?;
            if chunk.is_empty() {
                let message = format!("snapshot file ends at byte {offset}, expected {size_bytes}");
                tracing::warn!("{message}");
                return Err(actix_web::error::ErrorInternalServerError(message));
            }
            let next = offset + chunk.len() as u64;
            Ok(Some((chunk, next)))
        }
    })
}
