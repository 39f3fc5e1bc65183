//! Shared inputs for the criterion benchmarks in this package.
//!
//! Every input is generated deterministically (a fixed-seed PRNG), so runs compare.
//! The streams are shaped exactly like vLLM's `/v1/chat/completions` streaming output.
#![deny(missing_docs)]

use bytes::Bytes;

/// Approximate size of the generated streams: 10 MiB.
pub const STREAM_LEN: usize = 10 << 20;

/// Size of the single large event: 5 MB.
pub const BIG_EVENT_LEN: usize = 5_000_000;

/// A TCP segment's worth of payload: the piece size of a stream read off the network.
pub const TCP_PIECE: usize = 1460;

/// A large read: the piece size of a fast local connection.
pub const LARGE_PIECE: usize = 256 * 1024;

/// A small deterministic PRNG (SplitMix64), seeded with its field.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// Token texts as they appear in a JSON string: mostly ASCII words, some multibyte
/// text, some JSON escapes.
const TOKENS: &[&str] = &[
    " the",
    " of",
    " and",
    " to",
    " a",
    " in",
    " is",
    " that",
    " for",
    " it",
    " as",
    " with",
    " was",
    " on",
    " be",
    " model",
    " token",
    " stream",
    " server",
    " response",
    " request",
    ",",
    ".",
    " (",
    ")",
    ":",
    " 42",
    " 2025",
    "ing",
    "ed",
    "ly",
    "s",
    " Grüße",
    " naïve",
    " café",
    " 日本語",
    "の",
    " 中文",
    " 😀",
    " €",
    " —",
    " Привет",
    "\\n",
    "\\n\\n",
    " \\\"quoted\\\"",
    "\\t",
];

const ID: &str = "chatcmpl-b1c43085bf100758";
const CREATED: u64 = 1_795_567_067;
const MODEL: &str = "smollm2-135m";

fn chunk_line(out: &mut Vec<u8>, choices: &str) {
    out.extend_from_slice(
        format!(
            "data: {{\"id\":\"{ID}\",\"object\":\"chat.completion.chunk\",\"created\":{CREATED},\"model\":\"{MODEL}\",\"choices\":[{choices}]}}\n\n"
        )
        .as_bytes(),
    );
}

/// The first chunk: the role, and the prompt fields vLLM sends once.
fn role_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(
        format!(
            "data: {{\"id\":\"{ID}\",\"object\":\"chat.completion.chunk\",\"created\":{CREATED},\"model\":\"{MODEL}\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}],\"prompt_token_ids\":null,\"prompt_text\":null}}\n\n"
        )
        .as_bytes(),
    );
}

/// The last chunks: the finish reason (with the final `delta`), usage, `[DONE]`.
fn finish(out: &mut Vec<u8>, delta: &str, finish_reason: &str, completion_tokens: usize) {
    chunk_line(
        out,
        &format!(
            "{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":\"{finish_reason}\",\"stop_reason\":null,\"token_ids\":null}}"
        ),
    );
    out.extend_from_slice(
        format!(
            "data: {{\"id\":\"{ID}\",\"object\":\"chat.completion.chunk\",\"created\":{CREATED},\"model\":\"{MODEL}\",\"choices\":[],\"usage\":{{\"prompt_tokens\":37,\"total_tokens\":{},\"completion_tokens\":{completion_tokens},\"completion_tokens_details\":{{\"reasoning_tokens\":0}}}},\"system_fingerprint\":\"vllm-0.32.0-136d38bd\"}}\n\n",
            37 + completion_tokens
        )
        .as_bytes(),
    );
    out.extend_from_slice(b"data: [DONE]\n\n");
}

/// A chat completion stream of about `len` bytes: a role chunk, content-delta chunks of
/// one to three tokens, a final chunk, a usage chunk and `data: [DONE]`.
pub fn chat_stream(len: usize) -> Vec<u8> {
    let mut rng = Rng(1);
    let mut out = Vec::with_capacity(len + 1024);
    role_chunk(&mut out);
    let mut tokens = 0;
    while out.len() < len {
        let mut content = String::new();
        for _ in 0..=rng.next_u64() % 3 {
            content.push_str(rng.pick(TOKENS));
            tokens += 1;
        }
        chunk_line(
            &mut out,
            &format!(
                "{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}}"
            ),
        );
    }
    finish(&mut out, "{\"content\":\"\"}", "stop", tokens);
    out
}

/// Fragments of tool-call arguments, already escaped for a JSON string.
const ARGUMENT_PARTS: &[&str] = &[
    "{\\\"",
    "city",
    "\\\":",
    " \\\"",
    "Paris",
    "München",
    "東京",
    "\\\",",
    " \\\"",
    "unit",
    "\\\": \\\"",
    "celsius",
    "\\\"}",
    " 3",
    "7",
    ".5",
    "\\\"days\\\": ",
    "[1, 2]",
];

