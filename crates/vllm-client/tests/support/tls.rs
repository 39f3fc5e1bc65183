//! TLS for the `https://` tests: a test CA and server certificates that rcgen makes when the
//! tests run (nothing is committed), and a server on `127.0.0.1:0` speaking HTTP/2 and
//! HTTP/1.1 (ALPN) through hyper's server over tokio-rustls. Like [`Server`](super::Server),
//! it records every request and answers through a handler closure, with delays before the
//! response head and between the pieces of the body.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{Part, Recorded};

/// A certificate authority made for one test run.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

impl TestCa {
    /// A new CA (its own key) named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate in PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificate in DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// A server certificate for `localhost` and `127.0.0.1`, signed by this CA, and its key.
    pub fn server_identity(&self) -> Identity {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            chain: vec![cert.der().clone()],
            key: key.serialize_der(),
        }
    }
}

/// A server's certificate chain and private key (PKCS#8 DER).
#[derive(Clone)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

/// An answer of the TLS server: after `delay`, the status and headers, then the body
/// `parts` in order (each `Part::Bytes` one write: one HTTP/2 DATA frame, or one chunk).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
    pub parts: Vec<Part>,
}

impl Answer {
    /// A whole body with its `content-length`.
    pub fn with_headers(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all.push(("content-length".into(), body.len().to_string()));
        Answer {
            status,
            headers: all,
            delay: Duration::ZERO,
            parts: vec![Part::Bytes(body.as_bytes().to_vec())],
        }
    }

    pub fn json(status: u16, body: &str) -> Answer {
        Answer::with_headers(status, &[("content-type", "application/json")], body)
    }

    /// An event stream: `body` cut into pieces of `piece` bytes (0: whole), `gap` apart.
    pub fn sse(body: &[u8], piece: usize, gap: Duration) -> Answer {
        let piece = if piece == 0 { body.len().max(1) } else { piece };
        let mut parts = Vec::new();
        for chunk in body.chunks(piece) {
            if !gap.is_zero() && !parts.is_empty() {
                parts.push(Part::Delay(gap));
            }
            parts.push(Part::Bytes(chunk.to_vec()));
        }
        Answer::stream(parts)
    }

    /// An event stream whose events come `gap` apart (the first `gap` after the head).
    pub fn sse_events(events: &[String], gap: Duration) -> Answer {
        let mut parts = Vec::new();
        for event in events {
            parts.push(Part::Delay(gap));
            parts.push(Part::Bytes(event.as_bytes().to_vec()));
        }
        Answer::stream(parts)
    }

    /// A `200` event stream made of these parts.
    pub fn stream(parts: Vec<Part>) -> Answer {
        Answer {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            delay: Duration::ZERO,
            parts,
        }
    }

    /// The same answer with a pause before its head.
    pub fn delayed(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }

    /// The same answer with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The protocols the server offers in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// `h2` first, then `http/1.1`: a client that offers HTTP/2 gets it.
    Http2,
    /// `http/1.1` only.
    Http1,
}

type Handler = dyn Fn(&Recorded, usize) -> Answer + Send + Sync;

/// The TLS server. Stops when dropped.
pub struct TlsServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsServer {
    /// Starts a server (HTTP/2 and HTTP/1.1) whose answer to the `n`-th request (from 0) is
    /// `handler(request, n)`.
    pub async fn start(
        identity: &Identity,
        handler: impl Fn(&Recorded, usize) -> Answer + Send + Sync + 'static,
    ) -> TlsServer {
        TlsServer::start_with(identity, Alpn::Http2, handler).await
    }

    /// Answers every request with `answer`.
    pub async fn always(identity: &Identity, answer: Answer) -> TlsServer {
        TlsServer::start(identity, move |_, _| answer.clone()).await
    }

    /// Starts a server offering `alpn`.
    pub async fn start_with(
        identity: &Identity,
        alpn: Alpn,
        handler: impl Fn(&Recorded, usize) -> Answer + Send + Sync + 'static,
    ) -> TlsServer {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), key)
        .unwrap();
        config.alpn_protocols = match alpn {
            Alpn::Http2 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Alpn::Http1 => vec![b"http/1.1".to_vec()],
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (reqs, conns, shakes) = (requests.clone(), connections.clone(), handshakes.clone());
        let task = tokio::spawn(async move {
            // Dropped with the task: every connection ends with the server.
            let mut tasks = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                conns.fetch_add(1, Ordering::SeqCst);
                let (acceptor, handler, reqs, shakes) = (
                    acceptor.clone(),
                    handler.clone(),
                    reqs.clone(),
                    shakes.clone(),
                );
                tasks.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    shakes.fetch_add(1, Ordering::SeqCst);
                    let service = hyper::service::service_fn(move |req| {
                        answer(req, handler.clone(), reqs.clone())
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsServer {
            addr,
            requests,
            connections,
            handshakes,
            task,
        }
    }

    /// The base URL (`https://{host}:{port}/v1`) under `host` (`localhost` or `127.0.0.1`).
    pub fn url(&self, host: &str) -> String {
        format!("https://{host}:{}/v1", self.addr.port())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

async fn answer(
    req: http::Request<Incoming>,
    handler: Arc<Handler>,
    requests: Arc<Mutex<Vec<Recorded>>>,
) -> Result<http::Response<Channel<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.to_string()),
        version: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let n = {
        let mut all = requests.lock().unwrap();
        all.push(recorded.clone());
        all.len() - 1
    };
    let answer = handler(&recorded, n);
    tokio::time::sleep(answer.delay).await;
    let mut response = http::Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        response = response.header(name, value);
    }
    let (mut tx, body) = Channel::<Bytes>::new(1);
    tokio::spawn(async move {
        for part in answer.parts {
            match part {
                Part::Delay(d) => tokio::time::sleep(d).await,
                Part::Bytes(b) => {
                    if tx.send_data(Bytes::from(b)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(response.body(body).unwrap())
}
