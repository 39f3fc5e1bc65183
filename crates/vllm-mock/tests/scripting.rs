//! Scripted behaviors: replies, errors in every shape, retries, delays, write sizes, broken
//! streams, per-model scripts, and the record of requests.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{bounded, raw, raw_with};
use vllm_client::{StreamEvent, VllmClient, json};
use vllm_mock::{Behavior, MockServer};
use vllm_types::ErrorResponse;

fn chat(client: &VllmClient) -> vllm_client::ChatCompletionBuilder {
    client
        .chat
        .completions()
        .create()
        .model("echo")
        .messages(json!([{"role": "user", "content": "one two three four five six"}]))
}

#[tokio::test]
async fn a_scripted_503_with_retry_after_is_retried_then_succeeds() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        mock.enqueue(Behavior::error(503, "The server is overloaded.").retry_after(0));
        let client = VllmClient::new(mock.base_url());
        let response = chat(&client).send().await.unwrap();
        assert_eq!(
            response.content.as_deref(),
            Some("one two three four five six")
        );
        let requests = mock.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].json, requests[1].json);
        assert_eq!(mock.queued(), 0);

        // With retries off, the client sees the status, the message and Retry-After's effect.
        mock.enqueue(Behavior::error(503, "The server is overloaded.").retry_after(7));
        let err = chat(&client).max_retries(0).send().await.unwrap_err();
        assert_eq!(err.status_code(), Some(503));
        assert!(err.is_retryable());
        assert_eq!(
            err.server_message().as_deref(),
            Some("The server is overloaded.")
        );
        assert_eq!(
            err.server_error().unwrap().error_type(),
            Some("ServiceUnavailableError")
        );

        let got_header = {
            mock.enqueue(Behavior::error(429, "slow down").retry_after(7));
            raw(mock.addr(), "GET", "/v1/models", None).await
        };
        assert_eq!(got_header.status, 429);
        assert_eq!(got_header.header("retry-after"), Some("7"));
    })
    .await;
}

#[tokio::test]
async fn every_error_shape_reaches_the_client() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::builder()
            .base_url(mock.base_url())
            .max_retries(0)
            .build();

        mock.enqueue(Behavior::error(400, "bad things"));
        let err = chat(&client).send().await.unwrap_err();
        assert_eq!(err.status_code(), Some(400));
        let body = err.server_error().unwrap();
        assert_eq!(body.message(), "bad things");
        assert_eq!(body.error_type(), Some("BadRequestError"));
        assert_eq!(body.code().and_then(|c| c.as_u16()), Some(400));

        mock.enqueue(Behavior::legacy_error(500, "old style"));
        let err = chat(&client).send().await.unwrap_err();
        assert!(
            matches!(err.server_error(), Some(ErrorResponse::Flat(_))),
            "{err:?}"
        );
        assert_eq!(err.server_message().as_deref(), Some("old style"));

        mock.enqueue(Behavior::unauthorized());
        let err = chat(&client).send().await.unwrap_err();
        assert_eq!(err.status_code(), Some(401));
        assert_eq!(err.server_message().as_deref(), Some("Unauthorized"));

        mock.enqueue(Behavior::openai_error(
            401,
            "Incorrect API key",
            "invalid_api_key",
        ));
        let err = chat(&client).send().await.unwrap_err();
        assert_eq!(
            err.server_error()
                .unwrap()
                .code()
                .map(|c| c.to_string())
                .as_deref(),
            Some("invalid_api_key")
        );

        let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
        mock.enqueue(Behavior::raw_error(502, "text/html", html));
        let err = chat(&client).send().await.unwrap_err();
        assert_eq!(err.status_code(), Some(502));
        assert_eq!(err.body_text(), Some(html));
        assert!(err.server_error().is_none());

        mock.enqueue(Behavior::error_json(418, json!({"detail": "I'm a teapot"})));
        let err = chat(&client).send().await.unwrap_err();
        assert_eq!(err.server_message().as_deref(), Some("I'm a teapot"));

        // A streamed request gets the status from send_stream() itself.
        mock.enqueue(Behavior::error(404, "gone"));
        let err = chat(&client).send_stream().await.unwrap_err();
        assert_eq!(err.status_code(), Some(404));
        assert_eq!(err.server_message().as_deref(), Some("gone"));
    })
    .await;
}

