//! `POST /v1/completions`: the legacy API. The echo model's completion of a prompt is the
//! prompt again.

use bytes::Bytes;
use serde_json::Value;
use vllm_types::{
    Completion, CompletionChoice, CompletionChunk, CompletionRequest, FinishReason, Prompt, Stop,
    StopReason,
};

use crate::behavior::Behavior;
use crate::chat::event;
use crate::reply::{EventSource, Reply};
use crate::server::{Shared, now};
use crate::shape::{nulls, usage, usage_with_null_details};
use crate::template::{Pieces, apply_stop};
use crate::tokenizer;
use crate::validate::{
    check_context, check_ids_context, completion_params, completion_request, parse_object, typed,
};

pub(crate) const PATH: &str = "/v1/completions";

/// Answers a completion request (see [`crate::chat::handle`] for `behavior`).
pub(crate) fn handle(shared: &Shared, body: &[u8], behavior: &mut Option<Behavior>) -> Reply {
    match completion(shared, body, behavior) {
        Ok(reply) | Err(reply) => reply,
    }
}

/// One prompt: its text and its token count.
#[derive(Debug)]
struct PromptIn {
    text: String,
    tokens: u32,
}

/// One choice's output.
#[derive(Debug)]
struct Output {
    /// With `echo`: the prompt, sent before the completion (no generated token).
    echo: Option<String>,
    pieces: Pieces,
    finish: FinishReason,
    natural_length: bool,
    stop_reason: Option<StopReason>,
    completion_tokens: u32,
}

impl Output {
    /// The choice's whole text.
    fn text(&self) -> String {
        let mut text = self.echo.clone().unwrap_or_default();
        text.push_str(&self.pieces.concat());
        text
    }

    /// How many chunks the choice takes: the echoed prompt, a chunk per piece, and the
    /// finish on the last piece for a length stop, else in a final empty chunk.
    fn steps(&self) -> usize {
        let any = self.echo.is_some() || self.pieces.len() > 0;
        usize::from(self.echo.is_some())
            + self.pieces.len()
            + usize::from(!(self.natural_length && any))
    }

    /// Step `at` of the choice: its text, whether it carries the finish, its tokens.
    fn step(&self, at: usize) -> (&str, bool, u32) {
        let finish = at + 1 == self.steps();
        let at = match (&self.echo, at) {
            (Some(echo), 0) => return (echo, finish, 0),
            (Some(_), at) => at - 1,
            (None, at) => at,
        };
        if at < self.pieces.len() {
            (self.pieces.get(at), finish, 1)
        } else {
            ("", true, 0)
        }
    }
}

fn completion(
    shared: &Shared,
    body: &[u8],
    behavior: &mut Option<Behavior>,
) -> Result<Reply, Reply> {
    let mut body = parse_object(body)?;
    completion_request(&mut body)?;
    let (model, scripted) =
        shared.model_and_script(body.get("model").and_then(Value::as_str), PATH, behavior)?;
    if let Some(reply) = scripted {
        return Ok(reply);
    }
    completion_params(&mut body, shared.config.max_model_len)?;
    let request: CompletionRequest = typed(body)?;
    let streamed = request.stream == Some(true);
    let prompts = prompts(shared, request.prompt.as_ref());
    if prompts.is_empty() {
        return Err(Reply::bad_request(
            None,
            "You must pass at least one prompt",
        ));
    }
    let longest = prompts.iter().map(|p| p.tokens).max().unwrap_or(0);
    let ids = matches!(
        request.prompt,
        Some(Prompt::Tokens(_) | Prompt::TokenBatches(_))
    );
    let context = if ids {
        check_ids_context
    } else {
        check_context
    };
    let max_tokens = context(shared.config.max_model_len, longest, request.max_tokens)?;
    let stops = match &request.stop {
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) => v.clone(),
        None => Vec::new(),
    };
    let include_stop = request.include_stop_str_in_output == Some(true);
    let scripted = behavior.as_ref().and_then(|b| b.content.clone());
    let finish_override = behavior.as_ref().and_then(|b| b.finish_reason.clone());
    let echo = request.echo == Some(true);
    let n = request.n.unwrap_or(1);

    let ignore_eos = request.ignore_eos == Some(true);
    let mut outputs = Vec::new();
    for prompt in &prompts {
        shared.learn(&prompt.text);
        let text = scripted.clone().unwrap_or_else(|| prompt.text.clone());
        let (kept, stop, needed) = apply_stop(&text, &stops, include_stop);
        let mut pieces = Pieces::of(&kept);
        let room = max_tokens as usize;
        let (length, stop_reason, generated) = if needed > room {
            pieces.truncate(room);
            (true, None, room)
        } else if ignore_eos && stop.is_none() && pieces.len() > 0 {
            // No end of sequence: the text again and again, up to the limit.
            pieces.repeat_to(room);
            (true, None, room)
        } else {
            (false, stop, needed)
        };
        shared.learn(&pieces.text_once());
        for _ in 0..n {
            outputs.push(Output {
                echo: echo.then(|| prompt.text.clone()),
                pieces: pieces.clone(),
                finish: match &finish_override {
                    Some(reason) => FinishReason::from(reason.as_str()),
                    None if length => FinishReason::Length,
                    None => FinishReason::Stop,
                },
                natural_length: length,
                stop_reason: stop_reason.clone().map(StopReason::Text),
                completion_tokens: generated as u32,
            });
        }
    }
    let prompt_tokens: u32 = prompts.iter().map(|p| p.tokens).sum();
    let completion_tokens: u32 = outputs.iter().map(|o| o.completion_tokens).sum();
    // The engine finishes on a stop or on the length limit.
    let finishes = outputs
        .iter()
        .map(|o| if o.natural_length { "length" } else { "stop" })
        .collect();
    let tracker = shared.tracker(&model, prompt_tokens, finishes);
    let id = shared.id("cmpl-");
    let created = now();
    let fingerprint = shared.fingerprint();
    if !streamed {
        let choices = outputs
            .iter()
            .enumerate()
            .map(|(index, o)| {
                let mut choice = nulls!(
                    CompletionChoice,
                    [
                        "logprobs",
                        "stop_reason",
                        "token_ids",
                        "prompt_logprobs",
                        "prompt_token_ids",
                    ]
                );
                choice.extra.insert("routed_experts".into(), Value::Null);
                choice.index = index as u32;
                choice.text = o.text();
                choice.finish_reason = Some(o.finish.clone());
                choice.stop_reason = o.stop_reason.clone();
                choice
            })
            .collect();
        let mut body = nulls!(
            Completion,
            ["service_tier", "kv_transfer_params", "ec_transfer_params"]
        );
        body.extra.insert("metrics".into(), Value::Null);
        body.id = id;
        body.object = "text_completion".to_owned();
        body.created = created;
        body.model = model;
        body.choices = choices;
        body.system_fingerprint = Some(fingerprint);
        body.usage = Some(usage_with_null_details(prompt_tokens, completion_tokens));
        return Ok(Reply::ok(&body).generated(tracker, completion_tokens));
    }

    let include_usage = request
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        == Some(true);
    // Every chunk is written from this one: only its choice's index, text and finish change
    // (and the fingerprint, on a finish without the usage chunk).
    let choice = nulls!(
        CompletionChoice,
        [
            "logprobs",
            "finish_reason",
            "stop_reason",
            "prompt_token_ids",
            "token_ids",
        ]
    );
    let chunk = CompletionChunk {
        id,
        object: "text_completion".to_owned(),
        created,
        model,
        choices: vec![choice],
        ..CompletionChunk::default()
    };
    let events = CompletionEvents {
        next: vec![0; outputs.len()],
        outputs,
        turn: 0,
        chunk,
        fingerprint: Some(fingerprint),
        usage: include_usage.then(|| usage(prompt_tokens, completion_tokens)),
        done: false,
    };
    Ok(Reply::stream(events, tracker))
}

