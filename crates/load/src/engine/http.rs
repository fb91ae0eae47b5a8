//! The simulated users' HTTP client: each user owns one keep-alive HTTP/1.1 connection per
//! host, and drives it in its own task.
//!
//! Why not a shared pooled client (reqwest): there, every request hops between the user's
//! task, the pool and a separate connection task, and that bookkeeping, not the network,
//! capped the generator at about half of `wrk`'s rate on the same core. A user that owns its
//! connection and polls it alongside its request does no hops and no locking; measured on
//! one core against a static server it sends about twice as many requests as reqwest did,
//! on a par with `wrk`. It is also what Locust and k6 do semantically: a user is one client
//! with its own connections.
//!
//! `https://` targets (a hosted deployment) go through the system's TLS (native-tls), with
//! one connector shared by the whole process.

use std::{
    io,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures::FutureExt;
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request,
    client::conn::http1::{self, Connection, SendRequest},
    header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue, USER_AGENT},
};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_native_tls::TlsStream;
use url::Url;

/// A request ready to send.
#[derive(Clone)]
pub(crate) struct OutRequest {
    /// HTTP method.
    pub method: Method,
    /// Absolute `http://` URL.
    pub url: Url,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// JSON body, already encoded.
    pub json: Option<Bytes>,
}

/// A complete response.
pub(crate) struct InResponse {
    /// Status code.
    pub status: u16,
    /// Response headers (moved out of the response, not copied).
    pub headers: hyper::HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// Why no response arrived.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// Nothing within the request timeout.
    Timeout,
    /// Connect, write or read failed; a short, low-cardinality description.
    Connection(String),
}

type Driver = Pin<Box<Connection<TokioIo<Stream>, Full<Bytes>>>>;

/// Largest read buffer of a connection (bodies larger than this stream through it).
const READ_BUFFER: usize = 32 * 1024;

/// A plain or TLS connection (one enum, so both share the connection type).
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The process's TLS connector (system roots), built on first `https://` use.
fn tls_connector() -> Result<&'static tokio_native_tls::TlsConnector, HttpError> {
    static CONNECTOR: OnceLock<Result<tokio_native_tls::TlsConnector, String>> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            native_tls_connector()
                .map(tokio_native_tls::TlsConnector::from)
                .map_err(|e| format!("TLS setup failed: {e}"))
        })
        .as_ref()
        .map_err(|e| HttpError::Connection(e.clone()))
}

fn native_tls_connector()
-> Result<tokio_native_tls::native_tls::TlsConnector, tokio_native_tls::native_tls::Error> {
    tokio_native_tls::native_tls::TlsConnector::builder().build()
}

struct Conn {
    /// Where this connection goes: TLS or not, host as written in URLs, port.
    tls: bool,
    host: String,
    port: u16,
    sender: SendRequest<Full<Bytes>>,
    driver: Driver,
    /// The driver has completed (the server closed, e.g. `Connection: close`); a completed
    /// future must not be polled again, so the connection is only dropped from then on.
    ended: bool,
}

/// One user's connections (usually one: the target; two when a plan also calls stripe-sim).
pub(crate) struct Connections {
    conns: Vec<Conn>,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: HeaderValue,
}

impl Connections {
    /// No connection yet; they are opened on first use.
    pub fn new(timeout: Duration) -> Self {
        Connections {
            conns: Vec::new(),
            timeout,
            connect_timeout: timeout.min(Duration::from_secs(10)),
            user_agent: HeaderValue::from_static(concat!("pique-load/", env!("CARGO_PKG_VERSION"))),
        }
    }

