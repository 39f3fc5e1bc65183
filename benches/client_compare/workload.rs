//! What the server sends and what a client must see: both sides derive it from the same
//! functions, so a client's totals can be checked exactly.

/// The model name every request uses (and every chunk carries).
pub(crate) const MODEL: &str = "smollm2-135m";

/// The model name that asks the server for the re-chunked UTF-8 probe stream.
pub(crate) const PROBE_MODEL: &str = "probe-rechunked";

/// Size of the HTTP chunks of the probe stream (as a re-buffering proxy might cut it).
pub(crate) const PROBE_HTTP_CHUNK: usize = 7;

/// The generated text of the non-streaming response.
pub(crate) const REPLY_CONTENT: &str = "Hello! How can I help you today?";

/// The `total_tokens` of the non-streaming response.
pub(crate) const REPLY_TOTAL_TOKENS: u64 = 40;

/// Tokens of the main streams, as decoded text: ASCII words, punctuation, and JSON escapes
/// (`\n`, `"`), like a small model's output.
const TOKENS: &[&str] = &[
    " word",
    " the",
    " model",
    " of",
    ",",
    " and",
    " a",
    "\n",
    " stream",
    ".",
    " \"quoted\"",
    " to",
    " is",
    " in",
    " that",
    " for",
];

/// Tokens of the probe stream: multibyte UTF-8 mixed with ASCII.
const PROBE_TOKENS: &[&str] = &[
    " héllo",
    " 世界",
    " naïve",
    " 😀",
    " word",
    " Ελλάδα",
    " façade",
    " 日本語",
];

/// The token set a model name selects.
pub(crate) fn tokens(model: &str) -> &'static [&'static str] {
    if model == PROBE_MODEL {
        PROBE_TOKENS
    } else {
        TOKENS
    }
}

/// The decoded text of content chunk `i`.
pub(crate) fn token(tokens: &[&'static str], i: u64) -> &'static str {
    tokens[(i % tokens.len() as u64) as usize]
}

/// Total decoded bytes of `n` content chunks.
pub(crate) fn content_bytes(model: &str, n: u64) -> u64 {
    let tokens = tokens(model);
    let per_cycle: u64 = tokens.iter().map(|t| t.len() as u64).sum();
    let cycles = n / tokens.len() as u64;
    let rest: u64 = (0..n % tokens.len() as u64)
        .map(|i| token(tokens, i).len() as u64)
        .sum();
    cycles * per_cycle + rest
}

/// The prompt tokens the usage chunk reports.
pub(crate) const PROMPT_TOKENS: u64 = 31;

/// The chat completion id every chunk carries.
pub(crate) const ID: &str = "chatcmpl-b1c43085bf100758";

/// The `created` timestamp every chunk carries.
pub(crate) const CREATED: u64 = 1795567067;

/// The non-streaming response body, as vLLM serializes it.
pub(crate) fn reply_body() -> String {
    format!(
        concat!(
            r#"{{"id":"{id}","object":"chat.completion","created":{created},"model":"{model}","#,
            r#""choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}","#,
            r#""refusal":null,"annotations":null,"audio":null,"function_call":null,"tool_calls":[],"#,
            r#""reasoning":null,"reasoning_content":null}},"logprobs":null,"finish_reason":"stop","#,
            r#""stop_reason":null,"token_ids":null}}],"service_tier":null,"system_fingerprint":null,"#,
            r#""usage":{{"prompt_tokens":{prompt},"total_tokens":{total},"completion_tokens":{completion},"#,
            r#""prompt_tokens_details":null}},"prompt_logprobs":null,"prompt_token_ids":null,"#,
            r#""kv_transfer_params":null}}"#
        ),
        id = ID,
        created = CREATED,
        model = MODEL,
        content = REPLY_CONTENT,
        prompt = PROMPT_TOKENS,
        total = REPLY_TOTAL_TOKENS,
        completion = REPLY_TOTAL_TOKENS - PROMPT_TOKENS,
    )
}

/// Writes the SSE events of a stream of `n` content chunks, one at a time, to `emit`: a
/// role chunk, `n` content chunks, a finish chunk, a usage chunk and `data: [DONE]`.
pub(crate) fn stream_events(model: &str, n: u64, mut emit: impl FnMut(&[u8])) {
    let tokens = tokens(model);
    // Each token as it appears inside a JSON string.
    let escaped: Vec<String> = tokens
        .iter()
        .map(|t| {
            let quoted = serde_json::to_string(t).unwrap_or_default();
            quoted[1..quoted.len() - 1].to_owned()
        })
        .collect();
    let prefix = format!(
        r#"data: {{"id":"{ID}","object":"chat.completion.chunk","created":{CREATED},"model":"{model}","choices":["#
    );
    let mut event = Vec::with_capacity(512);
    let mut chunk = |event: &mut Vec<u8>, choice: &str| {
        event.clear();
        event.extend_from_slice(prefix.as_bytes());
        event.extend_from_slice(choice.as_bytes());
        event.extend_from_slice(b"]}\n\n");
        emit(event);
    };
    chunk(
        &mut event,
        r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}"#,
    );
    let mut choice = String::with_capacity(256);
    for i in 0..n {
        choice.clear();
        choice.push_str(r#"{"index":0,"delta":{"content":""#);
        choice.push_str(&escaped[(i % tokens.len() as u64) as usize]);
        choice.push_str(r#""},"logprobs":null,"finish_reason":null,"token_ids":null}"#);
        chunk(&mut event, &choice);
    }
    chunk(
        &mut event,
        r#"{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"length","stop_reason":null,"token_ids":null}"#,
    );
    let mut usage = format!(
        r#"data: {{"id":"{ID}","object":"chat.completion.chunk","created":{CREATED},"model":"{model}","choices":[],"usage":{{"prompt_tokens":{PROMPT_TOKENS},"total_tokens":{},"completion_tokens":{n}}}}}"#,
        PROMPT_TOKENS + n
    );
    usage.push_str("\n\n");
    emit(usage.as_bytes());
    emit(b"data: [DONE]\n\n");
}
