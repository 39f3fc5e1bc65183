//! The echo model's chat completions (not streamed), through the facade: content, usage,
//! reasoning, limits, choices, tool calls, and the shape of vLLM's real answers.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::{bounded, fixture_body, raw, shape};
use vllm_client::{VllmClient, json};
use vllm_mock::{DEFAULT_MODEL, MockServer, tokenizer};

fn weather_tool() -> Value {
    json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer"}
                },
                "required": ["city", "unit"]
            }
        }
    }])
}

#[tokio::test]
async fn echoes_the_last_user_message_with_usage() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let messages = json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "first"},
            {"role": "user", "content": "Hello, world!"}
        ]);
        let response = client
            .chat
            .completions()
            .create()
            .model(DEFAULT_MODEL)
            .messages(messages)
            .send()
            .await
            .unwrap();
        assert_eq!(response.content.as_deref(), Some("Hello, world!"));
        assert_eq!(response.reasoning_content, None);
        assert_eq!(response.finish_reason.as_deref(), Some("stop"));
        assert_eq!(response.model, "echo");
        assert_eq!(response.object, "chat.completion");
        assert!(response.id.starts_with("chatcmpl-"), "{}", response.id);
        assert_eq!(response.id.len(), "chatcmpl-".len() + 16);
        assert!(response.id["chatcmpl-".len()..].chars().all(|c| c.is_ascii_hexdigit()));

        let prompt = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nfirst<|im_end|>\n\
                      <|im_start|>assistant\nfirst<|im_end|>\n<|im_start|>user\nHello, world!<|im_end|>\n\
                      <|im_start|>assistant\n";
        let usage = response.usage.clone().unwrap();
        assert_eq!(usage.prompt_tokens, tokenizer::count(prompt));
        assert_eq!(usage.completion_tokens, 4);
        assert_eq!(usage.total_tokens, usage.prompt_tokens + 4);
        assert_eq!(usage.reasoning_tokens(), Some(0));
        // The null members vLLM sends are there.
        let raw = &response.raw;
        assert_eq!(raw["choices"][0]["message"]["refusal"], Value::Null);
        assert!(raw["choices"][0].as_object().unwrap().contains_key("stop_reason"));
        assert!(raw["system_fingerprint"].as_str().unwrap().starts_with("vllm-"));
    })
    .await;
}

#[tokio::test]
async fn has_the_members_of_vllms_real_answers() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let think = json!({"model": "echo", "messages": [{"role": "user", "content": "What is the capital of France?"}], "thinking_token_budget": 6});
        let got = raw(mock.addr(), "POST", "/v1/chat/completions", Some(&think.to_string())).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.header("content-type"), Some("application/json"));
        assert_eq!(shape(&got.json()), shape(&fixture_body("think/chat.http")));

        let tools = json!({"model": "echo", "messages": [{"role": "user", "content": "Weather in Paris?"}],
                           "tools": weather_tool(), "tool_choice": "required", "thinking_token_budget": 6});
        let got = raw(mock.addr(), "POST", "/v1/chat/completions", Some(&tools.to_string())).await;
        assert_eq!(shape(&got.json()), shape(&fixture_body("think/tools.http")));

        let completion = json!({"model": "echo", "prompt": "The capital of France is", "max_tokens": 3});
        let got = raw(mock.addr(), "POST", "/v1/completions", Some(&completion.to_string())).await;
        assert_eq!(shape(&got.json()), shape(&fixture_body("think/completions.http")));

        let got = raw(mock.addr(), "GET", "/v1/models", None).await;
        assert_eq!(shape(&got.json()), shape(&fixture_body("think/models.http")));

        let got = raw(mock.addr(), "POST", "/tokenize", Some(r#"{"prompt":"hello world"}"#)).await;
        assert_eq!(shape(&got.json()), shape(&fixture_body("think/tokenize.http")));

        let body = r#"{"input":["hello world","goodbye"],"encoding_format":"base64"}"#;
        let got = raw(mock.addr(), "POST", "/v1/embeddings", Some(body)).await;
        assert_eq!(shape(&got.json()), shape(&fixture_body("embed/embeddings_base64.http")));
    })
    .await;
}