    /// Sends `req` and reads the whole response, within the request timeout.
    pub async fn send(&mut self, req: OutRequest) -> Result<InResponse, HttpError> {
        match tokio::time::timeout(self.timeout, self.send_inner(req)).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout),
        }
    }

    async fn send_inner(&mut self, req: OutRequest) -> Result<InResponse, HttpError> {
        let tls = match req.url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(HttpError::Connection(format!("unsupported scheme {other}"))),
        };
        let port = req
            .url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        // Matched against open connections without allocating: this runs per request.
        let url_host = req.url.host_str().unwrap_or("localhost");
        let idempotent = matches!(req.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let mut fresh = false;
        loop {
            let index = match self
                .conns
                .iter()
                .position(|c| c.tls == tls && c.port == port && c.host == url_host)
            {
                Some(i) if still_open(&mut self.conns[i]) => i,
                found => {
                    if let Some(i) = found {
                        self.conns.swap_remove(i);
                    }
                    // A bare address for connect and SNI: `::1`, not the URL's `[::1]`.
                    let address = match req.url.host() {
                        Some(url::Host::Ipv6(addr)) => addr.to_string(),
                        _ => url_host.to_string(),
                    };
                    let conn = self.connect(&address, port, tls, url_host).await?;
                    self.conns.push(conn);
                    fresh = true;
                    self.conns.len() - 1
                }
            };
            let request = self.build(&req)?;
            match exchange(&mut self.conns[index], request).await {
                Ok(resp) => {
                    if self.conns[index].ended {
                        self.conns.swap_remove(index);
                    }
                    return Ok(resp);
                }
                Err((e, sent)) => {
                    self.conns.swap_remove(index);
                    // A reused connection the server had closed: retry once on a new one, if
                    // the request cannot have been processed or repeating it is harmless.
                    if !fresh && (!sent || idempotent) {
                        fresh = true;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// TCP connect, TLS handshake for `https`, then the HTTP/1.1 handshake, all within the
    /// connect timeout.
    async fn connect(
        &self,
        host: &str,
        port: u16,
        tls: bool,
        url_host: &str,
    ) -> Result<Conn, HttpError> {
        match tokio::time::timeout(self.connect_timeout, open(host, port, tls, url_host)).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout),
        }
    }

    fn build(&self, req: &OutRequest) -> Result<Request<Full<Bytes>>, HttpError> {
        // `host` or `host:port` as written in the URL (no default port), as browsers send it.
        let host = &req.url[url::Position::BeforeHost..url::Position::AfterPort];
        // Path and query, as written in the URL.
        let target = &req.url[url::Position::BeforePath..url::Position::AfterQuery];
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(target)
            .header(HOST, host)
            .header(USER_AGENT, self.user_agent.clone());
        if req.json.is_some() {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(req.json.clone().unwrap_or_default()))
            .map_err(|e| HttpError::Connection(format!("invalid request: {e}")))
    }
}

/// TCP connect, TLS handshake for `https`, then the HTTP/1.1 handshake.
async fn open(host: &str, port: u16, tls: bool, url_host: &str) -> Result<Conn, HttpError> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| HttpError::Connection(io_kind(&e)))?;
    // Small requests and responses: never wait for Nagle.
    let _ = tcp.set_nodelay(true);
    let stream = if tls {
        let tls = tls_connector()?
            .connect(host, tcp)
            .await
            .map_err(|e| HttpError::Connection(format!("TLS handshake: {e}")))?;
        Stream::Tls(Box::new(tls))
    } else {
        Stream::Plain(tcp)
    };
    // A user keeps its connection for the whole run: cap the read buffer, which otherwise
    // grows to ~400 KB after one large response and stays that size for every user.
    let (sender, driver) = http1::Builder::new()
        .max_buf_size(READ_BUFFER)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HttpError::Connection(hyper_kind(&e)))?;
    Ok(Conn {
        tls,
        host: url_host.to_string(),
        port,
        sender,
        driver: Box::pin(driver),
        ended: false,
    })
}

/// Polls the idle connection once without waiting, so a close the server sent while this
/// user was thinking is noticed before a request is written into a dead socket.
fn still_open(conn: &mut Conn) -> bool {
    if conn.ended {
        return false;
    }
    match (&mut conn.driver).now_or_never() {
        None => !conn.sender.is_closed(),
        Some(_) => false,
    }
}

/// One request/response on `conn`, polling the connection in this same task.
/// On error, also says whether the request may have reached the server.
async fn exchange(
    conn: &mut Conn,
    request: Request<Full<Bytes>>,
) -> Result<InResponse, (HttpError, bool)> {
    let Conn {
        sender,
        driver,
        ended: conn_ended,
        ..
    } = conn;
    let work = async {
        sender
            .ready()
            .await
            .map_err(|e| (HttpError::Connection(hyper_kind(&e)), false))?;
        let response = sender.send_request(request).await.map_err(|e| {
            let sent = !e.is_canceled();
            (HttpError::Connection(hyper_kind(&e)), sent)
        })?;
        let (parts, body) = response.into_parts();
        let status = parts.status.as_u16();
        let body = body
            .collect()
            .await
            .map_err(|e| (HttpError::Connection(hyper_kind(&e)), true))?
            .to_bytes();
        Ok(InResponse {
            status,
            headers: parts.headers,
            body,
        })
    };
    let mut work = std::pin::pin!(work);
    let ended = tokio::select! {
        biased;
        result = &mut work => return result,
        ended = driver => ended,
    };
    *conn_ended = true;
    // The connection finished first. With `Connection: close` (gunicorn's sync workers send it
    // on every response) the driver reads the whole response and ends in the same poll, before
    // the response future is woken: the response is then already buffered, and one more poll
    // of the work completes it.
    match work.now_or_never() {
        Some(result) => result,
        None => Err((
            HttpError::Connection(match ended {
                Ok(()) => "connection closed".to_string(),
                Err(e) => hyper_kind(&e),
            }),
            true,
        )),
    }
}

fn hyper_kind(e: &hyper::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    match root.downcast_ref::<std::io::Error>() {
        Some(io) => io_kind(io),
        None if e.is_incomplete_message() => "connection closed before message completed".into(),
        None => root.to_string(),
    }
}

fn io_kind(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        std::io::ErrorKind::BrokenPipe => "broken pipe".into(),
        std::io::ErrorKind::TimedOut => "timed out".into(),
        _ => e.to_string(),
    }
}