/// The chunks of a completion, made one at a time as the stream is read: the choices' steps
/// in turn, the usage chunk if asked for, then `[DONE]`.
#[derive(Debug)]
struct CompletionEvents {
    outputs: Vec<Output>,
    /// Per choice, its next step.
    next: Vec<usize>,
    /// The choice whose turn it is.
    turn: usize,
    chunk: CompletionChunk,
    fingerprint: Option<String>,
    /// The usage chunk's counts, until it is sent.
    usage: Option<vllm_types::Usage>,
    done: bool,
}

impl EventSource for CompletionEvents {
    fn next_event(&mut self) -> Option<(Bytes, u32)> {
        let n = self.outputs.len();
        let index = (0..n)
            .map(|k| (self.turn + k) % n)
            .find(|&i| self.next[i] < self.outputs[i].steps());
        if let Some(index) = index {
            self.turn = (index + 1) % n;
            let output = &self.outputs[index];
            let (text, finish, tokens) = output.step(self.next[index]);
            self.next[index] += 1;
            let choice = &mut self.chunk.choices[0];
            choice.index = index as u32;
            choice.text.clear();
            choice.text.push_str(text);
            if finish {
                choice.finish_reason = Some(output.finish.clone());
                choice.stop_reason = output.stop_reason.clone();
            } else {
                choice.finish_reason = None;
                choice.stop_reason = None;
            }
            if finish && self.usage.is_none() {
                self.chunk.system_fingerprint = self.fingerprint.take();
            }
            let bytes = event(&self.chunk);
            if let Some(sent) = self.chunk.system_fingerprint.take() {
                self.fingerprint = Some(sent);
            }
            return Some((bytes, tokens));
        }
        if let Some(usage) = self.usage.take() {
            self.chunk.choices.clear();
            self.chunk.usage = Some(usage);
            self.chunk.system_fingerprint = self.fingerprint.take();
            return Some((event(&self.chunk), 0));
        }
        if self.done {
            return None;
        }
        self.done = true;
        Some((Bytes::from_static(b"data: [DONE]\n\n"), 0))
    }
}

/// The prompts of a request: texts as they are, token ids decoded (ids not known left out).
fn prompts(shared: &Shared, prompt: Option<&Prompt>) -> Vec<PromptIn> {
    let text = |s: &String| PromptIn {
        text: s.clone(),
        tokens: tokenizer::count(s),
    };
    let ids = |ids: &Vec<u32>| PromptIn {
        text: shared.decode_lossy(ids),
        tokens: ids.len() as u32,
    };
    match prompt {
        None => Vec::new(),
        Some(Prompt::Text(s)) => vec![text(s)],
        Some(Prompt::Texts(v)) => v.iter().map(text).collect(),
        Some(Prompt::Tokens(v)) => vec![ids(v)],
        Some(Prompt::TokenBatches(v)) => v.iter().map(ids).collect(),
    }
}