/// A tool-call stream of about `len` bytes: calls are opened with their name and id,
/// then their arguments arrive in many small `tool_calls` deltas.
pub fn tool_call_stream(len: usize) -> Vec<u8> {
    let mut rng = Rng(2);
    let mut out = Vec::with_capacity(len + 1024);
    role_chunk(&mut out);
    let mut tokens = 0;
    let mut call = 0;
    while out.len() < len {
        chunk_line(
            &mut out,
            &format!(
                "{{\"index\":0,\"delta\":{{\"content\":null,\"tool_calls\":[{{\"id\":\"chatcmpl-tool-{:016x}\",\"type\":\"function\",\"index\":{call},\"function\":{{\"name\":\"get_weather\"}}}}]}},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}}",
                rng.next_u64()
            ),
        );
        for _ in 0..20 + rng.next_u64() % 40 {
            let part = rng.pick(ARGUMENT_PARTS);
            tokens += 1;
            chunk_line(
                &mut out,
                &format!(
                    "{{\"index\":0,\"delta\":{{\"content\":null,\"tool_calls\":[{{\"index\":{call},\"function\":{{\"arguments\":\"{part}\"}}}}]}},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}}"
                ),
            );
        }
        call += 1;
    }
    finish(&mut out, "{}", "tool_calls", tokens);
    out
}

/// The same stream with every LF line end replaced by CRLF.
pub fn to_crlf(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 64);
    for &b in input {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// One event of about `len` bytes in a single `data:` line: a JSON object with one
/// long string of mixed ASCII and multibyte text.
pub fn big_event(len: usize) -> Vec<u8> {
    let mut rng = Rng(3);
    let mut out = Vec::with_capacity(len + 64);
    out.extend_from_slice(b"data: {\"content\":\"");
    while out.len() < len {
        out.extend_from_slice(rng.pick(TOKENS).as_bytes());
    }
    out.extend_from_slice(b"\"}\n\n");
    out
}

/// `input` in pieces of `size` bytes (the last may be shorter), as a network body
/// would deliver it.
pub fn pieces(input: &Bytes, size: usize) -> Vec<Bytes> {
    (0..input.len())
        .step_by(size)
        .map(|start| input.slice(start..input.len().min(start + size)))
        .collect()
}

/// `input` in one piece per event: split after every blank line (`\n\n` or
/// `\r\n\r\n`), as a server flushing each event would deliver it.
pub fn per_event(input: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < input.len() {
        let end = if input[i..].starts_with(b"\n\n") {
            i + 2
        } else if input[i..].starts_with(b"\r\n\r\n") {
            i + 4
        } else {
            i += 1;
            continue;
        };
        out.push(input.slice(start..end));
        start = end;
        i = end;
    }
    if start < input.len() {
        out.push(input.slice(start..));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[u8]) -> Vec<String> {
        let mut decoder = vllm_transport::sse::Decoder::new();
        decoder.feed(input);
        let mut out = Vec::new();
        while let Some(event) = decoder.next_event().expect("valid stream") {
            out.push(event.into_data());
        }
        decoder.finish().expect("complete stream");
        out
    }

    #[test]
    fn streams_are_valid_json_chunks_ending_with_done() {
        for input in [chat_stream(200_000), tool_call_stream(200_000)] {
            let events = events(&input);
            assert!(events.len() > 100);
            assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
            for data in &events[..events.len() - 1] {
                let value: serde_json::Value = serde_json::from_str(data).expect("JSON");
                assert_eq!(value["object"], "chat.completion.chunk");
                let chunk: vllm_types::ChatCompletionChunk =
                    serde_json::from_str(data).expect("a vLLM chunk");
                assert_eq!(chunk.model, "smollm2-135m");
            }
            assert!(events.iter().any(|e| !e.is_ascii()), "has multibyte text");
        }
    }

    #[test]
    fn crlf_and_pieces_preserve_the_events() {
        let input = chat_stream(50_000);
        assert_eq!(events(&to_crlf(&input)), events(&input));
        let bytes = Bytes::from(to_crlf(&input));
        assert_eq!(pieces(&bytes, TCP_PIECE).concat(), bytes);
        let per = per_event(&bytes);
        assert_eq!(per.concat(), bytes);
        assert_eq!(per.len(), events(&input).len());
    }

    #[test]
    fn big_event_is_one_json_event() {
        let input = big_event(100_000);
        let events = events(&input);
        assert_eq!(events.len(), 1);
        let value: serde_json::Value = serde_json::from_str(&events[0]).expect("JSON");
        assert!(value["content"].as_str().is_some_and(|s| s.len() > 90_000));
    }
}
