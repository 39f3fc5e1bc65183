//! `POST /v1/chat/completions`: what the echo model (or a script) says, in vLLM's shapes,
//! whole or streamed.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use vllm_types::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice, ChunkChoice,
    CompletionTokensDetails, Delta, Extra, FinishReason, FunctionCallDelta, ResponseMessage, Role,
    Stop, StopReason, ToolCall, ToolCallDelta, ToolChoice, ToolChoiceMode, Usage,
};

use crate::behavior::{Behavior, ScriptedCall, ToolCallStyle};
use crate::reply::Reply;
use crate::server::{Shared, now};
use crate::shape::{nulls, set_text, usage};
use crate::template::{
    apply_stop, chat_prompt, fill_schema, last_user_text, owned_pieces, tool_result_answer,
};
use crate::tokenizer;
use crate::validate::{chat_params, chat_request, check_context, parse_object, typed};

pub(crate) const PATH: &str = "/v1/chat/completions";

/// The echo model's reasoning, by what it is about to do.
const REASON_ECHO: &str = "The user wants their words back. I will repeat them exactly.";
const REASON_TOOL_RESULT: &str = "The tool has answered. I will pass its result on.";
const REASON_SCRIPTED: &str = "I know what to say.";

/// Answers a chat completion request. `behavior`: the queued behavior, replaced by the
/// model's when there is none (for the delivery settings).
pub(crate) fn handle(shared: &Shared, body: &[u8], behavior: &mut Option<Behavior>) -> Reply {
    match chat(shared, body, behavior) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn chat(shared: &Shared, body: &[u8], behavior: &mut Option<Behavior>) -> Result<Reply, Reply> {
    let mut body = parse_object(body)?;
    chat_request(&mut body)?;
    let (model, scripted) =
        shared.model_and_script(body.get("model").and_then(Value::as_str), PATH, behavior)?;
    if let Some(reply) = scripted {
        return Ok(reply);
    }
    chat_params(&mut body, shared.config.max_model_len)?;
    let request: ChatCompletionRequest = typed(body)?;
    let streamed = request.stream == Some(true);
    let tools = request.tools.as_deref().unwrap_or_default();

    let prompt = chat_prompt(
        &request.messages,
        tools,
        request.add_generation_prompt,
        request.continue_final_message,
    );
    shared.learn(&prompt);
    let prompt_tokens = tokenizer::count(&prompt);
    let max_tokens = check_context(
        shared.config.max_model_len,
        prompt_tokens,
        request.max_completion_tokens.or(request.max_tokens),
    )?;

    let plan = Plan::new(&request, behavior.as_ref());
    let settings = Settings {
        max_tokens,
        stops: match &request.stop {
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
            None => Vec::new(),
        },
        include_stop: request.include_stop_str_in_output == Some(true),
        budget: request.thinking_token_budget,
    };
    let n = request.n.unwrap_or(1);
    let outputs: Vec<Output> = (0..n).map(|_| generate(&plan, &settings, shared)).collect();
    let base = shared.base_of(&model);
    for (i, output) in outputs.iter().enumerate() {
        shared.learn(&output.reasoning.concat());
        shared.learn(&output.content.iter().flatten().cloned().collect::<String>());
        // The engine finishes on a stop (tool calls included) or on the length limit.
        let reason = if output.natural_finish == "length" {
            "length"
        } else {
            "stop"
        };
        let prompt = if i == 0 { prompt_tokens } else { 0 };
        shared
            .metrics
            .finished(&base, reason, prompt, output.completion_tokens);
    }
    let answer = Answer {
        id: shared.id("chatcmpl-"),
        created: now(),
        model,
        fingerprint: shared.fingerprint(),
        prompt_tokens,
        include_reasoning: request.include_reasoning != Some(false),
        outputs,
    };
    if streamed {
        let options = request.stream_options.unwrap_or_default();
        Ok(answer.stream(
            plan.style,
            options.include_usage == Some(true),
            options.continuous_usage_stats == Some(true),
        ))
    } else {
        Ok(answer.complete())
    }
}

/// What to say, before limits apply.
#[derive(Debug)]
struct Plan {
    reasoning: Option<String>,
    content: String,
    calls: Vec<ScriptedCall>,
    /// `tool_choice` named the function (vLLM then reports `stop`, not `tool_calls`).
    named: bool,
    style: ToolCallStyle,
    finish: Option<String>,
}

impl Plan {
    fn new(request: &ChatCompletionRequest, behavior: Option<&Behavior>) -> Plan {
        let scripted = behavior.filter(|b| b.content.is_some() || !b.tool_calls.is_empty());
        let messages = &request.messages;
        let named = matches!(request.tool_choice, Some(ToolChoice::Named(_)));
        let (content, calls, reason) = match scripted {
            Some(b) => (
                b.content.clone().unwrap_or_default(),
                b.tool_calls.clone(),
                REASON_SCRIPTED.to_owned(),
            ),
            None => match tool_result_answer(messages) {
                Some(answer) => (answer, Vec::new(), REASON_TOOL_RESULT.to_owned()),
                None => match echo_tool_call(request) {
                    Some(call) => {
                        let reason = format!("The user needs {}. I will call it.", call.name);
                        (String::new(), vec![call], reason)
                    }
                    None => (last_user_text(messages), Vec::new(), REASON_ECHO.to_owned()),
                },
            },
        };
        let reasoning = behavior
            .and_then(|b| b.reasoning.clone())
            .or_else(|| wants_thinking(request).then_some(reason));
        Plan {
            reasoning,
            content,
            calls,
            named: named && scripted.is_none(),
            style: behavior.map(|b| b.tool_call_style).unwrap_or_default(),
            finish: behavior.and_then(|b| b.finish_reason.clone()),
        }
    }
}

/// Whether the request turns thinking on: `chat_template_kwargs.enable_thinking` (which
/// wins), a `thinking_token_budget` above 0, or a `reasoning_effort` other than `none`.
fn wants_thinking(request: &ChatCompletionRequest) -> bool {
    let enable = request
        .chat_template_kwargs
        .as_ref()
        .and_then(|kwargs| kwargs.get("enable_thinking"))
        .and_then(Value::as_bool);
    enable.unwrap_or_else(|| {
        request.thinking_token_budget.is_some_and(|b| b > 0)
            || request
                .reasoning_effort
                .as_ref()
                .is_some_and(|e| e.as_str() != "none")
    })
}

/// The echo model's tool call, if it makes one: the named function, the first tool for
/// `required`, and for `auto` (the default with tools) the first tool whose name appears in
/// the last user message. Arguments come from the function's parameter schema.
fn echo_tool_call(request: &ChatCompletionRequest) -> Option<ScriptedCall> {
    let tools = request.tools.as_deref().unwrap_or_default();
    let text = last_user_text(&request.messages);
    if request
        .messages
        .last()
        .is_some_and(|m| m.role != Role::User)
    {
        return None;
    }
    let tool = match &request.tool_choice {
        Some(ToolChoice::Named(named)) => tools
            .iter()
            .find(|t| t.function.name == named.function.name),
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) => tools.first(),
        Some(ToolChoice::Mode(ToolChoiceMode::None)) => None,
        _ => tools
            .iter()
            .find(|t| !t.function.name.is_empty() && text.contains(&t.function.name)),
    }?;
    let schema = tool
        .function
        .parameters
        .clone()
        .unwrap_or_else(|| serde_json::json!({"type": "object"}));
    let arguments = fill_schema(&schema, &text);
    Some(ScriptedCall {
        id: None,
        name: tool.function.name.clone(),
        arguments: crate::json::python_json(&arguments),
    })
}

