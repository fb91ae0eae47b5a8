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

use std::{pin::Pin, time::Duration};

use bytes::Bytes;
use futures::FutureExt;
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request,
    client::conn::http1::{self, Connection, SendRequest},
    header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue, USER_AGENT},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use url::Url;

/// A request ready to send.
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

type Driver = Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>;

struct Conn {
    /// `host:port` this connection goes to.
    authority: String,
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
        if req.url.scheme() != "http" {
            return Err(HttpError::Connection(format!(
                "unsupported scheme {}",
                req.url.scheme()
            )));
        }
        let host = req.url.host_str().unwrap_or("localhost").to_string();
        let port = req.url.port_or_known_default().unwrap_or(80);
        let authority = format!("{host}:{port}");
        let idempotent = matches!(req.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let mut fresh = false;
        loop {
            let index = match self.conns.iter().position(|c| c.authority == authority) {
                Some(i) if still_open(&mut self.conns[i]) => i,
                found => {
                    if let Some(i) = found {
                        self.conns.swap_remove(i);
                    }
                    self.conns
                        .push(self.connect(&host, port, authority.clone()).await?);
                    fresh = true;
                    self.conns.len() - 1
                }
            };
            let request = self.build(&req, &authority)?;
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

    async fn connect(&self, host: &str, port: u16, authority: String) -> Result<Conn, HttpError> {
        let stream = match tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((host, port)),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(HttpError::Connection(io_kind(&e))),
            Err(_) => return Err(HttpError::Timeout),
        };
        // Small requests and responses: never wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| HttpError::Connection(hyper_kind(&e)))?;
        Ok(Conn {
            authority,
            sender,
            driver: Box::pin(driver),
            ended: false,
        })
    }

    fn build(&self, req: &OutRequest, authority: &str) -> Result<Request<Full<Bytes>>, HttpError> {
        let target = match req.url.query() {
            Some(q) => format!("{}?{q}", req.url.path()),
            None => req.url.path().to_string(),
        };
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(target)
            .header(HOST, authority)
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
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| (HttpError::Connection(hyper_kind(&e)), true))?
            .to_bytes();
        Ok(InResponse { status, body })
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
