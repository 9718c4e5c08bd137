//! A minimal HTTP/1.1 keep-alive client for `raftctl bench` against plain `http://` endpoints.
//!
//! Why not reqwest: `reqwest::blocking` hands every request to a tokio thread of its own and
//! waits for the answer, so 64 bench clients were 128 threads and two context switches per
//! request; profiling showed the bench client eating about half of a 2-core machine at 9k
//! puts/s, which leaves the cluster under test less CPU than it would have with a real, remote
//! client. This client does the request on the calling thread: one `TcpStream` (TCP_NODELAY),
//! the whole request in one `write_all`, and a small parser for the answer's status line,
//! headers and body (`Content-Length`, `Transfer-Encoding: chunked`, or until the connection
//! closes). The body is read and dropped: the bench only needs the status.
//!
//! The connection is kept for the next request; when the server has closed an idle
//! connection (the write fails, or the read sees end of file before any byte of the answer),
//! the request is sent once more on a new connection. Connecting and reading have timeouts,
//! so a dead or hung node never stalls a client thread for longer than that.
//!
//! TLS endpoints (`https://`, client certificates) stay on reqwest (`bench.rs`).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Larger heads than this are taken for garbage rather than waited for.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Why a request got no status.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HttpFailure {
    /// The connection could not be made (refused, unreachable, connect timeout).
    Connect,
    /// The request may have been sent but no complete answer came within the read timeout.
    Timeout,
    /// The connection broke mid-answer, or the answer was not HTTP.
    Broken(String),
}

/// Where a response's body ends.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum BodyLength {
    Fixed(usize),
    Chunked,
    /// No length given: the body runs until the server closes the connection.
    UntilClose,
}

/// One complete response found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParsedResponse {
    pub status: u16,
    /// Bytes of the buffer the response took (head and body, as sent).
    pub consumed: usize,
    /// Bytes of the body once decoded (chunk framing removed).
    pub body_bytes: usize,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// What the parser makes of the bytes read so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parse {
    /// More bytes are needed.
    Incomplete,
    Complete(ParsedResponse),
}

fn find_subsequence(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Parses the response at the start of `buffer`. `at_end_of_file`: the server closed the
/// connection after these bytes (what ends a body without a length).
pub(crate) fn parse_response(buffer: &[u8], at_end_of_file: bool) -> Result<Parse, String> {
    let Some(head_end) = find_subsequence(buffer, b"\r\n\r\n") else {
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(format!("no end of headers in {} bytes", buffer.len()));
        }
        if !buffer.is_empty() && !b"HTTP/1.".starts_with(&buffer[..buffer.len().min(7)]) {
            return Err("not an HTTP/1.x answer".to_string());
        }
        return Ok(Parse::Incomplete);
    };
    let head = std::str::from_utf8(&buffer[..head_end])
        .map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .filter(|code| (100..1000).contains(code))
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    // HTTP/1.0 closes unless asked to keep alive; 1.1 keeps alive unless told to close.
    let mut close = version == "HTTP/1.0";
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let parsed: usize = value
                .parse()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            length = Some(parsed);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',') {
                if option.trim().eq_ignore_ascii_case("close") {
                    close = true;
                } else if option.trim().eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        }
    }
    let body_start = head_end + 4;
    // No body whatever the headers say (RFC 9112 section 6.3).
    let body_length = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyLength::Fixed(0)
    } else if chunked {
        BodyLength::Chunked
    } else if let Some(length) = length {
        BodyLength::Fixed(length)
    } else {
        BodyLength::UntilClose
    };
    let body = &buffer[body_start..];
    match body_length {
        BodyLength::Fixed(length) => {
            if body.len() < length {
                return Ok(Parse::Incomplete);
            }
            Ok(Parse::Complete(ParsedResponse {
                status,
                consumed: body_start + length,
                body_bytes: length,
                close,
            }))
        }
        BodyLength::UntilClose => {
            if !at_end_of_file {
                return Ok(Parse::Incomplete);
            }
            Ok(Parse::Complete(ParsedResponse {
                status,
                consumed: buffer.len(),
                body_bytes: body.len(),
                close: true,
            }))
        }
        BodyLength::Chunked => match parse_chunked(body)? {
            None => Ok(Parse::Incomplete),
            Some((consumed, body_bytes)) => Ok(Parse::Complete(ParsedResponse {
                status,
                consumed: body_start + consumed,
                body_bytes,
                close,
            })),
        },
    }
}

