//! The connector: TCP (+ TLS with the `rustls` feature) under a connect timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::sync::Arc;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;

use crate::error::{BoxError, ConnectTimedOut};
use crate::proxy::ProxyTcp;

#[cfg(feature = "rustls")]
type Inner = hyper_rustls::HttpsConnector<ProxyTcp>;
#[cfg(not(feature = "rustls"))]
type Inner = ProxyTcp;

type InnerConnection = <Inner as tower_service::Service<Uri>>::Response;

/// Keep-alive probes on idle TCP connections, so long quiet streams survive NAT boxes.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Connects to the destination (DNS, TCP, TLS handshake; through a proxy's `CONNECT` tunnel
/// when the proxy settings say so) and fails with [`ConnectTimedOut`] when that takes longer
/// than the connect timeout.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: Inner,
    /// Plain TCP, for the `http://` requests whose connections this crate reads itself.
    tcp: HttpConnector,
    timeout: Option<Duration>,
}

impl Connector {
    pub(crate) fn new(
        timeout: Option<Duration>,
        proxies: Option<Arc<Matcher>>,
        #[cfg(feature = "rustls")] tls: rustls::ClientConfig,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_keepalive(Some(TCP_KEEPALIVE));
        let tcp = http.clone();
        let http = ProxyTcp { http, proxies };
        #[cfg(feature = "rustls")]
        let inner = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        #[cfg(not(feature = "rustls"))]
        let inner = http;
        Connector {
            inner,
            tcp,
            timeout,
        }
    }

    /// Opens a plain TCP connection to an `http://` URI's host, a request's or a proxy's
    /// (DNS and connect under the connect timeout, `TCP_NODELAY`, keep-alive probes).
    pub(crate) async fn connect_tcp(&self, dst: &Uri) -> Result<tokio::net::TcpStream, BoxError> {
        let mut tcp = self.tcp.clone();
        let connecting = tower_service::Service::call(&mut tcp, dst.clone());
        let io = match self.timeout {
            Some(after) => match tokio::time::timeout(after, connecting).await {
                Ok(result) => result.map_err(boxed)?,
                Err(_elapsed) => return Err(Box::new(ConnectTimedOut(after))),
            },
            None => connecting.await.map_err(boxed)?,
        };
        Ok(io.into_inner())
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = InnerConnection;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<InnerConnection, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(boxed)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let timeout = self.timeout;
        Box::pin(async move {
            match timeout {
                Some(after) => match tokio::time::timeout(after, connecting).await {
                    Ok(result) => result.map_err(boxed),
                    Err(_elapsed) => Err(Box::new(ConnectTimedOut(after)) as BoxError),
                },
                None => connecting.await.map_err(boxed),
            }
        })
    }
}

/// Boxes the inner connector's error (already boxed with TLS, a hyper-util error without).
fn boxed<E: Into<BoxError>>(err: E) -> BoxError {
    err.into()
}

/// Builds the rustls client configuration: the aws-lc-rs provider (post-quantum hybrid key
/// exchange first, as rustls defaults), safe default protocol versions, the chosen root store
/// with any added roots,
/// the chosen roots, ALPN set later by hyper-rustls (h2, http/1.1).
#[cfg(feature = "rustls")]
pub(crate) fn tls_config(
    roots: crate::TlsRoots,
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
    accept_invalid_certs: bool,
) -> Result<rustls::ClientConfig, crate::TransportError> {
    use std::sync::Arc;

    use crate::TransportError;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::builder_with("invalid TLS configuration", e))?;
    if accept_invalid_certs {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(danger::AcceptAnyCert(provider)))
            .with_no_client_auth());
    }
    let mut store = rustls::RootCertStore::empty();
    match roots {
        crate::TlsRoots::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        crate::TlsRoots::Native => {
            let found = rustls_native_certs::load_native_certs();
            // Certificates the store cannot use are skipped, as hyper-rustls does.
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(TransportError::builder(
                    "could not load the native root certificates (none found)",
                ));
            }
        }
    }
    for cert in extra_roots {
        store.add(cert.clone()).map_err(|e| {
            TransportError::builder_with("an added root certificate is not valid", e)
        })?;
    }
    Ok(builder.with_root_certificates(store).with_no_client_auth())
}

/// The certificates of `pem_or_der`: PEM text (one or more `CERTIFICATE` blocks), or one
/// certificate in DER.
#[cfg(feature = "rustls")]
pub(crate) fn parse_certificates(
    pem_or_der: &[u8],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, crate::TransportError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    if !pem_or_der.windows(11).any(|w| w == b"-----BEGIN ") {
        return Ok(vec![CertificateDer::from(pem_or_der.to_vec())]);
    }
    let certs = CertificateDer::pem_slice_iter(pem_or_der)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            crate::TransportError::builder_with("the root certificate PEM is not valid", e)
        })?;
    if certs.is_empty() {
        return Err(crate::TransportError::builder(
            "the root certificate PEM has no CERTIFICATE block",
        ));
    }
    Ok(certs)
}

#[cfg(feature = "rustls")]
mod danger {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    /// Accepts any server certificate (but still checks the handshake signatures, so the
    /// peer must hold the key of the certificate it presents).
    #[derive(Debug)]
    pub(super) struct AcceptAnyCert(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAnyCert {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}
