//! What every example shares: a client for `VLLM_BASE_URL` (and `VLLM_API_KEY`, `VLLM_MODEL`)
//! when it is set, or else for an embedded mock server started on the spot.
#![allow(dead_code, unreachable_pub)]

use std::error::Error;

use vllm_client::VllmClient;
use vllm_mock::{DEFAULT_MODEL, MockServer};

/// A client, the model to use, and the mock server when there is one (kept alive here).
pub struct Setup {
    pub client: VllmClient,
    pub model: String,
    pub mock: Option<MockServer>,
}

/// Connects to `VLLM_BASE_URL`, or starts the embedded mock and says so in one line.
pub async fn setup() -> Result<Setup, Box<dyn Error>> {
    let url = std::env::var("VLLM_BASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let Some(url) = url else {
        let mock = MockServer::start().await?;
        eprintln!(
            "VLLM_BASE_URL is not set: talking to an embedded mock server at {} (model `{DEFAULT_MODEL}`).",
            mock.base_url()
        );
        return Ok(Setup {
            client: VllmClient::new(mock.base_url()),
            model: DEFAULT_MODEL.to_owned(),
            mock: Some(mock),
        });
    };
    let client = VllmClient::from_env();
    let model = match std::env::var("VLLM_MODEL")
        .ok()
        .filter(|m| !m.trim().is_empty())
    {
        Some(model) => model,
        None => {
            let models = client.models.list().send().await?;
            let first = models
                .data
                .first()
                .ok_or("the server lists no models; set VLLM_MODEL")?;
            first.id.clone()
        }
    };
    eprintln!("Talking to {url} (model `{model}`).");
    Ok(Setup {
        client,
        model,
        mock: None,
    })
}
