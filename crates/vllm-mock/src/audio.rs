//! `POST /v1/audio/transcriptions`: a multipart upload whose transcript the echo model makes
//! up from the file's name and size, whole or streamed.

use serde_json::Value;
use vllm_types::{
    FinishReason, TranscriptionChunk, TranscriptionChunkChoice, TranscriptionResponse,
    TranscriptionUsage,
};

use crate::behavior::Behavior;
use crate::chat::event;
use crate::multipart::{self, Part};
use crate::reply::Reply;
use crate::server::{Shared, now};
use crate::shape::{set_text, usage};
use crate::tokenizer;

pub(crate) const PATH: &str = "/v1/audio/transcriptions";

/// Bytes per second of the audio the mock assumes: 16 kHz, 16-bit mono PCM.
const BYTES_PER_SECOND: u64 = 32_000;

/// The form fields type-checked as vLLM's form model does.
const BOOL_FIELDS: [&str; 3] = [
    "stream",
    "stream_include_usage",
    "stream_continuous_usage_stats",
];
const FLOAT_FIELDS: [&str; 2] = ["temperature", "top_p"];

/// The echo model's transcript of a file: `Transcript of {filename} ({bytes} bytes).`
pub(crate) fn transcript(filename: &str, bytes: usize) -> String {
    format!("Transcript of {filename} ({bytes} bytes).")
}

/// Answers a transcription request (`content_type`: the request's, with the boundary).
pub(crate) fn transcribe(
    shared: &Shared,
    content_type: Option<&str>,
    body: &[u8],
    behavior: &mut Option<Behavior>,
) -> Result<Reply, Reply> {
    // Starlette reads any other body as an empty form (so `file` is missing).
    let parts: Vec<Part<'_>> = match content_type.and_then(multipart::boundary) {
        Some(boundary) => multipart::parse(body, &boundary)
            .map_err(|_| Reply::detail(400, "There was an error parsing the body"))?,
        None => Vec::new(),
    };
    let field = |name: &str| parts.iter().find(|p| p.name == name);
    let text = |name: &str| field(name).map(Part::text);
    let Some(file) = field("file") else {
        return Err(Reply::validation(
            "missing",
            "body.file",
            "Field required",
            &Value::Null,
        ));
    };
    let Some(filename) = file.filename.clone() else {
        return Err(Reply::validation(
            "value_error",
            "body.file",
            "Value error, Expected UploadFile, received: <class 'str'>",
            &Value::String(file.text()),
        ));
    };
    for name in BOOL_FIELDS {
        if let Some(value) = text(name) {
            if form_bool(&value).is_none() {
                return Err(Reply::validation(
                    "bool_parsing",
                    &format!("body.{name}"),
                    "Input should be a valid boolean, unable to interpret input",
                    &Value::String(value),
                ));
            }
        }
    }
    for name in FLOAT_FIELDS {
        if let Some(value) = text(name) {
            if value.trim().parse::<f64>().is_err() {
                return Err(Reply::validation(
                    "float_parsing",
                    &format!("body.{name}"),
                    "Input should be a valid number, unable to parse string as a number",
                    &Value::String(value),
                ));
            }
        }
    }
    let flag = |name: &str| text(name).and_then(|v| form_bool(&v)) == Some(true);
    let (model, scripted) = shared.model_and_script(text("model").as_deref(), PATH, behavior)?;
    if let Some(reply) = scripted {
        return Ok(reply);
    }
    let format = text("response_format").unwrap_or_else(|| "json".to_owned());
    if format != "json" && format != "text" {
        return Err(Reply::bad_request(
            None,
            "Currently only support response_format `text` or `json`",
        ));
    }
    let transcript = behavior
        .as_ref()
        .and_then(|b| b.content.clone())
        .unwrap_or_else(|| transcript(&filename, file.data.len()));
    shared.learn(&transcript);
    let prompt_tokens = text("prompt").map_or(0, |p| tokenizer::count(&p));
    let completion_tokens = tokenizer::count(&transcript);
    shared.metrics.finished(
        &shared.base_of(&model),
        "stop",
        prompt_tokens,
        completion_tokens,
    );
    if !flag("stream") {
        let seconds = (file.data.len() as u64).div_ceil(BYTES_PER_SECOND);
        return Ok(Reply::ok(&TranscriptionResponse {
            text: transcript,
            usage: Some(TranscriptionUsage {
                kind: "duration".to_owned(),
                seconds: Some(seconds),
                ..TranscriptionUsage::default()
            }),
            ..TranscriptionResponse::default()
        }));
    }
    let continuous = flag("stream_include_usage") && flag("stream_continuous_usage_stats");
    let mut pieces = tokenizer::pieces(&transcript);
    if pieces.is_empty() {
        pieces.push("");
    }
    let last = pieces.len() - 1;
    // Every chunk is written from this one: only its text (and the finish) changes.
    let mut chunk = TranscriptionChunk {
        id: shared.id("trsc-"),
        object: "transcription.chunk".to_owned(),
        created: now(),
        model,
        choices: vec![TranscriptionChunkChoice::default()],
        ..TranscriptionChunk::default()
    };
    let mut events = Vec::with_capacity(pieces.len() + 2);
    for (i, piece) in pieces.iter().enumerate() {
        let choice = &mut chunk.choices[0];
        set_text(&mut choice.delta.content, Some(piece));
        if i == last {
            // The last chunk's `stop_reason` is `null`; the others have none.
            choice.set_null("stop_reason");
            choice.finish_reason = Some(FinishReason::Stop);
        }
        if continuous {
            chunk.usage = Some(usage(prompt_tokens, i as u32 + 1));
        }
        events.push(event(&chunk));
    }
    if flag("stream_include_usage") {
        chunk.choices.clear();
        chunk.usage = Some(usage(prompt_tokens, completion_tokens));
        events.push(event(&chunk));
    }
    events.push(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
    Ok(Reply::events(events))
}

/// A form value as pydantic reads a boolean.
fn form_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "t" | "true" | "y" | "yes" => Some(true),
        "0" | "off" | "f" | "false" | "n" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_as_pydantic_reads_them() {
        assert_eq!(form_bool("True"), Some(true));
        assert_eq!(form_bool("off"), Some(false));
        assert_eq!(form_bool("maybe"), None);
    }
}
