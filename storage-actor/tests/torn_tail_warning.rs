//! The warning recovery logs when it truncates a torn tail names the file and the offset.
//!
//! Alone in its own test binary: `tracing` caches per call site whether anyone listens, so a
//! subscriber installed for one thread while other tests run in parallel can miss events.

use raft_types::{HardState, NodeId, Term};
use std::fs;
use storage_actor::conformance::sample_entries;
use storage_actor::{FileLogStore, FileLogStoreConfig, LogStore};

/// Collects what a `tracing` subscriber writes, to check the warnings recovery logs.
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;
    fn make_writer(&'a self) -> CapturedLog {
        self.clone()
    }
}

#[test]
fn truncating_a_torn_tail_logs_a_warning_naming_file_and_offset() {
    let directory = tempfile::tempdir().expect("a temporary directory can be created");
    let mut config = FileLogStoreConfig::new(directory.path());
    // The file ends where the records do, so the test can cut into the last one.
    config.preallocate_bytes = 0;
    let (mut store, _) = FileLogStore::open(config.clone()).expect("fresh directory");
    store
        .save_hard_state(&HardState::new(Term(1), Some(NodeId(1))))
        .expect("save succeeds");
    store
        .append(&sample_entries(1, 1, 4))
        .expect("append succeeds");
    store.sync().expect("sync succeeds");
    let segment = directory.path().join("00000000000000000001.wal");
    let last_record_start = fs::metadata(&segment).expect("segment exists").len();
    store
        .append(&sample_entries(1, 5, 5))
        .expect("append succeeds");
    store.sync().expect("sync succeeds");
    drop(store);
    let cut_file = fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("segment is writable");
    cut_file
        .set_len(last_record_start + 5)
        .expect("segment can be cut");
    drop(cut_file);
    let captured = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        FileLogStore::open(config).expect("a torn tail recovers");
    });
    let output =
        String::from_utf8(captured.0.lock().expect("log lock").clone()).expect("the log is UTF-8");
    assert!(output.contains("WARN"), "{output}");
    assert!(output.contains("torn tail"), "{output}");
    assert!(output.contains(&segment.display().to_string()), "{output}");
    assert!(
        output.contains(&format!("offset={last_record_start}")),
        "{output}"
    );
}
