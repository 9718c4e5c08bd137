//! The divergence marker: `<data_dir>/DIVERGED`, written when the consensus core stops on a
//! divergence (a committed entry that differs from a peer's, see `raft_core::Divergence`), and
//! read at startup, where its presence stops the node before it opens its log.
//!
//! Why a file: the contradiction is between this node's data and another's. Restarting would
//! repeat it at best, and at worst (the leader's AppendEntries no longer reaching the index
//! that showed it) let the node serve from data it knows disagrees with the cluster. So the
//! node refuses to start until an operator has looked and removed the file (docs/OPERATIONS.md,
//! "A node stopped on a divergence").

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The marker's file name inside the data directory.
pub const MARKER_FILE_NAME: &str = "DIVERGED";

/// Where the marker of `data_dir` lives.
pub fn marker_path(data_dir: &Path) -> PathBuf {
    data_dir.join(MARKER_FILE_NAME)
}

/// Records `line` (what diverged, where) durably in `data_dir`. Failing to write it is logged,
/// not fatal: the node stops either way, and the log holds the same line.
pub fn record(data_dir: &Path, line: &str) {
    if let Err(error) = write_durably(data_dir, line) {
        tracing::error!(%error, path = %marker_path(data_dir).display(),
            "cannot write the divergence marker");
    }
}

fn write_durably(data_dir: &Path, line: &str) -> std::io::Result<()> {
    fs::create_dir_all(data_dir)?;
    let path = marker_path(data_dir);
    let mut file = fs::File::create(&path)?;
    writeln!(file, "{line}")?;
    writeln!(
        file,
        "This node refuses to start while this file exists. See docs/OPERATIONS.md, \
         \"A node stopped on a divergence\"."
    )?;
    file.sync_all()?;
    // The file's directory entry must be durable too, or a power cut could lose the marker.
    fs::File::open(data_dir)?.sync_all()
}

/// The first line of `data_dir`'s marker when there is one.
pub fn read(data_dir: &Path) -> std::io::Result<Option<String>> {
    match fs::read_to_string(marker_path(data_dir)) {
        Ok(text) => Ok(Some(text.lines().next().unwrap_or_default().to_string())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_divergence_is_read_back() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        assert_eq!(read(directory.path()).expect("readable"), None);
        record(
            directory.path(),
            "node 2 stopped: fatal divergence: entry 7",
        );
        assert_eq!(
            read(directory.path()).expect("readable"),
            Some("node 2 stopped: fatal divergence: entry 7".to_string())
        );
    }
}
