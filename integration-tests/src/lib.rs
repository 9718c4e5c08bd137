//! Cluster harnesses (in-process and multi-process), fault injection and checkers (filled by issue 5).
