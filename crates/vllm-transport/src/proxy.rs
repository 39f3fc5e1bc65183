//! HTTP proxies, as curl and reqwest use them: which requests go through one (hyper-util's
//! [`Matcher`]: `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, lower case too), plain
//! forwarding for `http://` targets (done by the direct path), and a `CONNECT` tunnel for
//! `https://` targets (hyper-util's [`Tunnel`], below the TLS handshake).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::{BoxError, TransportError};

/// Which proxy a transport uses; see
/// [`TransportBuilder::proxy`](crate::TransportBuilder::proxy).
#[derive(Clone, Default)]
pub(crate) enum ProxySetting {
    /// From the environment, read when the transport is built.
    #[default]
    Env,
    /// This proxy URL for every request, except to the hosts in `NO_PROXY`.
    Url(String),
    /// No proxy.
    Off,
}

impl ProxySetting {
    /// The matcher for this setting (`None`: no request goes through a proxy).
    pub(crate) fn matcher(&self) -> Result<Option<Arc<Matcher>>, TransportError> {
        let matcher = match self {
            ProxySetting::Off => return Ok(None),
            ProxySetting::Env => Matcher::from_env(),
            ProxySetting::Url(url) => {
                check_url(url)?;
                Matcher::builder()
                    .all(url.clone())
                    .no(env_no_proxy())
                    .build()
            }
        };
        Ok(Some(Arc::new(matcher)))
    }
}

impl fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::Env => f.write_str("Env"),
            ProxySetting::Off => f.write_str("Off"),
            // Without the credentials the URL may hold.
            ProxySetting::Url(url) => write!(f, "Url({})", redacted(url)),
        }
    }
}

/// `NO_PROXY` (or `no_proxy`) from the environment.
fn env_no_proxy() -> String {
    ["NO_PROXY", "no_proxy"]
        .iter()
        .find_map(|name| std::env::var(name).ok())
        .unwrap_or_default()
}

/// A proxy URL must be `http://host[:port]` (credentials allowed).
fn check_url(url: &str) -> Result<(), TransportError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| TransportError::builder("the proxy URL is not a valid URL"))?;
    match uri.scheme_str() {
        Some("http") | None => {}
        Some(_) => {
            return Err(TransportError::builder(
                "only http:// proxies are supported (an https:// target is tunnelled through one with CONNECT)",
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(TransportError::builder("the proxy URL has no host"));
    }
    Ok(())
}

/// `url` without its user information, for `Debug` and errors.
pub(crate) fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => match url.split_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_owned(),
        },
    }
}

/// The proxy a request goes through.
#[derive(Clone)]
pub(crate) struct ProxyRoute {
    /// `http://host:port/` of the proxy (no credentials).
    pub(crate) uri: Uri,
    /// `Proxy-Authorization` from the credentials in the proxy URL (sensitive).
    pub(crate) auth: Option<HeaderValue>,
}

impl fmt::Debug for ProxyRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyRoute")
            .field("uri", &self.uri)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The proxy `matcher` sends a request to `dst` through, if any. A proxy this transport
/// cannot use (`https://`, SOCKS, from the environment) is a builder error naming it.
pub(crate) fn route(matcher: &Matcher, dst: &Uri) -> Result<Option<ProxyRoute>, TransportError> {
    let Some(intercept) = matcher.intercept(dst) else {
        return Ok(None);
    };
    if intercept.uri().scheme_str() != Some("http") {
        return Err(TransportError::builder(
            "the proxy from the environment is not an http:// proxy; only http:// proxies are supported",
        ));
    }
    Ok(Some(ProxyRoute {
        uri: intercept.uri().clone(),
        auth: intercept.basic_auth().cloned(),
    }))
}

/// A connection through a proxy failed: the proxy (`host:port`) and why.
#[derive(Debug)]
pub(crate) struct ProxyFailed {
    pub(crate) proxy: String,
    pub(crate) source: BoxError,
}

