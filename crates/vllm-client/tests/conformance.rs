//! Conformance against a real vLLM server, through the public `vllm_client` API only.
//!
//! Runs when `VLLM_CONFORMANCE_URL` is the base URL of a vLLM chat server (for example
//! `http://127.0.0.1:18000/v1`); otherwise every test prints a notice and passes. The server
//! this suite is written against is the one `scripts/vllm-server.sh start PORT chat` runs
//! (`scripts/ci-conformance.sh` does everything): vLLM with model id `smollm2-135m`
//! (override with `VLLM_CONFORMANCE_MODEL`), `--max-model-len 4096`, `--reasoning-parser qwen3`,
//! `--enable-auto-tool-choice --tool-call-parser hermes`, and a chat template that opens a
//! `<think>` block unless `chat_template_kwargs.enable_thinking` is false.
//!
//! The embeddings tests run against a second, pooling instance, named by
//! `VLLM_CONFORMANCE_EMBED_URL` (`scripts/vllm-server.sh start PORT embed`: model id
//! `smollm2-135m-embed`, override with `VLLM_CONFORMANCE_EMBED_MODEL`); without that variable
//! they print a notice and pass, whether or not `VLLM_CONFORMANCE_URL` is set.
//!
//! The `validation_*` tests send vLLM's captured invalid and borderline requests
//! (`vllm-types/tests/fixtures/vllm-0.32-cpu/validation/`) to the chat server and to an
//! in-process `vllm_mock::MockServer`, and want the same answers from both.
//!
//! The tests take turns (one lock): greedy decoding on a CPU is only reproducible when the
//! batch around a request is the same, and the server is slow (about 38 tokens/s), so requests
//! stay small (`max_tokens` ≤ 32, except where a forced tool call needs more, and one request
//! that is dropped after its first event) and every test is bounded in time.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use support::assert_same_answer;
use vllm_client::types::FinishReason;
use vllm_client::{
    ChatCompletionBuilder, ChatCompletionResponse, CompletionStream, MessageStream, StreamEvent,
    ToolCall, Usage, VllmClient, VllmError, json,
};

/// How long one test may take once it holds the lock.
const TEST_LIMIT: Duration = Duration::from_secs(180);

/// The tests take turns: see the module documentation.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The vLLM instance a test runs against.
#[derive(Debug, Clone, Copy)]
enum Instance {
    /// The chat (generate) instance: `VLLM_CONFORMANCE_URL`.
    Chat,
    /// The pooling instance serving `/v1/embeddings`: `VLLM_CONFORMANCE_EMBED_URL`.
    Embed,
}

impl Instance {
    /// The variable naming its base URL, and an example of one.
    fn variable(self) -> (&'static str, &'static str) {
        match self {
            Instance::Chat => ("VLLM_CONFORMANCE_URL", "http://127.0.0.1:18000/v1"),
            Instance::Embed => ("VLLM_CONFORMANCE_EMBED_URL", "http://127.0.0.1:18001/v1"),
        }
    }
}

/// Runs `test` against the chat server named by `VLLM_CONFORMANCE_URL`; see [`on`].
async fn conformance<F, Fut>(test: F)
where
    F: FnOnce(VllmClient) -> Fut,
    Fut: Future<Output = ()>,
{
    on(Instance::Chat, test).await;
}

/// Runs `test` against `instance`, bounded by [`TEST_LIMIT`]; without the variable naming
/// that instance, prints a notice and returns.
async fn on<F, Fut>(instance: Instance, test: F)
where
    F: FnOnce(VllmClient) -> Fut,
    Fut: Future<Output = ()>,
{
    // The test harness names each test's thread after the test.
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("a conformance test");
    let (variable, example) = instance.variable();
    let url = match std::env::var(variable) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            eprintln!(
                "skipped {name}: set {variable} to a vLLM server's base URL \
                 (e.g. {example}) to run it"
            );
            return;
        }
    };
    let _turn = TURN.lock().await;
    // No retries: a conformance failure should show the server's first answer.
    let client = VllmClient::builder()
        .base_url(url.trim())
        .timeout_secs(120)
        .max_retries(0)
        .build();
    if tokio::time::timeout(TEST_LIMIT, test(client))
        .await
        .is_err()
    {
        panic!("{name} took longer than {TEST_LIMIT:?}");
    }
}

fn model() -> String {
    std::env::var("VLLM_CONFORMANCE_MODEL")
        .ok()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| "smollm2-135m".to_owned())
}

fn embed_model() -> String {
    std::env::var("VLLM_CONFORMANCE_EMBED_MODEL")
        .ok()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| "smollm2-135m-embed".to_owned())
}

/// A chat request for `prompt`: greedy, at most `max_tokens` tokens, thinking off.
fn chat(client: &VllmClient, prompt: &str, max_tokens: u32) -> ChatCompletionBuilder {
    client
        .chat
        .completions()
        .create()
        .model(model())
        .messages(json!([{"role": "user", "content": prompt}]))
        .temperature(0.0)
        .max_tokens(max_tokens)
        .chat_template_kwargs(json!({"enable_thinking": false}))
}

/// A chat request with thinking on, capped at `budget` reasoning tokens.
fn thinking_chat(
    client: &VllmClient,
    prompt: &str,
    max_tokens: u32,
    budget: u32,
) -> ChatCompletionBuilder {
    client
        .chat
        .completions()
        .create()
        .model(model())
        .messages(json!([{"role": "user", "content": prompt}]))
        .temperature(0.0)
        .max_tokens(max_tokens)
        .thinking_token_budget(budget)
}

/// Everything a stream carried, per choice, as the client reported it.
#[derive(Debug, Default)]
struct Streamed {
    content: BTreeMap<u32, String>,
    reasoning: BTreeMap<u32, String>,
    /// The order of the first choice's text events: `'r'` reasoning, `'c'` content.
    order: String,
    calls: Vec<ToolCall>,
    finished: BTreeMap<u32, String>,
    usage: Vec<Usage>,
    done: usize,
    events_after_end: usize,
}

impl Streamed {
    fn content(&self) -> String {
        self.content.get(&0).cloned().unwrap_or_default()
    }

    fn reasoning(&self) -> String {
        self.reasoning.get(&0).cloned().unwrap_or_default()
    }

    /// The one usage report of the stream.
    fn usage(&self) -> &Usage {
        assert_eq!(self.usage.len(), 1, "one Usage event per stream: {self:?}");
        &self.usage[0]
    }
}

/// A chat or a completion stream, read through the 0.1 API (`next`, `choice_index`).
trait Events {
    async fn next_event(&mut self) -> Option<StreamEvent>;
    fn choice(&self) -> Option<u32>;
}