/// The limits of a request.
#[derive(Debug)]
struct Settings {
    max_tokens: u32,
    stops: Vec<String>,
    include_stop: bool,
    budget: Option<u32>,
}

/// One choice's output.
#[derive(Debug)]
struct Output {
    reasoning: Vec<String>,
    /// `None`: the output ended in the reasoning (content is `null`).
    content: Option<Vec<String>>,
    calls: Vec<ToolCall>,
    /// Why it ended, as generated (`stop`, `length`, `tool_calls`).
    natural_finish: &'static str,
    /// Why it ended, as reported.
    finish: FinishReason,
    stop_reason: Option<StopReason>,
    completion_tokens: u32,
    reasoning_tokens: u32,
}

/// Generates one choice of `plan` within `settings`.
fn generate(plan: &Plan, settings: &Settings, shared: &Shared) -> Output {
    let mut reasoning = plan
        .reasoning
        .as_deref()
        .map(owned_pieces)
        .unwrap_or_default();
    if let Some(budget) = settings.budget {
        reasoning.truncate(budget as usize);
    }
    let max = settings.max_tokens as usize;
    let more = !plan.calls.is_empty() || !plan.content.is_empty();
    let finish = |natural: &str| FinishReason::from(plan.finish.as_deref().unwrap_or(natural));
    if reasoning.len() > max || (reasoning.len() == max && more) {
        reasoning.truncate(max);
        return Output {
            reasoning_tokens: max as u32,
            completion_tokens: max as u32,
            reasoning,
            content: None,
            calls: Vec::new(),
            natural_finish: "length",
            finish: finish("length"),
            stop_reason: None,
        };
    }
    let reasoning_tokens = reasoning.len();
    if !plan.calls.is_empty() {
        let calls: Vec<ToolCall> = plan
            .calls
            .iter()
            .map(|c| {
                let id = c.id.clone().unwrap_or_else(|| shared.id("chatcmpl-tool-"));
                ToolCall::function(id, c.name.clone(), c.arguments.clone())
            })
            .collect();
        let call_tokens: u32 = calls
            .iter()
            .map(|c| tokenizer::count(&c.function.name) + tokenizer::count(&c.function.arguments))
            .sum();
        let natural = if plan.named { "stop" } else { "tool_calls" };
        return Output {
            reasoning,
            content: Some(Vec::new()),
            calls,
            natural_finish: natural,
            finish: finish(natural),
            stop_reason: None,
            completion_tokens: reasoning_tokens as u32 + call_tokens,
            reasoning_tokens: reasoning_tokens as u32,
        };
    }
    let room = max - reasoning_tokens;
    let (text, stop, needed) = apply_stop(&plan.content, &settings.stops, settings.include_stop);
    let mut content = owned_pieces(&text);
    let (natural, stop_reason, generated) = if needed > room {
        content.truncate(room);
        ("length", None, room)
    } else {
        ("stop", stop, needed)
    };
    Output {
        reasoning,
        content: Some(content),
        calls: Vec::new(),
        natural_finish: natural,
        finish: finish(natural),
        stop_reason: stop_reason.map(StopReason::Text),
        completion_tokens: (reasoning_tokens + generated) as u32,
        reasoning_tokens: reasoning_tokens as u32,
    }
}

