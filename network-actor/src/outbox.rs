//! `Outbox`: the bounded queue between the network actor and the task sending to one peer.
//!
//! The actor encodes each message straight into the outbox as a frame, so a queued message
//! already is the bytes that will go on the wire. Frames are packed back to back into chunks of
//! about `write_batch_bytes`; the sending task takes the oldest chunk and writes it with one
//! `write_all`, so everything queued while the previous write was in progress leaves in as few
//! writes as possible. Compared with a channel of messages this costs no allocation, no waker
//! and no per-message hand-off, which is most of the price of a small message. Written chunks
//! come back to a small pool, so steady traffic reuses the same few buffers (warm in cache,
//! no page faults) instead of allocating.
//!
//! The queue is bounded in messages (`peer_queue_capacity`) and in bytes (`peer_queue_bytes`);
//! a message that does not fit is dropped and counted, never waited for (Raft re-sends). One
//! message always fits in an empty queue, so a frame up to `max_frame_bytes` is never refused
//! for its size alone.

use crate::frame::{append_frame, FrameError};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// Written chunks kept for reuse; more than this are given back to the allocator.
const POOLED_CHUNKS: usize = 4;

/// Why a message was not queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the peer's queue is full ({messages} messages, {bytes} bytes)")]
    Full { messages: usize, bytes: usize },
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Bounds of one outbox; see `NetworkConfig` for what each means.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    pub capacity_messages: usize,
    pub capacity_bytes: usize,
    pub chunk_bytes: usize,
    pub max_frame_bytes: u32,
}

/// Frames waiting for the sending task; see the module documentation.
#[derive(Debug)]
pub struct Outbox {
    pending: Mutex<Pending>,
    /// Signalled when frames are queued or the outbox is closed. `Notify` keeps one permit
    /// when nobody waits, so a push during a write is seen as soon as the write ends.
    ready: Notify,
    limits: OutboxLimits,
}

#[derive(Debug, Default)]
struct Pending {
    /// Oldest first; only the last one is still being filled.
    chunks: VecDeque<Chunk>,
    messages: usize,
    bytes: usize,
    pool: Vec<Vec<u8>>,
    closed: bool,
}

/// Whole frames, back to back, taken out of the outbox for one write.
#[derive(Debug, Default)]
pub struct Chunk {
    pub frames: Vec<u8>,
    /// How many messages `frames` holds.
    pub messages: usize,
}

impl Outbox {
    pub fn new(limits: OutboxLimits) -> Outbox {
        Outbox {
            pending: Mutex::new(Pending::default()),
            ready: Notify::new(),
            limits,
        }
    }