impl Events for MessageStream {
    async fn next_event(&mut self) -> Option<StreamEvent> {
        self.next().await
    }
    fn choice(&self) -> Option<u32> {
        self.choice_index()
    }
}

impl Events for CompletionStream {
    async fn next_event(&mut self) -> Option<StreamEvent> {
        self.next().await
    }
    fn choice(&self) -> Option<u32> {
        self.choice_index()
    }
}

/// Reads `stream` to its end; an `Error` event fails the test.
async fn read(mut stream: impl Events) -> Streamed {
    let mut seen = Streamed::default();
    while let Some(event) = stream.next_event().await {
        if seen.done > 0 {
            seen.events_after_end += 1;
        }
        let choice = stream.choice();
        match event {
            StreamEvent::Content(text) => {
                if choice == Some(0) {
                    seen.order.push('c');
                }
                let choice = choice.expect("content belongs to a choice");
                seen.content.entry(choice).or_default().push_str(&text);
            }
            StreamEvent::Reasoning(text) => {
                if choice == Some(0) {
                    seen.order.push('r');
                }
                let choice = choice.expect("reasoning belongs to a choice");
                seen.reasoning.entry(choice).or_default().push_str(&text);
            }
            StreamEvent::ToolCallComplete(call) => seen.calls.push(call),
            StreamEvent::Finished { index, reason } => {
                assert_eq!(choice, Some(index), "Finished is tagged with its choice");
                let previous = seen.finished.insert(index, reason.to_string());
                assert!(previous.is_none(), "choice {index} finished twice");
            }
            StreamEvent::Usage(usage) => {
                assert_eq!(choice, None, "usage belongs to the whole response");
                seen.usage.push(usage);
            }
            StreamEvent::Done => seen.done += 1,
            StreamEvent::Error(e) => panic!("the stream failed: {e} ({e:?})"),
            _ => {}
        }
    }
    assert_eq!(seen.done, 1, "a stream ends with exactly one Done");
    assert_eq!(seen.events_after_end, 0, "nothing follows Done");
    seen
}

fn usage_of(response: &ChatCompletionResponse) -> &Usage {
    response.usage.as_ref().expect("the response reports usage")
}

/// The token counts two usage reports must agree on.
fn counts(usage: &Usage) -> (u32, u32, u32, Option<u32>) {
    (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
        usage.reasoning_tokens(),
    )
}

/// The answer's text as the client reports it, treating `None` and `""` alike.
fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

// ------------------------------------------------------------------------------ plain chat

#[tokio::test]
async fn greedy_stream_text_equals_non_stream_text() {
    conformance(|client| async move {
        let prompt = "Count from one to five.";
        let whole = chat(&client, prompt, 24).send().await.unwrap();
        let streamed = read(chat(&client, prompt, 24).send_stream().await.unwrap()).await;

        assert!(!text(&whole.content).is_empty(), "{whole:?}");
        assert_eq!(streamed.content(), text(&whole.content));
        assert_eq!(
            streamed.finished.get(&0).map(String::as_str),
            whole.finish_reason.as_deref()
        );
        assert_eq!(whole.reasoning_content, None, "thinking is off");
        assert!(
            streamed.reasoning.is_empty(),
            "thinking is off: {streamed:?}"
        );
        assert_eq!(counts(streamed.usage()), counts(usage_of(&whole)));
        assert_eq!(whole.model, model());
        assert_eq!(whole.object, "chat.completion");
    })
    .await;
}

#[tokio::test]
async fn stream_usage_equals_non_stream_usage() {
    conformance(|client| async move {
        // Thinking on, so that the reasoning token count is compared too.
        let prompt = "What is the capital of France?";
        let whole = thinking_chat(&client, prompt, 24, 6).send().await.unwrap();
        let streamed = read(
            thinking_chat(&client, prompt, 24, 6)
                .send_stream()
                .await
                .unwrap(),
        )
        .await;

        let usage = usage_of(&whole);
        assert_eq!(counts(streamed.usage()), counts(usage));
        assert!(
            usage.prompt_tokens > 0 && usage.completion_tokens > 0,
            "{usage:?}"
        );
        assert_eq!(
            usage.total_tokens,
            usage.prompt_tokens + usage.completion_tokens
        );
        // The same greedy text too, split the same way between reasoning and content.
        assert_eq!(streamed.reasoning(), text(&whole.reasoning_content));
        assert_eq!(streamed.content(), text(&whole.content));
    })
    .await;
}

#[tokio::test]
async fn stream_without_include_usage_reports_no_usage() {
    conformance(|client| async move {
        let stream = chat(&client, "Say hi.", 8)
            .stream_options(json!({"include_usage": false}))
            .send_stream()
            .await
            .unwrap();
        let streamed = read(stream).await;
        assert!(streamed.usage.is_empty(), "{streamed:?}");
        assert!(streamed.finished.contains_key(&0), "{streamed:?}");
    })
    .await;
}

// ------------------------------------------------------------------------------- reasoning

#[tokio::test]
async fn reasoning_arrives_with_a_thinking_budget() {
    conformance(|client| async move {
        let prompt = "What is the capital of France? Answer in one sentence.";
        let whole = thinking_chat(&client, prompt, 24, 6).send().await.unwrap();
        let reasoning = text(&whole.reasoning_content);
        assert!(!reasoning.is_empty(), "reasoning expected: {whole:?}");
        assert!(
            !reasoning.contains("<think>") && !reasoning.contains("</think>"),
            "{reasoning:?}"
        );
        assert!(!text(&whole.content).contains("</think>"), "{whole:?}");
        let reasoning_tokens = usage_of(&whole).reasoning_tokens();
        assert!(
            reasoning_tokens.is_some_and(|n| n > 0 && n <= 6),
            "reasoning tokens within the budget of 6: {reasoning_tokens:?}"
        );
        // `raw` keeps vLLM's own member name.
        assert_eq!(whole.raw["choices"][0]["message"]["reasoning"], reasoning);

        let streamed = read(
            thinking_chat(&client, prompt, 24, 6)
                .send_stream()
                .await
                .unwrap(),
        )
        .await;
        assert!(!streamed.reasoning().is_empty(), "{streamed:?}");
        // Reasoning first, then the answer: no reasoning once content has started.
        let first_content = streamed.order.find('c').unwrap_or(streamed.order.len());
        assert!(
            !streamed.order[first_content..].contains('r'),
            "reasoning after content: {}",
            streamed.order
        );
        assert!(streamed.order.starts_with('r'), "{}", streamed.order);
    })
    .await;
}