#[tokio::test]
async fn scripted_replies_follow_the_request_limits() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        mock.enqueue(Behavior::reply("Paris is the capital.").reasoning("Geography."));
        let response = chat(&client).send().await.unwrap();
        assert_eq!(response.content.as_deref(), Some("Paris is the capital."));
        assert_eq!(response.reasoning_content.as_deref(), Some("Geography."));
        assert_eq!(response.usage.unwrap().reasoning_tokens(), Some(2));

        mock.enqueue(Behavior::reply("Paris is the capital."));
        let response = chat(&client).max_tokens(2).send().await.unwrap();
        assert_eq!(response.content.as_deref(), Some("Paris is"));
        assert_eq!(response.finish_reason.as_deref(), Some("length"));

        mock.enqueue(Behavior::reply("fine").finish_reason("content_filter"));
        let response = chat(&client).send().await.unwrap();
        assert_eq!(response.finish_reason.as_deref(), Some("content_filter"));

        mock.enqueue(Behavior::reply("a completion"));
        let response = client
            .completions
            .create()
            .model("echo")
            .prompt("anything")
            .send()
            .await
            .unwrap();
        assert_eq!(response.text, "a completion");

        // Back to the echo once the queue is empty.
        let response = chat(&client).send().await.unwrap();
        assert_eq!(
            response.content.as_deref(),
            Some("one two three four five six")
        );
    })
    .await;
}

#[tokio::test]
async fn write_size_one_still_gives_exact_content() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let text = "Héllo, wörld! 日本語 and emoji 🎉 split across writes.";
        mock.enqueue(Behavior::reply(text).reasoning("Thinking…").write_size(1));
        let stream = chat(&client).send_stream().await.unwrap();
        let mut content = String::new();
        let mut reasoning = String::new();
        let mut done = false;
        let mut stream = stream;
        while let Some(event) = stream.next().await {
            match event {
                StreamEvent::Content(t) => content.push_str(&t),
                StreamEvent::Reasoning(t) => reasoning.push_str(&t),
                StreamEvent::Done => done = true,
                StreamEvent::Error(e) => panic!("{e:?}"),
                _ => {}
            }
        }
        assert!(done);
        assert_eq!(content, text);
        assert_eq!(reasoning, "Thinking…");

        // Plain JSON bodies too (sent with Content-Length).
        mock.enqueue(Behavior::reply(text).write_size(3));
        let response = chat(&client).send().await.unwrap();
        assert_eq!(response.content.as_deref(), Some(text));
    })
    .await;
}