/// The choices of a request, ready to be sent.
#[derive(Debug)]
struct Answer {
    id: String,
    created: u64,
    model: String,
    fingerprint: String,
    prompt_tokens: u32,
    include_reasoning: bool,
    outputs: Vec<Output>,
}

/// What one chunk of a choice adds, borrowed from its [`Output`].
#[derive(Debug, Clone, Copy)]
enum Piece<'a> {
    /// Reasoning text.
    Reasoning(&'a str),
    /// Content text.
    Content(&'a str),
    /// A piece of tool call number `index`: its id and type (`head`), its name, a piece of
    /// its arguments.
    Tool {
        index: u32,
        call: &'a ToolCall,
        head: bool,
        name: bool,
        arguments: Option<&'a str>,
    },
    /// Nothing (the finish after tool calls).
    Nothing,
}

/// One chunk of a choice: what it adds, how many tokens that is, and the finish it carries.
#[derive(Debug)]
struct Step<'a> {
    piece: Piece<'a>,
    tokens: u32,
    finish: bool,
}

impl Answer {
    fn completion_tokens(&self) -> u32 {
        self.outputs.iter().map(|o| o.completion_tokens).sum()
    }

    fn reasoning_tokens(&self) -> u32 {
        self.outputs.iter().map(|o| o.reasoning_tokens).sum()
    }

    /// Token counts; with `details`, the reasoning tokens (`completion_tokens_details`); with
    /// `prompt_details`, `"prompt_tokens_details": null`.
    fn usage(&self, completion_tokens: u32, details: bool, prompt_details: bool) -> Usage {
        let mut usage = usage(self.prompt_tokens, completion_tokens);
        if prompt_details {
            usage.set_null("prompt_tokens_details");
        }
        if details {
            usage.completion_tokens_details = Some(CompletionTokensDetails {
                reasoning_tokens: Some(self.reasoning_tokens()),
                ..CompletionTokensDetails::default()
            });
        }
        usage
    }