#[tokio::test]
async fn no_reasoning_when_thinking_is_off() {
    conformance(|client| async move {
        let prompt = "What is the capital of France? Answer in one sentence.";
        // Through the typed setter (`chat` uses `.chat_template_kwargs(..)`)…
        let whole = chat(&client, prompt, 16).send().await.unwrap();
        assert_eq!(whole.reasoning_content, None, "{whole:?}");
        assert!(!text(&whole.content).is_empty(), "{whole:?}");
        assert_eq!(usage_of(&whole).reasoning_tokens().unwrap_or(0), 0);

        // …and through `extra`, streamed.
        let stream = client
            .chat
            .completions()
            .create()
            .model(model())
            .messages(json!([{"role": "user", "content": prompt}]))
            .temperature(0.0)
            .max_tokens(16)
            .extra(json!({"chat_template_kwargs": {"enable_thinking": false}}))
            .send_stream()
            .await
            .unwrap();
        let streamed = read(stream).await;
        assert!(streamed.reasoning.is_empty(), "{streamed:?}");
        assert_eq!(streamed.content(), text(&whole.content));
        assert_eq!(streamed.usage().reasoning_tokens().unwrap_or(0), 0);
    })
    .await;
}

// ------------------------------------------------------------------------------ tool calls

fn weather_tool() -> vllm_client::Value {
    json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city",
            "strict": true,
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
                "additionalProperties": false
            }
        }
    }])
}

/// Tokens a forced `get_weather` call may take. vLLM constrains a `required` or named call to
/// the parser's whole `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>` block, and this
/// model spends about 39 tokens on it (it indents the arguments): with 32 the block is cut off
/// and vLLM returns it as plain content, with no `tool_calls`.
const TOOL_CALL_TOKENS: u32 = 64;

/// A request that must call `get_weather`, with `tool_choice` set to `choice`.
fn tool_request(client: &VllmClient, choice: vllm_client::Value) -> ChatCompletionBuilder {
    chat(client, "What is the weather in Paris?", TOOL_CALL_TOKENS)
        .tools(weather_tool())
        .tool_choice(choice)
}

/// The one call a response made, checked for shape.
fn single_call(calls: &[ToolCall]) -> &ToolCall {
    assert_eq!(calls.len(), 1, "exactly one call: {calls:?}");
    let call = &calls[0];
    assert_eq!(call.name, "get_weather");
    assert!(!call.id.is_empty(), "calls have ids: {call:?}");
    let args = call.parse_args().unwrap();
    assert!(
        args["city"].is_string(),
        "the schema's required city: {args}"
    );
    call
}

async fn same_call_streamed_and_not(
    client: &VllmClient,
    choice: vllm_client::Value,
    finish_reasons: &[&str],
) {
    let whole = tool_request(client, choice.clone()).send().await.unwrap();
    assert!(whole.has_tool_calls(), "{whole:?}");
    let call = single_call(whole.tool_calls.as_deref().unwrap());
    let reason = whole.finish_reason.as_deref().unwrap_or_default();
    assert!(finish_reasons.contains(&reason), "finish reason {reason:?}");
    assert_eq!(whole.first_tool_call(), Some(call));

    let streamed = read(tool_request(client, choice).send_stream().await.unwrap()).await;
    let streamed_call = single_call(&streamed.calls);
    assert_eq!(streamed_call.name, call.name);
    assert_eq!(
        streamed_call.parse_args().unwrap(),
        call.parse_args().unwrap(),
        "the same arguments streamed ({:?}) and not ({:?})",
        streamed_call.arguments,
        call.arguments
    );
    let reason = streamed
        .finished
        .get(&0)
        .map(String::as_str)
        .unwrap_or_default();
    assert!(
        finish_reasons.contains(&reason),
        "streamed finish reason {reason:?}"
    );
}

#[tokio::test]
async fn required_tool_call_is_the_same_streamed_and_not() {
    conformance(|client| async move {
        same_call_streamed_and_not(&client, json!("required"), &["tool_calls"]).await;
    })
    .await;
}

#[tokio::test]
async fn named_tool_call_is_the_same_streamed_and_not() {
    conformance(|client| async move {
        // vLLM reports a named call as `stop` (as OpenAI does); accept `tool_calls` too.
        let named = json!({"type": "function", "function": {"name": "get_weather"}});
        same_call_streamed_and_not(&client, named, &["stop", "tool_calls"]).await;
    })
    .await;
}

#[tokio::test]
async fn tool_result_follow_up_is_accepted() {
    conformance(|client| async move {
        let first = tool_request(&client, json!("required"))
            .send()
            .await
            .unwrap();
        let call = single_call(first.tool_calls.as_deref().unwrap()).clone();
        let assistant = first.assistant_message();
        assert_eq!(assistant["role"], "assistant");
        assert_eq!(assistant["tool_calls"][0]["id"], call.id.as_str());
        let messages = json!([
            {"role": "user", "content": "What is the weather in Paris?"},
            assistant,
            call.result("22 C and sunny"),
        ]);
        let follow_up = |client: &VllmClient| {
            client
                .chat
                .completions()
                .create()
                .model(model())
                .messages(messages.clone())
                .tools(weather_tool())
                .temperature(0.0)
                .max_tokens(16)
                .chat_template_kwargs(json!({"enable_thinking": false}))
        };
        let answer = follow_up(&client).send().await.unwrap();
        assert!(answer.finish_reason.is_some(), "{answer:?}");
        assert!(
            !text(&answer.content).is_empty() || answer.has_tool_calls(),
            "the follow-up answers something: {answer:?}"
        );
        let usage = usage_of(&answer);
        assert!(
            usage.prompt_tokens > usage_of(&first).prompt_tokens,
            "the tool result is part of the prompt: {usage:?}"
        );

        let streamed = read(follow_up(&client).send_stream().await.unwrap()).await;
        assert!(streamed.finished.contains_key(&0), "{streamed:?}");
        assert_eq!(streamed.usage().prompt_tokens, usage.prompt_tokens);
    })
    .await;
}

// ------------------------------------------------------------ the whole answer of a stream

/// Streams `request` to its end with `try_next` and returns what the stream added up to.
async fn streamed_answer(
    request: ChatCompletionBuilder,
) -> (ChatCompletionResponse, MessageStream) {
    let mut stream = request.send_stream().await.unwrap();
    while stream.try_next().await.unwrap().is_some() {}
    let answer = stream
        .final_response()
        .expect("a stream that ended with [DONE] has its whole answer");
    (answer, stream)
}