    /// Encodes `message` as one frame at the end of the queue, or refuses it: the queue is
    /// full, or the message cannot be framed (over `max_frame_bytes`, unencodable). A refused
    /// message leaves the queue as it was.
    pub fn push<T: serde::Serialize>(&self, message: &T) -> Result<(), QueueError> {
        let mut guard = self.lock();
        let pending = &mut *guard;
        let (messages, bytes) = (pending.messages, pending.bytes);
        if messages >= self.limits.capacity_messages {
            return Err(QueueError::Full { messages, bytes });
        }
        let needs_new_chunk = pending
            .chunks
            .back()
            .is_none_or(|chunk| chunk.frames.len() >= self.limits.chunk_bytes);
        if needs_new_chunk {
            let frames = pending
                .pool
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(self.limits.chunk_bytes));
            pending.chunks.push_back(Chunk {
                frames,
                messages: 0,
            });
        }
        let chunk = pending.chunks.back_mut().expect("a chunk to fill exists");
        let refusal = match append_frame(&mut chunk.frames, message, self.limits.max_frame_bytes) {
            Err(error) => Some(QueueError::from(error)),
            Ok(frame_bytes) if bytes > 0 && bytes + frame_bytes > self.limits.capacity_bytes => {
                chunk.frames.truncate(chunk.frames.len() - frame_bytes);
                Some(QueueError::Full { messages, bytes })
            }
            Ok(frame_bytes) => {
                chunk.messages += 1;
                pending.messages += 1;
                pending.bytes += frame_bytes;
                None
            }
        };
        if let Some(error) = refusal {
            if chunk.messages == 0 {
                let empty = pending.chunks.pop_back().expect("the chunk just used");
                pending.give_back(empty.frames, self.pooled_capacity());
            }
            return Err(error);
        }
        drop(guard);
        // Only the push into an empty queue needs to wake the task: it waits only after
        // finding the queue empty, and it takes chunks until it finds it empty again.
        if messages == 0 {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Waits until something is queued or the outbox is closed, then takes the oldest chunk.
    /// `None` once the outbox is closed.
    pub async fn take(&self) -> Option<Chunk> {
        loop {
            {
                let mut pending = self.lock();
                if pending.closed {
                    return None;
                }
                if let Some(chunk) = pending.chunks.pop_front() {
                    pending.messages -= chunk.messages;
                    pending.bytes -= chunk.frames.len();
                    return Some(chunk);
                }
            }
            self.ready.notified().await;
        }
    }

    /// Hands a written chunk's buffer back for reuse.
    pub fn recycle(&self, chunk: Chunk) {
        self.lock().give_back(chunk.frames, self.pooled_capacity());
    }

    /// Empties the queue, returning how many messages were discarded.
    pub fn discard(&self) -> usize {
        let mut pending = self.lock();
        while let Some(chunk) = pending.chunks.pop_front() {
            pending.give_back(chunk.frames, self.pooled_capacity());
        }
        pending.bytes = 0;
        std::mem::take(&mut pending.messages)
    }

    /// Ends the sending task: `take` returns `None` from now on. Called as the actor stops.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// A chunk holds about `chunk_bytes` plus the frame that crossed that mark; a buffer grown
    /// beyond this held a large frame and is not worth keeping.
    fn pooled_capacity(&self) -> usize {
        2 * self.limits.chunk_bytes
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock would be a bug in a few lines of buffer handling;
        // the chunks still hold whole frames (a refused frame is cut off before returning).
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Pending {
    /// Keeps `buffer` for a later chunk unless the pool is full or a large frame grew it.
    fn give_back(&mut self, mut buffer: Vec<u8>, max_capacity: usize) {
        if self.pool.len() < POOLED_CHUNKS && buffer.capacity() <= max_capacity {
            buffer.clear();
            self.pool.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::read_value;

    fn limits(capacity_messages: usize, capacity_bytes: usize) -> OutboxLimits {
        OutboxLimits {
            capacity_messages,
            capacity_bytes,
            chunk_bytes: 64,
            max_frame_bytes: 4096,
        }
    }

    /// Takes every queued chunk and decodes its frames.
    async fn drain(outbox: &Outbox) -> Vec<Vec<u8>> {
        let mut values = Vec::new();
        while outbox.lock().messages > 0 {
            let chunk = outbox.take().await.expect("open");
            let mut reader = chunk.frames.as_slice();
            for _ in 0..chunk.messages {
                let value: Option<Vec<u8>> = read_value(&mut reader, 4096).await.expect("valid");
                values.push(value.expect("a frame per message"));
            }
            assert!(reader.is_empty(), "a chunk holds whole frames only");
            outbox.recycle(chunk);
        }
        values
    }

    #[tokio::test]
    async fn packs_frames_into_chunks_of_about_chunk_bytes_in_order() {
        let outbox = Outbox::new(limits(100, 1 << 20));
        let values: Vec<Vec<u8>> = (0..20u8).map(|number| vec![number; 20]).collect();
        for value in &values {
            outbox.push(value).expect("room");
        }
        let chunks = outbox.lock().chunks.len();
        assert!(
            (5..=7).contains(&chunks),
            "20 frames of ~26 bytes in 64-byte chunks: {chunks}"
        );
        assert_eq!(drain(&outbox).await, values);
        assert_eq!(outbox.lock().bytes, 0);
        assert!(!outbox.lock().pool.is_empty(), "written chunks are reused");
    }

    #[tokio::test]
    async fn refuses_beyond_either_bound_and_always_takes_one_message() {
        let by_count = Outbox::new(limits(2, 1 << 20));
        by_count.push(&vec![1u8]).expect("room");
        by_count.push(&vec![2u8]).expect("room");
        assert!(matches!(
            by_count.push(&vec![3u8]),
            Err(QueueError::Full { messages: 2, .. })
        ));

        let by_bytes = Outbox::new(limits(16, 100));
        by_bytes
            .push(&vec![1u8; 500])
            .expect("an empty queue takes any frame");
        assert!(matches!(
            by_bytes.push(&vec![2u8]),
            Err(QueueError::Full { messages: 1, .. })
        ));
        assert_eq!(
            drain(&by_bytes).await,
            vec![vec![1u8; 500]],
            "the refusal left no bytes"
        );

        assert!(matches!(
            by_bytes.push(&vec![1u8; 5000]),
            Err(QueueError::Frame(FrameError::TooLarge { .. }))
        ));
        assert!(
            by_bytes.lock().chunks.is_empty(),
            "no empty chunk left behind"
        );
    }

    #[tokio::test]
    async fn discard_and_close() {
        let outbox = Outbox::new(limits(16, 1 << 20));
        outbox.push(&vec![1u8]).expect("room");
        outbox.push(&vec![2u8]).expect("room");
        assert_eq!(outbox.discard(), 2);
        assert_eq!(outbox.lock().bytes, 0);
        outbox.close();
        assert!(outbox.is_closed());
        assert!(outbox.take().await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_take_wakes_on_push() {
        let outbox = std::sync::Arc::new(Outbox::new(limits(16, 1 << 20)));
        let taker = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.take().await.map(|chunk| chunk.messages) }
        });
        tokio::task::yield_now().await;
        outbox.push(&vec![7u8]).expect("room");
        assert_eq!(taker.await.expect("no panic"), Some(1));
    }
}