#[tokio::test]
async fn reasons_first_when_thinking_is_on_and_never_when_off() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let ask = |extra: Value| {
            client
                .chat
                .completions()
                .create()
                .model("echo")
                .messages(json!([{"role": "user", "content": "Say hi"}]))
                .extra(extra)
                .send()
        };

        let on = ask(json!({"chat_template_kwargs": {"enable_thinking": true}}))
            .await
            .unwrap();
        let reasoning = on.reasoning_content.clone().unwrap();
        assert!(!reasoning.is_empty());
        assert_eq!(on.content.as_deref(), Some("Say hi"));
        let usage = on.usage.unwrap();
        assert_eq!(usage.reasoning_tokens(), Some(tokenizer::count(&reasoning)));
        assert_eq!(usage.completion_tokens, tokenizer::count(&reasoning) + 2);

        let budget = ask(json!({"thinking_token_budget": 3})).await.unwrap();
        let reasoning = budget.reasoning_content.unwrap();
        assert_eq!(tokenizer::count(&reasoning), 3);
        assert_eq!(budget.usage.unwrap().reasoning_tokens(), Some(3));
        assert_eq!(budget.content.as_deref(), Some("Say hi"));

        let off = ask(
            json!({"thinking_token_budget": 3, "chat_template_kwargs": {"enable_thinking": false}}),
        )
        .await
        .unwrap();
        assert_eq!(off.reasoning_content, None);
        assert_eq!(off.raw["choices"][0]["message"]["reasoning"], Value::Null);

        let hidden = ask(json!({"thinking_token_budget": 3, "include_reasoning": false}))
            .await
            .unwrap();
        assert_eq!(hidden.reasoning_content, None);
        assert_eq!(hidden.usage.unwrap().reasoning_tokens(), Some(3));
    })
    .await;
}

#[tokio::test]
async fn max_tokens_cuts_the_answer_with_finish_reason_length() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let ask = |max: u32, extra: Value| {
            client
                .chat
                .completions()
                .create()
                .model("echo")
                .messages(json!([{"role": "user", "content": "one two three four five"}]))
                .max_tokens(max)
                .extra(extra)
                .send()
        };
        let cut = ask(2, json!({})).await.unwrap();
        assert_eq!(cut.content.as_deref(), Some("one two"));
        assert_eq!(cut.finish_reason.as_deref(), Some("length"));
        assert_eq!(cut.usage.unwrap().completion_tokens, 2);

        // Exactly enough: a natural stop.
        let whole = ask(5, json!({})).await.unwrap();
        assert_eq!(whole.content.as_deref(), Some("one two three four five"));
        assert_eq!(whole.finish_reason.as_deref(), Some("stop"));

        // max_completion_tokens wins over max_tokens.
        let newer = ask(5, json!({"max_completion_tokens": 1})).await.unwrap();
        assert_eq!(newer.content.as_deref(), Some("one"));

        // Cut inside the reasoning: no content at all, as vLLM answers.
        let thinking = ask(2, json!({"thinking_token_budget": 10})).await.unwrap();
        assert_eq!(thinking.content, None);
        assert_eq!(
            thinking.raw["choices"][0]["message"]["content"],
            Value::Null
        );
        assert_eq!(tokenizer::count(&thinking.reasoning_content.unwrap()), 2);
        assert_eq!(thinking.finish_reason.as_deref(), Some("length"));
    })
    .await;
}

#[tokio::test]
async fn stop_sequences_end_the_content_and_are_reported() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let ask = |stop: Value, extra: Value| {
            client
                .chat
                .completions()
                .create()
                .model("echo")
                .messages(json!([{"role": "user", "content": "one two three four five six"}]))
                .stop(stop)
                .extra(extra)
                .send()
        };
        let response = ask(json!(["six", "four"]), json!({})).await.unwrap();
        assert_eq!(response.content.as_deref(), Some("one two three "));
        assert_eq!(response.finish_reason.as_deref(), Some("stop"));
        let choice = &response.completion().choices[0];
        assert_eq!(
            choice.stop_reason,
            Some(vllm_client::types::StopReason::Text("four".into()))
        );
        assert_eq!(response.usage.unwrap().completion_tokens, 4);

        let kept = ask(json!("four"), json!({"include_stop_str_in_output": true}))
            .await
            .unwrap();
        assert_eq!(kept.content.as_deref(), Some("one two three four"));

        let none = ask(json!(["seven"]), json!({})).await.unwrap();
        assert_eq!(none.content.as_deref(), Some("one two three four five six"));
        assert_eq!(none.raw["choices"][0]["stop_reason"], Value::Null);
    })
    .await;
}