    /// The whole `chat.completion`.
    fn complete(self) -> Reply {
        let choices = self
            .outputs
            .iter()
            .enumerate()
            .map(|(index, o)| {
                let mut message = nulls!(
                    ResponseMessage,
                    [
                        "content",
                        "refusal",
                        "annotations",
                        "audio",
                        "function_call",
                        "reasoning",
                    ]
                );
                message.role = Role::Assistant;
                message.content = o.content.as_ref().map(|pieces| pieces.concat());
                message.tool_calls = (!o.calls.is_empty()).then(|| o.calls.clone());
                message.reasoning = (self.include_reasoning && !o.reasoning.is_empty())
                    .then(|| o.reasoning.concat());
                let mut choice = nulls!(Choice, ["logprobs", "stop_reason", "token_ids"]);
                choice.extra.insert("routed_experts".into(), Value::Null);
                choice.index = index as u32;
                choice.message = message;
                choice.finish_reason = Some(o.finish.clone());
                choice.stop_reason = o.stop_reason.clone();
                choice
            })
            .collect();
        let mut body = nulls!(
            ChatCompletion,
            [
                "service_tier",
                "prompt_logprobs",
                "prompt_token_ids",
                "prompt_text",
                "kv_transfer_params",
                "ec_transfer_params",
            ]
        );
        body.extra.insert("metrics".into(), Value::Null);
        body.usage = Some(self.usage(self.completion_tokens(), true, true));
        body.id = self.id;
        body.object = "chat.completion".to_owned();
        body.created = self.created;
        body.model = self.model;
        body.choices = choices;
        body.system_fingerprint = Some(self.fingerprint);
        Reply::ok(&body)
    }

    /// The chunks of one choice, the last carrying its finish.
    fn steps<'a>(&self, output: &'a Output, style: ToolCallStyle) -> Vec<Step<'a>> {
        let mut steps = Vec::new();
        let token = |piece| Step {
            piece,
            tokens: 1,
            finish: false,
        };
        if self.include_reasoning {
            steps.extend(output.reasoning.iter().map(|p| token(Piece::Reasoning(p))));
        }
        steps.extend(
            output
                .content
                .iter()
                .flatten()
                .map(|p| token(Piece::Content(p))),
        );
        for (index, call) in output.calls.iter().enumerate() {
            tool_steps(&mut steps, index as u32, call, style);
        }
        match (output.natural_finish, steps.last_mut()) {
            ("length", Some(last)) => last.finish = true,
            (natural, _) => steps.push(Step {
                piece: if natural == "tool_calls" || !output.calls.is_empty() {
                    Piece::Nothing
                } else {
                    Piece::Content("")
                },
                tokens: 0,
                finish: true,
            }),
        }
        steps
    }

    /// The `chat.completion.chunk` events, ending with `[DONE]`.
    ///
    /// Every event is written from one chunk whose id, object, created and model are set once:
    /// each step overwrites its one choice in place (reusing the strings there), so a token
    /// costs no allocation but its event's bytes once those strings have grown to fit.
    fn stream(self, style: ToolCallStyle, include_usage: bool, continuous: bool) -> Reply {
        let mut chunk = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice::default()],
            ..ChatCompletionChunk::default()
        };
        // The `null`s of a choice: in its first chunk, in the chunks after it, and in its
        // finish (`stop_reason` too). Set once, and copied into the choice at each step: an
        // `Extra` without members holds its type's record of `null`s in 24 bytes, and
        // copying it allocates nothing.
        let first_nulls = nulls!(ChunkChoice, ["logprobs", "finish_reason"]).extra;
        let step_nulls = nulls!(ChunkChoice, ["logprobs", "finish_reason", "token_ids"]).extra;
        let finish_nulls = nulls!(ChunkChoice, ["logprobs", "stop_reason", "token_ids"]).extra;
        // A tool call's deltas have `"content": null`.
        let tool_nulls = nulls!(Delta, ["content"]).extra;
        let mut fingerprint = Some(self.fingerprint.clone());
        let mut events = Vec::new();

        // The first chunk of each choice: the role, and `prompt_token_ids` and `prompt_text`
        // as `null`.
        chunk.set_null("prompt_token_ids");
        chunk.set_null("prompt_text");
        if continuous {
            chunk.usage = Some(self.usage(0, false, false));
        }
        for index in 0..self.outputs.len() {
            let choice = &mut chunk.choices[0];
            choice.index = index as u32;
            choice.extra = first_nulls.clone();
            choice.delta.role = Some(Role::Assistant);
            set_text(&mut choice.delta.content, Some(""));
            events.push(event(&chunk));
        }
        // Forget the first chunks' `null`s (the chunk has no other member in `extra`).
        chunk.extra = Extra::new();
        chunk.choices[0].delta.role = None;

        let mut steps: Vec<std::vec::IntoIter<Step<'_>>> = self
            .outputs
            .iter()
            .map(|o| self.steps(o, style).into_iter())
            .collect();
        let mut sent_tokens = 0;
        // Choices advance together, one step each in turn, as vLLM's engine steps them.
        loop {
            let mut any = false;
            for (index, choice_steps) in steps.iter_mut().enumerate() {
                let Some(step) = choice_steps.next() else {
                    continue;
                };
                any = true;
                sent_tokens += step.tokens;
                let output = &self.outputs[index];
                let choice = &mut chunk.choices[0];
                choice.index = index as u32;
                fill(&mut choice.delta, step.piece, &tool_nulls);
                if step.finish {
                    choice.extra = finish_nulls.clone();
                    choice.finish_reason = Some(output.finish.clone());
                    choice.stop_reason = output.stop_reason.clone();
                } else {
                    choice.extra = step_nulls.clone();
                    choice.finish_reason = None;
                    choice.stop_reason = None;
                }
                if continuous {
                    let so_far = sent_tokens.min(self.completion_tokens());
                    chunk.usage = Some(self.usage(so_far, false, false));
                }
                if step.finish && !include_usage {
                    chunk.system_fingerprint = fingerprint.take();
                }
                events.push(event(&chunk));
                if let Some(sent) = chunk.system_fingerprint.take() {
                    fingerprint = Some(sent);
                }
            }
            if !any {
                break;
            }
        }
        if include_usage {
            chunk.choices.clear();
            chunk.usage = Some(self.usage(self.completion_tokens(), true, false));
            chunk.system_fingerprint = fingerprint;
            events.push(event(&chunk));
        }
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
        Reply::events(events)
    }
}