impl ProxyFailed {
    pub(crate) fn new(proxy: &Uri, source: impl Into<BoxError>) -> Self {
        ProxyFailed {
            proxy: proxy
                .authority()
                .map_or_else(String::new, |a| a.to_string()),
            source: source.into(),
        }
    }

    /// Whether the proxy asked for credentials it was not given (407): sending the request
    /// again cannot help. (hyper-util does not export its tunnel's error type, so this
    /// reads its message.)
    pub(crate) fn is_auth_required(&self) -> bool {
        self.source
            .to_string()
            .contains("proxy authorization required")
    }
}

impl fmt::Display for ProxyFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_auth_required() {
            write!(
                f,
                "the proxy {} requires authentication (407): put the credentials in the proxy URL",
                self.proxy
            )
        } else {
            write!(
                f,
                "failed to connect through the proxy {}: {}",
                self.proxy, self.source
            )
        }
    }
}

impl std::error::Error for ProxyFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// TCP for the TLS connector: straight to the destination, or through a `CONNECT` tunnel
/// when the matcher sends the destination through a proxy.
#[derive(Clone)]
pub(crate) struct ProxyTcp {
    pub(crate) http: HttpConnector,
    pub(crate) proxies: Option<Arc<Matcher>>,
}

type Connecting = Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, BoxError>> + Send>>;

impl tower_service::Service<Uri> for ProxyTcp {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Connecting {
        let route = match self.proxies.as_deref().map(|m| route(m, &dst)) {
            Some(Ok(route)) => route,
            Some(Err(err)) => return Box::pin(async move { Err(err.into()) }),
            None => None,
        };
        match route {
            Some(proxy) => {
                let mut tunnel = Tunnel::new(proxy.uri.clone(), self.http.clone());
                if let Some(auth) = proxy.auth {
                    tunnel = tunnel.with_auth(auth);
                }
                Box::pin(async move {
                    let tunnelled = tower_service::Service::call(&mut tunnel, dst).await;
                    tunnelled.map_err(|err| Box::new(ProxyFailed::new(&proxy.uri, err)) as BoxError)
                })
            }
            None => {
                let connecting = self.http.call(dst);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redacted("http://user:pa55@proxy:3128"),
            "http://***@proxy:3128"
        );
        assert_eq!(redacted("user:pa55@proxy:3128"), "***@proxy:3128");
        assert_eq!(redacted("http://proxy:3128"), "http://proxy:3128");
        let setting = ProxySetting::Url("http://user:pa55@proxy:3128".into());
        assert!(!format!("{setting:?}").contains("pa55"));
    }

    #[test]
    fn only_http_proxy_urls_are_accepted() {
        assert!(check_url("http://proxy:3128").is_ok());
        assert!(check_url("http://u:p@proxy:3128").is_ok());
        for bad in [
            "https://proxy:3128",
            "socks5://proxy:1080",
            "http://",
            "not a url",
        ] {
            let err = check_url(bad).unwrap_err();
            assert!(err.is_builder(), "{bad}: {err:?}");
        }
    }

    #[test]
    fn a_route_carries_the_credentials_as_basic_auth_and_no_proxy_bypasses() {
        let matcher = Matcher::builder()
            .all("http://Aladdin:opensesame@proxy:3128")
            .no("localhost,.internal")
            .build();
        let route = route(&matcher, &"https://vllm.example:8000/v1".parse().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(route.uri.authority().unwrap().as_str(), "proxy:3128");
        let auth = route.auth.as_ref().unwrap();
        assert_eq!(auth, "Basic QWxhZGRpbjpvcGVuc2VzYW1l");
        assert!(auth.is_sensitive());
        assert!(!format!("{route:?}").contains("QWxh"));
        for bypassed in ["http://localhost:8000/v1", "https://vllm.internal/v1"] {
            assert!(
                route_of(&matcher, bypassed).is_none(),
                "{bypassed} is in NO_PROXY"
            );
        }
    }

    fn route_of(matcher: &Matcher, url: &str) -> Option<ProxyRoute> {
        route(matcher, &url.parse().unwrap()).unwrap()
    }
}
