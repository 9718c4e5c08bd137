//! Socket options every peer connection gets, in both directions.
//!
//! - `TCP_NODELAY`: Raft messages are latency bound (heartbeats, votes); batching is done above
//!   TCP, by coalescing the queue into one write.
//! - TCP keepalive and (on Linux) `TCP_USER_TIMEOUT`: when packets are silently dropped (the
//!   partition tests' firewall rules, a frozen host), an established connection would
//!   otherwise hang for about 15 minutes with data outstanding, or forever when idle. With
//!   these, the sender's write fails and it reconnects once the path heals, and the receiver
//!   drops its dead half instead of leaking it.

use socket2::{SockRef, TcpKeepalive};
use std::time::Duration;
use tokio::net::TcpStream;

/// Applies the options above; `dead_connection_timeout` bounds how long a silent peer keeps a
/// connection open.
pub fn configure(stream: &TcpStream, dead_connection_timeout: Duration) -> std::io::Result<()> {
    let socket = SockRef::from(stream);
    socket.set_tcp_nodelay(true)?;
    // Three unanswered probes a quarter of the timeout apart, after a quarter of idleness.
    let probe_interval = (dead_connection_timeout / 4).max(Duration::from_secs(1));
    let keepalive = TcpKeepalive::new()
        .with_time(probe_interval)
        .with_interval(probe_interval)
        .with_retries(3);
    socket.set_tcp_keepalive(&keepalive)?;
    #[cfg(target_os = "linux")]
    socket.set_tcp_user_timeout(Some(dead_connection_timeout))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn options_are_applied() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bindable");
        let address = listener.local_addr().expect("bound");
        let (connected, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
        let stream = connected.expect("listening");
        drop(accepted);
        configure(&stream, Duration::from_secs(8)).expect("options apply");
        let socket = SockRef::from(&stream);
        assert!(socket.tcp_nodelay().expect("readable"));
        assert!(socket.keepalive().expect("readable"));
        assert_eq!(
            socket.tcp_keepalive_time().expect("readable"),
            Duration::from_secs(2)
        );
        #[cfg(target_os = "linux")]
        assert_eq!(
            socket.tcp_user_timeout().expect("readable"),
            Some(Duration::from_secs(8))
        );
    }
}