/// Overwrites `delta` with what `piece` adds, reusing the strings already there.
fn fill(delta: &mut Delta, piece: Piece<'_>, tool_nulls: &Extra) {
    let (reasoning, content) = match piece {
        Piece::Reasoning(text) => (Some(text), None),
        Piece::Content(text) => (None, Some(text)),
        Piece::Tool { .. } | Piece::Nothing => (None, None),
    };
    set_text(&mut delta.reasoning, reasoning);
    set_text(&mut delta.content, content);
    match piece {
        Piece::Tool {
            index,
            call,
            head,
            name,
            arguments,
        } => {
            delta.extra = tool_nulls.clone();
            let pieces = delta.tool_calls.get_or_insert_with(Vec::new);
            pieces.truncate(1);
            if pieces.is_empty() {
                pieces.push(ToolCallDelta::default());
            }
            let part = &mut pieces[0];
            part.index = index;
            set_text(&mut part.id, head.then_some(call.id.as_str()));
            set_text(&mut part.kind, head.then_some("function"));
            if name || arguments.is_some() {
                let function = part.function.get_or_insert_with(FunctionCallDelta::default);
                set_text(
                    &mut function.name,
                    name.then_some(call.function.name.as_str()),
                );
                set_text(&mut function.arguments, arguments);
            } else {
                part.function = None;
            }
        }
        _ => {
            delta.extra = Extra::new();
            delta.tool_calls = None;
        }
    }
}

/// The steps of one tool call, in `style`.
fn tool_steps<'a>(steps: &mut Vec<Step<'a>>, index: u32, call: &'a ToolCall, style: ToolCallStyle) {
    let piece = |head: bool, name: bool, arguments: Option<&'a str>| Piece::Tool {
        index,
        call,
        head,
        name,
        arguments,
    };
    let name_tokens = tokenizer::count(&call.function.name);
    let step = |piece, tokens| Step {
        piece,
        tokens,
        finish: false,
    };
    match style {
        ToolCallStyle::Whole => {
            let tokens = name_tokens + tokenizer::count(&call.function.arguments);
            steps.push(step(
                piece(true, true, Some(call.function.arguments.as_str())),
                tokens,
            ));
            return;
        }
        ToolCallStyle::Hermes => {
            steps.push(step(piece(true, false, None), 0));
            steps.push(step(piece(false, true, None), name_tokens));
        }
        _ => steps.push(step(piece(true, true, None), name_tokens)),
    }
    for argument in tokenizer::pieces(&call.function.arguments) {
        steps.push(step(piece(false, false, Some(argument)), 1));
    }
}

/// `data: {json}\n\n`.
pub(crate) fn event(chunk: &impl Serialize) -> Bytes {
    // Room for a typical chunk, so that writing it rarely grows the buffer.
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut bytes, chunk).is_err() {
        bytes.extend_from_slice(b"{}");
    }
    bytes.extend_from_slice(b"\n\n");
    Bytes::from(bytes)
}