/// A chunked body at the start of `body`: `Some((bytes taken, bytes of data))` once the last
/// chunk and the trailers are in.
fn parse_chunked(body: &[u8]) -> Result<Option<(usize, usize)>, String> {
    let mut position = 0;
    let mut data_bytes = 0usize;
    loop {
        let Some(line_end) = find_subsequence(&body[position..], b"\r\n") else {
            if body.len() - position > 1024 {
                return Err("chunk size line too long".to_string());
            }
            return Ok(None);
        };
        let line = std::str::from_utf8(&body[position..position + line_end])
            .map_err(|_| "chunk size is not UTF-8".to_string())?;
        // A chunk extension (`;name=value`) may follow the size.
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        position += line_end + 2;
        if size == 0 {
            // Trailers, if any, then an empty line.
            loop {
                let Some(trailer_end) = find_subsequence(&body[position..], b"\r\n") else {
                    return Ok(None);
                };
                position += trailer_end + 2;
                if trailer_end == 0 {
                    return Ok(Some((position, data_bytes)));
                }
            }
        }
        let chunk_end = position
            .checked_add(size)
            .and_then(|end| end.checked_add(2))
            .ok_or_else(|| "chunk size overflows".to_string())?;
        if body.len() < chunk_end {
            return Ok(None);
        }
        if &body[chunk_end - 2..chunk_end] != b"\r\n" {
            return Err("chunk not followed by CRLF".to_string());
        }
        data_bytes += size;
        position = chunk_end;
    }
}

/// What goes before the body of one request.
pub(crate) struct RequestHead<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    /// `host:port`, for the Host header.
    pub authority: &'a str,
    /// `Authorization: Bearer ...\r\n` or empty.
    pub authorization: &'a str,
    pub content_type: Option<&'a str>,
}

