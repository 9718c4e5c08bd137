//! The log writer: durable WAL and in-memory store behind the storage port (filled by issue 3).