#[tokio::test]
async fn final_response_equals_the_unstreamed_answer() {
    conformance(|client| async move {
        // Reasoning, then content, with log probabilities: greedy, so the same tokens.
        let request = || {
            thinking_chat(&client, "What is the capital of France?", 24, 6)
                .logprobs(true)
                .top_logprobs(1)
        };
        let whole = request().send().await.unwrap();
        let (streamed, stream) = streamed_answer(request()).await;
        assert_same_answer(streamed.completion(), whole.completion(), "n=1");
        assert_eq!(streamed.usage, whole.usage);
        assert_eq!(streamed.content, whole.content);
        assert_eq!(streamed.reasoning_content, whole.reasoning_content);
        assert_eq!(streamed.finish_reason, whole.finish_reason);
        assert_eq!(streamed.typed_finish_reason(), whole.typed_finish_reason());
        assert_eq!(streamed.model, whole.model);
        assert!(streamed.reasoning_content.is_some(), "{whole:?}");
        // And the stream's timings saw the reasoning before the answer.
        let t = stream.timings();
        assert!(t.first_reasoning().unwrap() <= t.first_content().unwrap());
        assert!(t.chunks() > 2);
    })
    .await;
}

#[tokio::test]
async fn final_response_of_two_seeded_choices_equals_the_unstreamed_answer() {
    conformance(|client| async move {
        // vLLM refuses n > 1 with greedy sampling ("n must be 1 when using greedy
        // sampling"); a seed makes sampling just as reproducible.
        let request = || {
            chat(&client, "Name three colours.", 12)
                .temperature(0.8)
                .seed(7)
                .n(2)
                .logprobs(true)
        };
        let whole = request().send().await.unwrap();
        assert_eq!(whole.completion().choices.len(), 2, "{whole:?}");
        let (streamed, _) = streamed_answer(request()).await;
        assert_same_answer(streamed.completion(), whole.completion(), "n=2");
        assert_eq!(streamed.usage, whole.usage);
        // collect_response gives the same.
        let collected = request()
            .send_stream()
            .await
            .unwrap()
            .collect_response()
            .await
            .unwrap();
        assert_same_answer(collected.completion(), whole.completion(), "n=2, collected");
    })
    .await;
}

#[tokio::test]
async fn final_response_of_a_forced_tool_call_equals_the_unstreamed_answer() {
    conformance(|client| async move {
        let request = || tool_request(&client, json!("required"));
        let whole = request().send().await.unwrap();
        assert!(whole.has_tool_calls(), "{whole:?}");
        let (streamed, _) = streamed_answer(request()).await;
        assert_same_answer(streamed.completion(), whole.completion(), "tool call");
        assert_eq!(streamed.content, whole.content);
        assert_eq!(streamed.usage, whole.usage);
    })
    .await;
}

// ------------------------------------------------------------------------ n = 2, logprobs

#[tokio::test]
async fn two_choices_with_logprobs() {
    conformance(|client| async move {
        let request = || {
            chat(&client, "Say hi", 8)
                .temperature(0.8)
                .seed(1)
                .n(2)
                .logprobs(true)
                .top_logprobs(2)
        };
        let whole = request().send().await.unwrap();
        let choices = &whole.completion().choices;
        assert_eq!(choices.len(), 2, "{whole:?}");
        let mut generated = 0;
        for (i, choice) in choices.iter().enumerate() {
            assert_eq!(choice.index as usize, i);
            assert!(choice.finish_reason.is_some(), "{choice:?}");
            let logprobs = choice.logprobs.as_ref().expect("logprobs were asked for");
            let tokens = logprobs.content.as_deref().expect("content logprobs");
            assert!(!tokens.is_empty(), "{choice:?}");
            for token in tokens {
                assert!(token.logprob <= 0.0, "{token:?}");
                let top = token.top_logprobs.as_deref().unwrap_or_default();
                assert_eq!(top.len(), 2, "top_logprobs = 2: {token:?}");
                // vLLM lists the sampled token first, even when it is not the most likely
                // (OpenAI lists the most likely first): check consistency, not order.
                for alternative in top.iter().filter(|t| t.token == token.token) {
                    assert_eq!(alternative.logprob, token.logprob, "{token:?}");
                }
            }
            // One logprob entry per generated token.
            generated += tokens.len() as u32;
            let content = choice.message.content.as_deref().unwrap_or_default();
            let joined: String = tokens.iter().map(|t| t.token.as_str()).collect();
            assert_eq!(joined, content, "the tokens spell the content");
        }
        assert_eq!(usage_of(&whole).completion_tokens, generated);
        assert_eq!(whole.content, choices[0].message.content);

        // Streamed: each choice's content, told apart by `choice_index()`.
        let streamed = read(request().send_stream().await.unwrap()).await;
        assert_eq!(
            streamed.finished.keys().copied().collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(streamed.usage().completion_tokens, generated);
        for choice in choices {
            assert_eq!(
                streamed
                    .content
                    .get(&choice.index)
                    .map(String::as_str)
                    .unwrap_or_default(),
                choice.message.content.as_deref().unwrap_or_default(),
                "choice {} (same seed)",
                choice.index
            );
        }
    })
    .await;
}

// ------------------------------------------------------------------------- stop sequences

#[tokio::test]
async fn stop_sequence_ends_the_text_before_it() {
    conformance(|client| async move {
        let prompt = "Count from one to ten.";
        let free = chat(&client, prompt, 24).send().await.unwrap();
        let full = text(&free.content).to_owned();
        // A stop string taken from the middle of the greedy answer: the same request with it
        // must end just before its first occurrence.
        let chars: Vec<(usize, char)> = full.char_indices().collect();
        assert!(chars.len() >= 6, "a long enough answer to cut: {full:?}");
        let from = chars[chars.len() / 2].0;
        let to = chars.get(chars.len() / 2 + 2).map_or(full.len(), |c| c.0);
        let stop = &full[from..to];
        let expected = &full[..full.find(stop).unwrap()];

        let cut = chat(&client, prompt, 24)
            .stop(json!([stop]))
            .send()
            .await
            .unwrap();
        assert_eq!(text(&cut.content), expected, "stop {stop:?} in {full:?}");
        assert_eq!(cut.finish_reason.as_deref(), Some("stop"));
        let choice = &cut.completion().choices[0];
        assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
        assert_eq!(
            serde_json::to_value(&choice.stop_reason).unwrap(),
            json!(stop),
            "vLLM names the stop string that matched"
        );

        let streamed = read(
            chat(&client, prompt, 24)
                .stop(json!([stop]))
                .send_stream()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(streamed.content(), expected);
        assert_eq!(streamed.finished.get(&0).map(String::as_str), Some("stop"));
    })
    .await;
}

// ---------------------------------------------------------------------- legacy completions

#[tokio::test]
async fn legacy_completions_plain_and_streamed() {
    conformance(|client| async move {
        let request = || {
            client
                .completions
                .create()
                .model(model())
                .prompt("The capital of France is")
                .temperature(0.0)
                .max_tokens(16)
        };
        let whole = request().send().await.unwrap();
        assert!(!whole.text.is_empty(), "{whole:?}");
        assert_eq!(whole.model, model());
        assert_eq!(whole.completion().object, "text_completion");
        let usage = whole.usage.clone().expect("usage");
        assert!(
            usage.completion_tokens > 0 && usage.completion_tokens <= 16,
            "{usage:?}"
        );

        let streamed = read(request().send_stream().await.unwrap()).await;
        assert_eq!(streamed.content(), whole.text);
        assert_eq!(
            streamed.finished.get(&0).map(String::as_str),
            whole.finish_reason.as_deref()
        );
        assert_eq!(counts(streamed.usage()), counts(&usage));
    })
    .await;
}

// ---------------------------------------------------------------------------- concurrency

#[tokio::test]
async fn sixteen_concurrent_streams_on_one_client() {
    conformance(|client| async move {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    let prompt = format!("Write the number {i} in words.");
                    let stream = chat(&client, &prompt, 12).send_stream().await?;
                    Ok::<_, VllmError>(read(stream).await)
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let streamed = task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("stream {i}: {e}"));
            // `read` checked the one Done at the end.
            assert!(
                streamed.finished.contains_key(&0),
                "stream {i}: {streamed:?}"
            );
            assert!(
                streamed.usage().completion_tokens > 0,
                "stream {i}: {streamed:?}"
            );
        }
    })
    .await;
}