#[tokio::test]
async fn n_gives_that_many_choices_by_index() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let response = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "a b c"}]))
            .n(3)
            .send()
            .await
            .unwrap();
        let choices = &response.completion().choices;
        assert_eq!(choices.len(), 3);
        for (i, choice) in choices.iter().enumerate() {
            assert_eq!(choice.index, i as u32);
            assert_eq!(choice.message.content.as_deref(), Some("a b c"));
        }
        assert_eq!(response.usage.unwrap().completion_tokens, 9);
    })
    .await;
}

#[tokio::test]
async fn tool_choice_required_calls_the_first_tool_with_arguments_from_the_schema() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let response = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "Paris"}]))
            .tools(weather_tool())
            .tool_choice(json!("required"))
            .send()
            .await
            .unwrap();
        assert!(response.has_tool_calls());
        assert_eq!(response.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(response.content.as_deref(), Some(""));
        let call = response.first_tool_call().unwrap();
        assert_eq!(call.name, "get_weather");
        assert!(call.id.starts_with("chatcmpl-tool-"), "{}", call.id);
        assert_eq!(call.id.len(), "chatcmpl-tool-".len() + 16);
        assert_eq!(
            call.parse_args().unwrap(),
            json!({"city": "Paris", "unit": "celsius"})
        );
        // Written as Python's json.dumps writes it, as vLLM's parsers do.
        assert_eq!(call.arguments, r#"{"city": "Paris", "unit": "celsius"}"#);
    })
    .await;
}

#[tokio::test]
async fn a_named_tool_choice_calls_it_and_reports_stop_as_vllm_does() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let mut tools = weather_tool();
        tools.as_array_mut().unwrap().push(json!({
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string", "default": "UTC"}}, "required": ["tz"]}}
        }));
        let response = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "What time is it?"}]))
            .tools(tools)
            .tool_choice(json!({"type": "function", "function": {"name": "get_time"}}))
            .send()
            .await
            .unwrap();
        let call = response.first_tool_call().unwrap();
        assert_eq!(call.name, "get_time");
        assert_eq!(call.parse_args().unwrap(), json!({"tz": "UTC"}));
        assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    })
    .await;
}

#[tokio::test]
async fn auto_calls_a_tool_only_when_the_user_names_it() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let ask = |text: &str| {
            client
                .chat
                .completions()
                .create()
                .model("echo")
                .messages(json!([{"role": "user", "content": text}]))
                .tools(weather_tool())
                .send()
        };
        let plain = ask("Hello there").await.unwrap();
        assert!(!plain.has_tool_calls());
        assert_eq!(plain.content.as_deref(), Some("Hello there"));

        let called = ask("please get_weather for Oslo").await.unwrap();
        assert_eq!(called.first_tool_call().unwrap().name, "get_weather");
        assert_eq!(called.finish_reason.as_deref(), Some("tool_calls"));

        let none = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "get_weather"}]))
            .tools(weather_tool())
            .tool_choice(json!("none"))
            .send()
            .await
            .unwrap();
        assert!(!none.has_tool_calls());
    })
    .await;
}

#[tokio::test]
async fn a_tool_result_gets_a_text_answer_that_quotes_it() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let first = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "Weather in Paris?"}]))
            .tools(weather_tool())
            .tool_choice(json!("required"))
            .send()
            .await
            .unwrap();
        let call = first.first_tool_call().unwrap();
        let history = json!([
            {"role": "user", "content": "Weather in Paris?"},
            first.assistant_message(),
            call.result("22 C and sunny"),
        ]);
        let second = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(history)
            .tools(weather_tool())
            .send()
            .await
            .unwrap();
        assert!(!second.has_tool_calls());
        assert_eq!(
            second.content.as_deref(),
            Some("The tool get_weather returned: 22 C and sunny")
        );
        assert_eq!(second.finish_reason.as_deref(), Some("stop"));
    })
    .await;
}