/// Replaces `request` with the bytes of one HTTP/1.1 request (head, then `body`), so that it
/// goes out in one write.
pub(crate) fn write_request(request: &mut Vec<u8>, head: RequestHead<'_>, body: &[u8]) {
    request.clear();
    let _ = write!(
        request,
        "{} {} HTTP/1.1\r\nHost: {}\r\n{}Content-Length: {}\r\n",
        head.method,
        head.path_and_query,
        head.authority,
        head.authorization,
        body.len()
    );
    if let Some(content_type) = head.content_type {
        let _ = write!(request, "Content-Type: {content_type}\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
}

/// One keep-alive connection to one `http://host:port` endpoint.
pub(crate) struct HttpConnection {
    /// `host:port`, for the Host header and for connecting.
    authority: String,
    /// `Authorization: Bearer ...\r\n` or empty.
    authorization: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    stream: Option<TcpStream>,
    /// Bytes read and not yet parsed.
    buffer: Vec<u8>,
    request: Vec<u8>,
}

impl HttpConnection {
    /// `endpoint`: `http://host:port` (a trailing `/` is ignored). `None` for anything else.
    pub(crate) fn new(
        endpoint: &str,
        token: Option<&str>,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Option<HttpConnection> {
        let authority = endpoint.strip_prefix("http://")?.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return None;
        }
        Some(HttpConnection {
            authority: authority.to_string(),
            authorization: token
                .map(|token| format!("Authorization: Bearer {token}\r\n"))
                .unwrap_or_default(),
            connect_timeout,
            read_timeout,
            stream: None,
            buffer: Vec::with_capacity(4096),
            request: Vec::with_capacity(512),
        })
    }

    fn connect(&self) -> Result<TcpStream, HttpFailure> {
        let addresses: Vec<SocketAddr> = self
            .authority
            .to_socket_addrs()
            .map_err(|_| HttpFailure::Connect)?
            .collect();
        for address in addresses {
            let Ok(stream) = TcpStream::connect_timeout(&address, self.connect_timeout) else {
                continue;
            };
            // Small requests and answers: no waiting for Nagle's algorithm to fill a segment.
            let configured = stream.set_nodelay(true).is_ok()
                && stream.set_read_timeout(Some(self.read_timeout)).is_ok()
                && stream.set_write_timeout(Some(self.read_timeout)).is_ok();
            if configured {
                return Ok(stream);
            }
        }
        Err(HttpFailure::Connect)
    }

    /// Sends one request and returns the answer's status (the body is read and dropped).
    pub(crate) fn send(
        &mut self,
        method: &str,
        path_and_query: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<u16, HttpFailure> {
        write_request(
            &mut self.request,
            RequestHead {
                method,
                path_and_query,
                authority: &self.authority,
                authorization: &self.authorization,
                content_type,
            },
            body,
        );
        // A kept connection the server has closed in the meantime fails before any answer
        // byte arrives; then (and only then) the request goes once more on a new connection.
        let reused = self.stream.is_some();
        match self.exchange() {
            Err(Exchange::ClosedBeforeAnswer) if reused => match self.exchange() {
                Err(Exchange::ClosedBeforeAnswer) => {
                    Err(HttpFailure::Broken("connection closed".into()))
                }
                other => other.map_err(Exchange::into_failure),
            },
            other => other.map_err(Exchange::into_failure),
        }
    }

    fn exchange(&mut self) -> Result<u16, Exchange> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => self.connect().map_err(Exchange::Failed)?,
        };
        self.buffer.clear();
        if let Err(error) = stream.write_all(&self.request) {
            return Err(match error.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                    Exchange::Failed(HttpFailure::Timeout)
                }
                _ => Exchange::ClosedBeforeAnswer,
            });
        }
        let mut chunk = [0u8; 4096];
        let mut at_end_of_file = false;
        loop {
            match parse_response(&self.buffer, at_end_of_file) {
                Ok(Parse::Complete(response)) => {
                    // Anything after the answer would be a reply to nothing: start clean.
                    if !response.close && response.consumed == self.buffer.len() {
                        self.stream = Some(stream);
                    }
                    return Ok(response.status);
                }
                Ok(Parse::Incomplete) if at_end_of_file => {
                    return Err(if self.buffer.is_empty() {
                        Exchange::ClosedBeforeAnswer
                    } else {
                        Exchange::Failed(HttpFailure::Broken("answer cut short".into()))
                    });
                }
                Ok(Parse::Incomplete) => {}
                Err(error) => return Err(Exchange::Failed(HttpFailure::Broken(error))),
            }
            match stream.read(&mut chunk) {
                Ok(0) => at_end_of_file = true,
                Ok(read) => self.buffer.extend_from_slice(&chunk[..read]),
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Err(Exchange::Failed(HttpFailure::Timeout));
                }
                // A reset before any answer: as good as closed before it.
                Err(_) if self.buffer.is_empty() => return Err(Exchange::ClosedBeforeAnswer),
                Err(error) => return Err(Exchange::Failed(HttpFailure::Broken(error.to_string()))),
            }
        }
    }
}

/// How one attempt on one connection ended, when it gave no status.
enum Exchange {
    /// The server closed (or reset) the connection before sending any byte of an answer.
    ClosedBeforeAnswer,
    Failed(HttpFailure),
}

impl Exchange {
    fn into_failure(self) -> HttpFailure {
        match self {
            Exchange::ClosedBeforeAnswer => HttpFailure::Broken("connection closed".into()),
            Exchange::Failed(failure) => failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buffer: &[u8]) -> ParsedResponse {
        match parse_response(buffer, false) {
            Ok(Parse::Complete(response)) => response,
            other => panic!("expected a complete response, got {other:?}"),
        }
    }

    #[test]
    fn content_length_body() {
        let answer =
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nhello";
        let response = complete(answer);
        assert_eq!(response.status, 200);
        assert_eq!(response.consumed, answer.len());
        assert_eq!(response.body_bytes, 5);
        assert!(!response.close);
    }

    #[test]
    fn a_second_response_in_the_buffer_is_left_alone() {
        let mut answers =
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}".to_vec();
        let first = answers.len();
        answers.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let response = complete(&answers);
        assert_eq!((response.status, response.consumed), (503, first));
    }

    #[test]
    fn chunked_body_with_extension_and_trailer() {
        let answer = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n\
            4\r\nwiki\r\n5;name=value\r\npedia\r\n0\r\nExpires: never\r\n\r\n";
        let response = complete(answer);
        assert_eq!(response.status, 404);
        assert_eq!(response.consumed, answer.len());
        assert_eq!(response.body_bytes, 9);
    }