// --------------------------------------------------------------------------------- errors

/// A typed status error whose `Display` names the request and the status, then gives the
/// server's own message (`POST /v1/chat/completions: 404 Not Found: The model …`).
fn check_status_error(e: &VllmError, status: u16, mentions: &str) {
    assert!(e.is_status(), "a status error: {e:?}");
    assert_eq!(e.status_code(), Some(status), "{e:?}");
    let message = e.server_message().expect("the server's message");
    assert!(
        !message.trim_start().starts_with('{'),
        "the message, not the JSON body: {message}"
    );
    let shown = e.to_string();
    assert!(
        shown.starts_with("POST /v1/")
            && shown.ends_with(&format!(" {status} {}: {message}", reason(status))),
        "Display names the request and the status, then the server's message: {shown}"
    );
    assert!(
        message.contains(mentions),
        "{message:?} mentions {mentions:?}"
    );
    assert!(
        e.body_text()
            .is_some_and(|b| b.trim_start().starts_with('{')),
        "{e:?}"
    );
    assert!(!e.is_retryable(), "{e:?}");
}

/// The reason phrase of the statuses these tests expect.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        404 => "Not Found",
        other => panic!("no reason phrase for {other} here"),
    }
}

/// Sends `request` plain and streamed; both must fail with `status`.
async fn both_fail(request: impl Fn() -> ChatCompletionBuilder, status: u16, mentions: &str) {
    let e = request().send().await.unwrap_err();
    check_status_error(&e, status, mentions);
    let e = request().send_stream().await.unwrap_err();
    check_status_error(&e, status, mentions);
}