#[tokio::test]
async fn a_cut_off_stream_gives_the_client_an_error_event() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        mock.enqueue(Behavior::new().cut_after(3));
        let mut stream = chat(&client).send_stream().await.unwrap();
        let mut content = String::new();
        let mut error = None;
        while let Some(event) = stream.next().await {
            match event {
                StreamEvent::Content(t) => content.push_str(&t),
                StreamEvent::Done => panic!("a cut-off stream ended with Done"),
                StreamEvent::Error(e) => error = Some(e),
                _ => {}
            }
        }
        // The role chunk, then two pieces, then the connection closed.
        assert_eq!(content, "one two");
        let error = error.expect("no error event");
        assert!(error.is_stream(), "{error:?}");

        // On the wire: no [DONE], and no end of the chunked body.
        mock.enqueue(Behavior::new().cut_after(2));
        let body = json!({"model": "echo", "messages": [{"role": "user", "content": "a b c"}], "stream": true});
        let got = raw(mock.addr(), "POST", "/v1/chat/completions", Some(&body.to_string())).await;
        assert_eq!(got.events().len(), 2);
        assert!(!got.text().contains("[DONE]"));

        // A JSON body cut short fails the request.
        mock.enqueue(Behavior::new().cut_after_bytes(10));
        let err = chat(&client).max_retries(0).send().await.unwrap_err();
        assert!(!err.is_status(), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn a_mid_stream_error_reaches_the_client_with_its_message() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        mock.enqueue(Behavior::new().stream_error_after(2, 500, "the engine died"));
        let mut stream = chat(&client).send_stream().await.unwrap();
        let mut content = String::new();
        let mut error = None;
        while let Some(event) = stream.next().await {
            match event {
                StreamEvent::Content(t) => content.push_str(&t),
                StreamEvent::Done => panic!("Done after an error event"),
                StreamEvent::Error(e) => error = Some(e),
                _ => {}
            }
        }
        assert_eq!(content, "one");
        let error = error.expect("no error event");
        assert!(error.is_server_event(), "{error:?}");
        assert_eq!(error.to_string(), "the engine died");
        assert_eq!(error.status_code(), Some(500));

        // On the wire: the error event, then [DONE], as vLLM sends them.
        mock.enqueue(Behavior::new().stream_error_after(1, 400, "bad"));
        let body = json!({"model": "echo", "messages": [{"role": "user", "content": "a"}], "stream": true});
        let got = raw(mock.addr(), "POST", "/v1/chat/completions", Some(&body.to_string())).await;
        let events = got.events();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[1],
            r#"{"error":{"message":"bad","type":"BadRequestError","param":null,"code":400}}"#
        );
        assert_eq!(events[2], "[DONE]");
    })
    .await;
}

#[tokio::test]
async fn delays_before_the_head_and_between_events_trip_the_client_timeouts() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        mock.enqueue(Behavior::new().delay(Duration::from_secs(5)));
        let client = VllmClient::builder()
            .base_url(mock.base_url())
            .timeout(Duration::from_millis(200))
            .max_retries(0)
            .build();
        let err = chat(&client).send().await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");

        mock.enqueue(Behavior::new().event_delay(Duration::from_secs(5)));
        let client = VllmClient::builder()
            .base_url(mock.base_url())
            .stream_idle_timeout(Duration::from_millis(200))
            .build();
        let mut stream = chat(&client).send_stream().await.unwrap();
        let mut last = None;
        while let Some(event) = stream.next().await {
            last = Some(event);
        }
        let Some(StreamEvent::Error(e)) = last else {
            panic!("expected an idle timeout, got {last:?}")
        };
        assert!(e.is_timeout(), "{e:?}");

        // A short delay is only a delay.
        mock.enqueue(
            Behavior::new()
                .delay(Duration::from_millis(20))
                .event_delay(Duration::from_millis(1)),
        );
        let content = chat(&client)
            .send_stream()
            .await
            .unwrap()
            .collect_content()
            .await
            .unwrap();
        assert_eq!(content, "one two three four five six");
    })
    .await;
}

#[tokio::test]
async fn models_have_scripts_of_their_own() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        mock.on_model(
            "qwen3",
            Behavior::reply("I am Qwen.").reasoning("Who am I?"),
        );
        mock.on_model("broken", Behavior::error(500, "model crashed"));
        assert_eq!(mock.models(), ["echo", "qwen3", "broken"]);
        let listed = raw(mock.addr(), "GET", "/v1/models", None).await.json();
        let ids: Vec<&str> = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["echo", "qwen3", "broken"]);

        let client = VllmClient::builder()
            .base_url(mock.base_url())
            .max_retries(0)
            .build();
        for _ in 0..2 {
            let response = chat(&client).model("qwen3").send().await.unwrap();
            assert_eq!(response.content.as_deref(), Some("I am Qwen."));
            assert_eq!(response.reasoning_content.as_deref(), Some("Who am I?"));
            assert_eq!(response.model, "qwen3");
        }
        let err = chat(&client).model("broken").send().await.unwrap_err();
        assert_eq!(err.status_code(), Some(500));
        assert_eq!(err.server_message().as_deref(), Some("model crashed"));
        let response = chat(&client).send().await.unwrap();
        assert_eq!(
            response.content.as_deref(),
            Some("one two three four five six")
        );

        // A queued behavior comes first.
        mock.enqueue(Behavior::reply("queued"));
        let response = chat(&client).model("qwen3").send().await.unwrap();
        assert_eq!(response.content.as_deref(), Some("queued"));
    })
    .await;
}