    #[test]
    fn every_split_of_an_answer_is_incomplete_until_its_last_byte() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"[..],
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..],
        ] {
            for cut in 0..answer.len() {
                assert_eq!(
                    parse_response(&answer[..cut], false),
                    Ok(Parse::Incomplete),
                    "cut at {cut} of {:?}",
                    String::from_utf8_lossy(answer)
                );
            }
            assert_eq!(complete(answer).consumed, answer.len());
        }
    }

    #[test]
    fn connection_close_and_http_1_0() {
        assert!(
            complete(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").close
        );
        assert!(complete(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").close);
        assert!(
            !complete(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
                .close
        );
    }

    #[test]
    fn no_length_means_until_close_and_204_means_none() {
        let answer = b"HTTP/1.1 200 OK\r\n\r\nsome bytes";
        assert_eq!(parse_response(answer, false), Ok(Parse::Incomplete));
        match parse_response(answer, true) {
            Ok(Parse::Complete(response)) => {
                assert_eq!((response.body_bytes, response.close), (10, true))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(complete(b"HTTP/1.1 204 No Content\r\n\r\n").body_bytes, 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for garbage in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"hello",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
            b"HTTP/1.1 200 \xff\xfe\r\n\r\n",
        ] {
            assert!(
                parse_response(garbage, false).is_err(),
                "{:?} should not parse",
                String::from_utf8_lossy(garbage)
            );
        }
        let endless_head = vec![b'H'; MAX_HEAD_BYTES + 1];
        assert!(parse_response(&endless_head, false).is_err());
    }

    /// A one-connection server on loopback that answers each request from `answers` in turn,
    /// closing the connection when an answer is `None`.
    fn serve(answers: Vec<Option<&'static [u8]>>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let address = listener.local_addr().expect("address");
        std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            while let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 4096];
                while let Ok(read) = stream.read(&mut request) {
                    if read == 0 {
                        break;
                    }
                    match answers.next() {
                        Some(Some(answer)) => {
                            // Two writes: the client must put a split answer back together.
                            let (first, second) = answer.split_at(answer.len() / 2);
                            let _ = stream.write_all(first);
                            std::thread::sleep(Duration::from_millis(5));
                            let _ = stream.write_all(second);
                        }
                        Some(None) => break,
                        None => return,
                    }
                }
            }
        });
        format!("http://{address}")
    }

    #[test]
    fn keeps_the_connection_and_reconnects_when_the_server_closed_it() {
        let endpoint = serve(vec![
            Some(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            Some(b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
            None,
            Some(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
        ]);
        let timeout = Duration::from_secs(2);
        let mut connection =
            HttpConnection::new(&endpoint, Some("secret"), timeout, timeout).expect("http URL");
        assert_eq!(connection.send("PUT", "/v1/kv/a", None, b"1"), Ok(200));
        assert_eq!(connection.send("GET", "/v1/kv/a", None, b""), Ok(503));
        // The server closes instead of answering the third: sent again on a new connection.
        assert_eq!(connection.send("PUT", "/v1/kv/a", None, b"2"), Ok(201));
    }

    #[test]
    fn refused_is_connect_and_silence_is_a_timeout() {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let endpoint = format!("http://{}", unused.local_addr().expect("address"));
        drop(unused);
        let short = Duration::from_millis(200);
        let mut connection = HttpConnection::new(&endpoint, None, short, short).expect("URL");
        assert_eq!(
            connection.send("GET", "/", None, b""),
            Err(HttpFailure::Connect)
        );

        // Accepts but never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let endpoint = format!("http://{}", silent.local_addr().expect("address"));
        let mut connection = HttpConnection::new(&endpoint, None, short, short).expect("URL");
        assert_eq!(
            connection.send("GET", "/", None, b""),
            Err(HttpFailure::Timeout)
        );
        drop(silent);
    }

    #[test]
    fn only_plain_http_urls() {
        let timeout = Duration::from_secs(1);
        assert!(HttpConnection::new("https://127.0.0.1:1", None, timeout, timeout).is_none());
        assert!(HttpConnection::new("http://127.0.0.1:1/", None, timeout, timeout).is_some());
        assert!(HttpConnection::new("http://127.0.0.1:1/base", None, timeout, timeout).is_none());
    }
}
