//! The server a subcommand talks to: the one named, or an embedded vllm-mock.

use vllm_client::{ClientBuilder, VllmClient};
use vllm_mock::MockServer;

use crate::cli::ServerArgs;

/// A client for the server, and the embedded mock when there is one (it stops on drop).
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) client: VllmClient,
    _mock: Option<MockServer>,
}

/// Connects to `--base-url` (or `VLLM_BASE_URL`), or starts an embedded vllm-mock and says so
/// on stderr.
pub(crate) async fn connect(args: &ServerArgs) -> Result<Server, String> {
    connect_with(args, |builder| builder).await
}

/// [`connect`], with the client's settings changed by `shape` (a benchmark wants no
/// retries).
pub(crate) async fn connect_with(
    args: &ServerArgs,
    shape: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Result<Server, String> {
    let urls: Vec<String> = args
        .base_url
        .iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    let (urls, mock) = match urls.is_empty() {
        false => (urls, None),
        true => {
            let mock = MockServer::builder()
                .record_requests(false)
                .start()
                .await
                .map_err(|e| format!("cannot start the embedded vllm-mock: {e}"))?;
            eprintln!(
                "vllm-rs: no --base-url or VLLM_BASE_URL: using an embedded vllm-mock at {} \
                 (model `{}`, which repeats your words)",
                mock.base_url(),
                vllm_mock::DEFAULT_MODEL
            );
            (vec![mock.base_url()], Some(mock))
        }
    };
    // One URL is a server; several are replicas the client balances over.
    let mut builder = VllmClient::builder().base_urls(urls);
    if let Some(key) = &args.api_key {
        builder = builder.api_key(key);
    }
    let client = shape(builder).try_build().map_err(|e| e.to_string())?;
    Ok(Server {
        client,
        _mock: mock,
    })
}

impl Server {
    /// The model to use: the one asked for, else the first the server lists.
    pub(crate) async fn model(&self, asked: Option<&str>) -> Result<String, String> {
        if let Some(model) = asked {
            return Ok(model.to_owned());
        }
        let models = self
            .client
            .models
            .list()
            .send()
            .await
            .map_err(|e| format!("cannot list the server's models ({e}); pass --model"))?;
        models
            .data
            .first()
            .map(|m| m.id.clone())
            .ok_or_else(|| "the server lists no model; pass --model".to_owned())
    }
}