#[tokio::test]
async fn a_behavior_for_a_path_waits_for_a_request_to_it() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        mock.enqueue(Behavior::error(503, "busy").for_path("/v1/chat/completions"));
        let models = raw(mock.addr(), "GET", "/v1/models", None).await;
        assert_eq!(models.status, 200);
        assert_eq!(mock.queued(), 1);
        let body = json!({"messages": [{"role": "user", "content": "hi"}]});
        let chat = raw(
            mock.addr(),
            "POST",
            "/v1/chat/completions",
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(chat.status, 503);
        assert_eq!(mock.queued(), 0);

        // Without a path, the next request of any route takes it.
        mock.enqueue(Behavior::error(500, "down").header("x-mock", "yes"));
        let health = raw(mock.addr(), "GET", "/health", None).await;
        assert_eq!(health.status, 500);
        assert_eq!(health.header("x-mock"), Some("yes"));
        assert_eq!(health.error().message(), "down");
    })
    .await;
}

#[tokio::test]
async fn every_request_is_recorded() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::builder()
            .base_url(mock.base_url())
            .api_key("sk-test")
            .header("x-team", "search")
            .build();
        chat(&client).temperature(0.5).send().await.unwrap();
        raw(mock.addr(), "GET", "/v1/models?limit=1", None).await;
        raw(
            mock.addr(),
            "POST",
            "/v1/chat/completions",
            Some("not json"),
        )
        .await;

        let requests = mock.requests();
        assert_eq!(requests.len(), 3);
        let first = &requests[0];
        assert_eq!(first.method, "POST");
        assert_eq!(first.path, "/v1/chat/completions");
        assert_eq!(first.query, None);
        assert_eq!(first.header("Authorization"), Some("Bearer sk-test"));
        assert_eq!(first.header("x-team"), Some("search"));
        assert_eq!(first.header("content-type"), Some("application/json"));
        let body = first.json.as_ref().unwrap();
        assert_eq!(body["model"], "echo");
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["messages"][0]["role"], "user");

        assert_eq!(requests[1].method, "GET");
        assert_eq!(requests[1].path, "/v1/models");
        assert_eq!(requests[1].query.as_deref(), Some("limit=1"));
        assert!(requests[1].body.is_empty());

        assert_eq!(requests[2].json, None);
        assert_eq!(requests[2].body_text(), "not json");

        mock.clear_requests();
        assert!(mock.requests().is_empty());
    })
    .await;
}

#[tokio::test]
async fn an_api_key_is_required_on_v1_routes_when_set() {
    bounded(async {
        let mock = MockServer::builder()
            .api_key("sk-right")
            .start()
            .await
            .unwrap();
        let wrong = VllmClient::builder()
            .base_url(mock.base_url())
            .api_key("sk-wrong")
            .max_retries(0)
            .build();
        let err = chat(&wrong).send().await.unwrap_err();
        assert_eq!(err.status_code(), Some(401));
        assert_eq!(err.server_message().as_deref(), Some("Unauthorized"));

        let right = VllmClient::new(mock.base_url()).with_api_key("sk-right");
        assert!(chat(&right).send().await.is_ok());

        // Routes outside /v1 stay open, as in vLLM.
        assert_eq!(raw(mock.addr(), "GET", "/health", None).await.status, 200);
        let models = raw_with(
            mock.addr(),
            "GET",
            "/v1/models",
            &[("authorization", "Bearer sk-right")],
            None,
        )
        .await;
        assert_eq!(models.status, 200);
    })
    .await;
}