#[tokio::test]
async fn unknown_model_is_a_typed_404() {
    conformance(|client| async move {
        both_fail(
            || chat(&client, "hi", 4).model("no-such-model"),
            404,
            "no-such-model",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn max_tokens_beyond_the_context_is_a_typed_400() {
    conformance(|client| async move {
        both_fail(|| chat(&client, "hi", 100_000), 400, "max_tokens").await;
    })
    .await;
}

#[tokio::test]
async fn malformed_request_is_a_typed_400() {
    conformance(|client| async move {
        both_fail(
            || chat(&client, "hi", 4).extra(json!({"max_tokens": "abc"})),
            400,
            "max_tokens",
        )
        .await;
    })
    .await;
}

// -------------------------------------------------------------------------------- models

#[tokio::test]
async fn models_list_names_the_served_model() {
    conformance(|client| async move {
        let models = client.models.list().send().await.unwrap();
        assert_eq!(models.object, "list");
        let served = models
            .get(&model())
            .unwrap_or_else(|| panic!("{} is served: {models:?}", model()));
        assert_eq!(served.id, model());
        assert_eq!(served.object, "model");
        assert_eq!(served.owned_by.as_deref(), Some("vllm"));
        // `root` is what `--model` named (a path here), `parent` is only set for LoRA adapters.
        assert!(
            served.root.as_deref().is_some_and(|r| !r.is_empty()),
            "{served:?}"
        );
        assert_eq!(served.parent, None);
        let context = served.max_model_len.expect("vLLM reports max_model_len");
        // The same context length as `/tokenize` reports.
        let tokens = client
            .tokenizer
            .tokenize()
            .model(model())
            .prompt("hi")
            .send()
            .await
            .unwrap();
        assert_eq!(tokens.max_model_len, Some(context));
        // …and the one vLLM enforces: more `max_tokens` than that is refused, naming it.
        let e = chat(&client, "hi", context + 1).send().await.unwrap_err();
        assert_eq!(e.status_code(), Some(400), "{e:?}");
        assert!(
            e.to_string().contains(&format!("max_model_len={context}")),
            "{e}"
        );
    })
    .await;
}

// ----------------------------------------------------------------------------- tokenizer

/// A plain ASCII text: its tokens' texts spell it, and it survives a round trip.
const ASCII_TEXT: &str = "Hello, world! The quick brown fox jumps over 13 lazy dogs.";

/// A token's text as the tokenizer lists it (byte-level BPE: `Ġ` is a space, `Ċ` a newline),
/// back to plain text. Only meant for ASCII text.
fn plain(token_str: &str) -> String {
    token_str.replace('Ġ', " ").replace('Ċ', "\n")
}

#[tokio::test]
async fn tokenize_prompt_form_and_detokenize_round_trip() {
    conformance(|client| async move {
        let tokens = client
            .tokenizer
            .tokenize()
            .model(model())
            .prompt(ASCII_TEXT)
            .return_token_strs(true)
            .send()
            .await
            .unwrap();
        assert!(!tokens.tokens.is_empty(), "{tokens:?}");
        assert_eq!(tokens.count, Some(tokens.tokens.len() as u32));
        assert!(tokens.max_model_len.is_some_and(|n| n > 0), "{tokens:?}");
        let strs = tokens
            .token_strs
            .as_deref()
            .expect("token_strs were asked for");
        assert_eq!(strs.len(), tokens.tokens.len(), "{tokens:?}");
        // This model adds no BOS to a plain prompt, so the tokens' texts spell the text.
        assert_eq!(
            strs.iter().map(|s| plain(s)).collect::<String>(),
            ASCII_TEXT
        );

        // Without `return_token_strs`, vLLM sends `"token_strs": null`.
        let bare = client
            .tokenizer
            .tokenize()
            .model(model())
            .prompt(ASCII_TEXT)
            .send()
            .await
            .unwrap();
        assert_eq!(bare.tokens, tokens.tokens);
        assert_eq!(bare.token_strs, None);

        let text = client
            .tokenizer
            .detokenize()
            .model(model())
            .tokens(tokens.tokens.iter().copied())
            .send()
            .await
            .unwrap();
        assert_eq!(text.text(), ASCII_TEXT, "detokenize(tokenize(x)) == x");
        assert_eq!(text.prompt, ASCII_TEXT, "vLLM answers with `prompt`");
    })
    .await;
}

fn hi() -> vllm_client::Value {
    json!([{"role": "user", "content": "hi"}])
}

#[tokio::test]
async fn tokenize_chat_form_is_the_prompt_a_chat_request_sends() {
    conformance(|client| async move {
        let tokenize = |generation_prompt: bool| {
            client
                .tokenizer
                .tokenize()
                .model(model())
                .messages(hi())
                .add_generation_prompt(generation_prompt)
                .return_token_strs(true)
                .send()
        };
        let with = tokenize(true).await.unwrap();
        let without = tokenize(false).await.unwrap();
        let count = with.count.expect("vLLM reports count");
        assert_eq!(count as usize, with.tokens.len());
        assert_eq!(
            with.token_strs.as_ref().map(Vec::len),
            Some(with.tokens.len())
        );
        // The generation prompt is appended: the rest is the same tokens.
        assert!(
            without.tokens.len() < with.tokens.len() && with.tokens.starts_with(&without.tokens),
            "{without:?} is a strict prefix of {with:?}"
        );
        let rendered = client
            .tokenizer
            .detokenize()
            .model(model())
            .tokens(with.tokens.iter().copied())
            .send()
            .await
            .unwrap();
        let rendered = rendered.text();
        assert!(
            rendered.starts_with("<|im_start|>user") && rendered.contains("hi<|im_end|>"),
            "the chat template rendered: {rendered:?}"
        );
        assert!(
            rendered.ends_with("<|im_start|>assistant\n<think>\n"),
            "with the generation prompt (thinking on by default): {rendered:?}"
        );

        // A chat request with the same messages (thinking on: the same template) has exactly
        // that many prompt tokens.
        let answer = client
            .chat
            .completions()
            .create()
            .model(model())
            .messages(hi())
            .temperature(0.0)
            .max_tokens(1)
            .send()
            .await
            .unwrap();
        assert_eq!(usage_of(&answer).prompt_tokens, count);
    })
    .await;
}

/// The requests the chat server is running or holding, from its Prometheus metrics.
async fn requests_in_flight(client: &VllmClient) -> f64 {
    let metrics = client.server.metrics().send().await.unwrap();
    metrics
        .lines()
        .filter(|line| {
            line.starts_with("vllm:num_requests_running")
                || line.starts_with("vllm:num_requests_waiting{")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn max_tokens_for_is_the_room_left_and_a_clamped_request_is_accepted() {
    conformance(|client| async move {
        let tokens = client
            .tokenizer
            .tokenize()
            .model(model())
            .messages(hi())
            .add_generation_prompt(true)
            .send()
            .await
            .unwrap();
        let models = client.models.list().send().await.unwrap();
        let context = models.get(&model()).unwrap().max_model_len.unwrap();
        let prompt = tokens.count.unwrap();
        let room = client.max_tokens_for(&model(), hi()).await.unwrap();
        assert_eq!(room, context - prompt);
        assert_eq!(
            client.clamp_max_tokens(&model(), hi(), 16).await.unwrap(),
            16
        );
        let clamped = client
            .clamp_max_tokens(&model(), hi(), 100_000)
            .await
            .unwrap();
        assert_eq!(clamped, room);

        // `max_tokens: 100_000` is a 400 (see `max_tokens_beyond_the_context_is_a_typed_400`);
        // the clamped value is accepted. It may generate up to the end of the context (minutes
        // on this server), so the stream is dropped after its first event, which makes vLLM
        // abort the request.
        let mut stream = client
            .chat
            .completions()
            .create()
            .model(model())
            .messages(hi())
            .temperature(0.0)
            .max_tokens(clamped)
            .send_stream()
            .await
            .unwrap_or_else(|e| panic!("max_tokens {clamped} was refused: {e} ({e:?})"));
        match stream.next().await {
            Some(StreamEvent::Reasoning(_) | StreamEvent::Content(_)) => {}
            other => panic!("generation started: {other:?}"),
        }
        drop(stream);
        // The next test must find the server idle.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while requests_in_flight(&client).await > 0.0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "vLLM still runs the dropped request after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

// --------------------------------------------------------------------------------- server

#[tokio::test]
async fn server_health_version_and_metrics() {
    conformance(|client| async move {
        let health = client.server.health().await.unwrap();
        assert!(health.healthy, "{health:?}");
        assert_eq!(health.status, 200);

        let version = client.server.version().send().await.unwrap().version;
        assert!(!version.trim().is_empty());
        assert!(
            version.starts_with(|c: char| c.is_ascii_digit()),
            "a version number: {version:?}"
        );
        // Chat responses carry it in their fingerprint.
        let answer = chat(&client, "hi", 1).send().await.unwrap();
        let fingerprint = answer.completion().system_fingerprint.clone();
        assert!(
            fingerprint
                .as_deref()
                .is_some_and(|f| f.starts_with(&format!("vllm-{version}-"))),
            "{fingerprint:?} names version {version}"
        );

        let metrics = client.server.metrics().send().await.unwrap();
        assert!(
            metrics.contains("# TYPE vllm:num_requests_running gauge"),
            "Prometheus text with vLLM's gauges"
        );
    })
    .await;
}

// ----------------------------------------------------------------------------- embeddings

#[tokio::test]
async fn embeddings_are_not_served_by_the_chat_instance() {
    conformance(|client| async move {
        let e = client
            .embeddings
            .create()
            .model(model())
            .input("hello world")
            .send()
            .await
            .unwrap_err();
        // The route is not mounted on a generate runner: FastAPI's `{"detail": "Not Found"}`.
        assert!(e.is_status(), "{e:?}");
        assert_eq!(e.status_code(), Some(404));
        assert_eq!(e.server_message().as_deref(), Some("Not Found"));
        assert_eq!(
            e.to_string(),
            "POST /v1/embeddings: 404 Not Found: Not Found"
        );
        assert!(e.server_error().is_some(), "{e:?}");
    })
    .await;
}

/// Length (Euclidean norm) of a vector.
fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

/// Embeddings of `input` from the embed instance, in `format`.
async fn embed(
    client: &VllmClient,
    input: vllm_client::Value,
    format: &str,
) -> vllm_client::Embeddings {
    client
        .embeddings
        .create()
        .model(embed_model())
        .input(input)
        .encoding_format(format)
        .send()
        .await
        .unwrap_or_else(|e| panic!("embeddings ({format}): {e} ({e:?})"))
}

/// The dimension of SmolLM2-135M's hidden state, which the embed instance pools.
const EMBED_DIMENSIONS: usize = 576;

#[tokio::test]
async fn embeddings_float_and_base64_are_the_same_vectors() {
    on(Instance::Embed, |client| async move {
        let inputs = json!(["hello world", "goodbye"]);
        let float = embed(&client, inputs.clone(), "float").await;
        let base64 = embed(&client, inputs, "base64").await;
        // The wire shapes really differ: numbers, and base64 text.
        assert!(float.response().data[0].embedding.as_floats().is_some());
        assert!(base64.response().data[0].embedding.as_base64().is_some());
        for embeddings in [&float, &base64] {
            assert_eq!(embeddings.model, embed_model());
            assert_eq!(embeddings.vectors.len(), 2, "one vector per input");
            for vector in &embeddings.vectors {
                assert_eq!(vector.len(), EMBED_DIMENSIONS);
                // vLLM normalizes embeddings by default.
                assert!((norm(vector) - 1.0).abs() < 1e-3, "{}", norm(vector));
            }
        }
        for (i, (a, b)) in float.vectors.iter().zip(&base64.vectors).enumerate() {
            let worst = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst <= 1e-6,
                "vector {i}: float and base64 differ by {worst}"
            );
        }
        assert_eq!(float.usage, base64.usage);
    })
    .await;
}

#[tokio::test]
async fn embeddings_come_in_input_order_with_usage() {
    on(Instance::Embed, |client| async move {
        let texts = ["hello world", "goodbye"];
        let both = embed(&client, json!(texts), "float").await;
        assert_eq!(both.vectors.len(), 2);
        let indexes: Vec<u32> = both.response().data.iter().map(|d| d.index).collect();
        assert_eq!(indexes, [0, 1]);
        assert_ne!(both.vectors[0], both.vectors[1], "different texts");
        // Each vector is the one its text gets on its own.
        let mut prompt_tokens = 0;
        for (i, text) in texts.iter().enumerate() {
            let alone = embed(&client, json!(text), "float").await;
            assert_eq!(alone.vectors.len(), 1);
            let worst = alone.vectors[0]
                .iter()
                .zip(&both.vectors[i])
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(worst <= 1e-5, "input {i} ({text:?}) differs by {worst}");
            prompt_tokens += client
                .tokenizer
                .tokenize()
                .model(embed_model())
                .prompt(*text)
                .send()
                .await
                .unwrap()
                .count
                .unwrap();
        }
        let usage = both.usage.clone().expect("usage");
        assert!(usage.prompt_tokens > 0, "{usage:?}");
        // The inputs' tokens, counted as `/tokenize` counts them; nothing is generated.
        assert_eq!(usage.prompt_tokens, prompt_tokens, "{usage:?}");
        assert_eq!(usage.completion_tokens, 0);
        assert_eq!(usage.total_tokens, usage.prompt_tokens);
    })
    .await;
}

// ---------------------------------------------------------------------- validation parity
//
// The requests of `vllm-types/tests/fixtures/vllm-0.32-cpu/validation/` (see its README), sent
// alike to the live server and to an in-process `vllm_mock::MockServer` (the same model id,
// `max_model_len` 4096): both must answer with the same status and, for a refusal, with
// vLLM's error body (`{"error": {"message", "type", "param", "code"}}`, an integer `code`)
// carrying the same `type`, `param` and message. A drift of either side fails here.
//
// Every message is compared whole: none of these cases has an unstable one. The requests
// were chosen so: a text prompt over the context is reported by vLLM as "at least
// max_model_len + 1" tokens whatever its length (its tokenizer stops there), and the exact
// counts are asked with token ids (`completions_err_prompt_ids_*`), which both count alike;
// the accepted requests are compared by status only (their text is sampled).
//
// A request goes through the facade (`create().extra(body).send()`, `extra` being sent as it
// is) when it is a JSON object with what the builder requires and without `stream` or
// `stream_options` (which `send()` sets itself); otherwise (malformed JSON, another
// `Content-Type`, a missing `messages`, …) through the transport, byte for byte.

/// The folder of the validation captures, under the fixtures.
const VALIDATION: &str = "vllm-0.32-cpu/validation";

/// One request of the validation captures.
#[derive(Debug)]
struct ValidationCase {
    name: String,
    /// To `/v1/completions` (else `/v1/chat/completions`).
    completions: bool,
    content_type: Option<&'static str>,
    /// The body, with the model id of `VLLM_CONFORMANCE_MODEL`.
    body: Vec<u8>,
}

/// The `Content-Type` a case is sent with, from its name (see the folder's README).
fn validation_content_type(name: &str) -> Option<&'static str> {
    const SENT: &[(&str, Option<&str>)] = &[
        ("content_type_text_plain", Some("text/plain")),
        (
            "content_type_form",
            Some("application/x-www-form-urlencoded"),
        ),
        ("content_type_missing", None),
        (
            "content_type_charset",
            Some("application/json; charset=utf-8"),
        ),
    ];
    SENT.iter()
        .find(|(suffix, _)| name.ends_with(suffix))
        .map_or(Some("application/json"), |(_, sent)| *sent)
}

/// The validation cases whose name `wanted` picks.
fn validation_cases(wanted: impl Fn(&str) -> bool) -> Vec<ValidationCase> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vllm-types/tests/fixtures")
        .join(VALIDATION);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|f| f.strip_suffix(".req.json").map(str::to_owned))
        .filter(|name| wanted(name))
        .collect();
    names.sort();
    let model = serde_json::to_string(&model()).unwrap();
    names
        .into_iter()
        .map(|name| {
            let body = support::fixture(&format!("{VALIDATION}/{name}.req.json"));
            let body = String::from_utf8(body)
                .unwrap()
                .replace("\"smollm2-135m\"", &model)
                .into_bytes();
            ValidationCase {
                completions: name.starts_with("completions"),
                content_type: validation_content_type(&name),
                body,
                name,
            }
        })
        .collect()
}

/// What a server answered: its status, and its body when it refused.
#[derive(Debug)]
struct Answered {
    status: u16,
    body: String,
    /// How the request was sent (`facade`, `transport`).
    via: &'static str,
}

/// The body as the facade would send it with `extra`: a JSON object with what the builder
/// requires, and no `stream` or `stream_options`.
fn facade_params(case: &ValidationCase) -> Option<vllm_client::Value> {
    if case.content_type != Some("application/json") {
        return None;
    }
    let body: vllm_client::Value = serde_json::from_slice(&case.body).ok()?;
    let object = body.as_object()?;
    let input = if case.completions {
        "prompt"
    } else {
        "messages"
    };
    let given = |key: &str| object.get(key).is_some_and(|v| !v.is_null());
    let stream = object.contains_key("stream") || object.contains_key("stream_options");
    (given("model") && given(input) && !stream).then_some(body)
}

/// Sends `case` to the server of `client` (`transport` for what the facade cannot send).
async fn send_validation_case(
    client: &VllmClient,
    transport: &vllm_transport::Transport,
    case: &ValidationCase,
) -> Answered {
    let refused = |e: VllmError, via| {
        let status = e
            .status_code()
            .unwrap_or_else(|| panic!("{}: not a status error: {e} ({e:?})", case.name));
        Answered {
            status,
            body: e.body_text().unwrap_or_default().to_owned(),
            via,
        }
    };
    if let Some(params) = facade_params(case) {
        let sent = if case.completions {
            client
                .completions
                .create()
                .extra(params)
                .send()
                .await
                .map(|r| r.head().status())
        } else {
            client
                .chat
                .completions()
                .create()
                .extra(params)
                .send()
                .await
                .map(|r| r.head().status())
        };
        return match sent {
            Ok(status) => Answered {
                status,
                body: String::new(),
                via: "facade",
            },
            Err(e) => refused(e, "facade"),
        };
    }
    let path = if case.completions {
        "/completions"
    } else {
        "/chat/completions"
    };
    let mut request = transport
        .post(format!("{}{path}", client.base_url()))
        .body(case.body.clone());
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    match request.send().await {
        Ok(response) => Answered {
            status: response.status().as_u16(),
            body: String::new(),
            via: "transport",
        },
        Err(e) if e.is_status() => Answered {
            status: e.status().map_or(0, |s| s.as_u16()),
            body: e
                .body()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
            via: "transport",
        },
        Err(e) => panic!("{}: {e} ({e:?})", case.name),
    }
}

/// The members of vLLM's error body: `type`, `param`, `message`, after checking its shape.
fn error_members(answer: &Answered, who: &str) -> Result<[vllm_client::Value; 3], String> {
    let body: vllm_client::Value = serde_json::from_str(&answer.body)
        .map_err(|e| format!("{who}'s body is not JSON ({e}): {}", answer.body))?;
    let error = body
        .get("error")
        .and_then(|e| e.as_object())
        .filter(|_| body.as_object().is_some_and(|b| b.len() == 1))
        .ok_or_else(|| format!("{who}'s body is not {{\"error\": {{…}}}}: {body}"))?;
    let mut members: Vec<&str> = error.keys().map(String::as_str).collect();
    members.sort_unstable();
    if members != ["code", "message", "param", "type"] {
        return Err(format!("{who}'s error has members {members:?}: {body}"));
    }
    if error["code"].as_u64() != Some(u64::from(answer.status)) {
        return Err(format!(
            "{who}'s code is not the status as an integer: {body}"
        ));
    }
    if !error["message"].is_string() {
        return Err(format!("{who}'s message is not a string: {body}"));
    }
    Ok([
        error["type"].clone(),
        error["param"].clone(),
        error["message"].clone(),
    ])
}

/// Sends each case `wanted` picks to the live server and to a mock; every difference is
/// reported at once. Returns how many cases were sent.
async fn validation_parity(client: &VllmClient, wanted: impl Fn(&str) -> bool) -> usize {
    let mock = vllm_mock::MockServer::builder()
        .models([model()])
        .max_model_len(4096)
        .start()
        .await
        .unwrap();
    let mock_client = VllmClient::builder()
        .base_url(mock.base_url())
        .timeout_secs(30)
        .max_retries(0)
        .build();
    let transport = vllm_transport::Transport::builder()
        .max_retries(0)
        .total_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let cases = validation_cases(wanted);
    let mut differences = Vec::new();
    for case in &cases {
        let live = send_validation_case(client, &transport, case).await;
        let mocked = send_validation_case(&mock_client, &transport, case).await;
        let name = &case.name;
        if live.status != mocked.status {
            differences.push(format!(
                "{name} (via {}): vLLM {} {}, the mock {} {}",
                live.via, live.status, live.body, mocked.status, mocked.body
            ));
            continue;
        }
        if live.status < 400 {
            continue;
        }
        match (
            error_members(&live, "vLLM"),
            error_members(&mocked, "the mock"),
        ) {
            (Ok(live_members), Ok(mock_members)) => {
                for (i, what) in ["type", "param", "message"].iter().enumerate() {
                    if live_members[i] != mock_members[i] {
                        differences.push(format!(
                            "{name} (via {}): {what}\n  vLLM:     {}\n  the mock: {}",
                            live.via, live_members[i], mock_members[i]
                        ));
                    }
                }
            }
            (live_shape, mock_shape) => {
                for problem in [live_shape.err(), mock_shape.err()].into_iter().flatten() {
                    differences.push(format!("{name}: {problem}"));
                }
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} cases differ:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
    cases.len()
}

#[tokio::test]
async fn validation_chat_refusals_are_the_mocks() {
    conformance(|client| async move {
        let sent = validation_parity(&client, |name| name.starts_with("err_")).await;
        assert!(sent >= 55, "only {sent} cases");
    })
    .await;
}

#[tokio::test]
async fn validation_completion_refusals_are_the_mocks() {
    conformance(|client| async move {
        let sent = validation_parity(&client, |name| name.starts_with("completions_err_")).await;
        assert!(sent >= 30, "only {sent} cases");
    })
    .await;
}

#[tokio::test]
async fn validation_borderline_requests_are_accepted_by_both() {
    conformance(|client| async move {
        let sent = validation_parity(&client, |name| {
            name.starts_with("ok_") || name.starts_with("completions_ok_")
        })
        .await;
        assert!(sent >= 30, "only {sent} cases");
    })
    .await;
}
