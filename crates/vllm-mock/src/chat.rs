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
use crate::reply::{EventSource, Reply};
use crate::server::{Shared, now};
use crate::shape::{nulls, set_text, usage};
use crate::template::{
    Pieces, apply_stop, chat_prompt, fill_schema, last_user_text, owned_pieces, tool_result_answer,
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
        ignore_eos: request.ignore_eos == Some(true),
    };
    let n = request.n.unwrap_or(1);
    let outputs: Vec<Output> = (0..n).map(|_| generate(&plan, &settings, shared)).collect();
    for output in &outputs {
        shared.learn(&output.reasoning.concat());
        if let Some(content) = &output.content {
            shared.learn(&content.text_once());
        }
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
    let tracker = shared.tracker(&answer.model, prompt_tokens, answer.engine_finishes());
    if streamed {
        let options = request.stream_options.unwrap_or_default();
        let events = ChatEvents::new(
            answer,
            plan.style,
            options.include_usage == Some(true),
            options.continuous_usage_stats == Some(true),
        );
        Ok(Reply::stream(events, tracker))
    } else {
        let tokens = answer.completion_tokens();
        Ok(answer.complete().generated(tracker, tokens))
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
    /// Go on to `max_tokens` past the end of the text (`ignore_eos`).
    ignore_eos: bool,
}

/// One choice's output.
#[derive(Debug)]
struct Output {
    reasoning: Vec<String>,
    /// `None`: the output ended in the reasoning (content is `null`).
    content: Option<Pieces>,
    calls: Vec<ToolCall>,
    /// Why it ended, as generated (`stop`, `length`, `tool_calls`).
    natural_finish: &'static str,
    /// Why it ended, as reported.
    finish: FinishReason,
    stop_reason: Option<StopReason>,
    completion_tokens: u32,
    reasoning_tokens: u32,
}

impl Output {
    /// How the engine counts this choice's end in `vllm:request_success_total`: a stop
    /// (tool calls included) or the length limit.
    fn engine_finish(&self) -> &'static str {
        if self.natural_finish == "length" {
            "length"
        } else {
            "stop"
        }
    }
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
            content: Some(Pieces::default()),
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
    let mut content = Pieces::of(&text);
    let (natural, stop_reason, generated) = if needed > room {
        content.truncate(room);
        ("length", None, room)
    } else if settings.ignore_eos && stop.is_none() && content.len() > 0 {
        // No end of sequence: the text again and again, up to the limit.
        content.repeat_to(room);
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

/// One step of a tool call, by position: which call, and what of it the step carries
/// (`arguments`: a byte range of its arguments).
#[derive(Debug, Clone)]
struct ToolStep {
    call: usize,
    head: bool,
    name: bool,
    arguments: Option<(usize, usize)>,
    tokens: u32,
}

/// The steps of one choice, by position: its reasoning pieces, its content pieces, its tool
/// calls' steps, and the finish (on the last step for a length stop, else a step of its own).
#[derive(Debug)]
struct ChoiceSteps {
    reasoning: usize,
    content: usize,
    tools: Vec<ToolStep>,
    /// Whether the finish is a step of its own.
    finish_step: bool,
}

impl ChoiceSteps {
    fn new(output: &Output, include_reasoning: bool, style: ToolCallStyle) -> Self {
        let reasoning = if include_reasoning {
            output.reasoning.len()
        } else {
            0
        };
        let content = output.content.as_ref().map_or(0, Pieces::len);
        let mut tools = Vec::new();
        for (index, call) in output.calls.iter().enumerate() {
            tool_steps(&mut tools, index, call, style);
        }
        let any = reasoning + content + tools.len() > 0;
        ChoiceSteps {
            reasoning,
            content,
            tools,
            finish_step: !(output.natural_finish == "length" && any),
        }
    }

    fn len(&self) -> usize {
        self.reasoning + self.content + self.tools.len() + usize::from(self.finish_step)
    }

    /// The step at `at` of `output` (`at < len`).
    fn step<'a>(&self, output: &'a Output, at: usize) -> Step<'a> {
        let last = at + 1 == self.len();
        let finish = last;
        if at < self.reasoning {
            return Step {
                piece: Piece::Reasoning(&output.reasoning[at]),
                tokens: 1,
                finish,
            };
        }
        let at = at - self.reasoning;
        if at < self.content {
            let text = output.content.as_ref().map_or("", |c| c.get(at));
            return Step {
                piece: Piece::Content(text),
                tokens: 1,
                finish,
            };
        }
        let at = at - self.content;
        if let Some(tool) = self.tools.get(at) {
            let call = &output.calls[tool.call];
            return Step {
                piece: Piece::Tool {
                    index: tool.call as u32,
                    call,
                    head: tool.head,
                    name: tool.name,
                    arguments: tool
                        .arguments
                        .map(|(from, to)| &call.function.arguments[from..to]),
                },
                tokens: tool.tokens,
                finish,
            };
        }
        // The finish of its own.
        Step {
            piece: if output.natural_finish == "tool_calls" || !output.calls.is_empty() {
                Piece::Nothing
            } else {
                Piece::Content("")
            },
            tokens: 0,
            finish: true,
        }
    }
}

impl Answer {
    fn completion_tokens(&self) -> u32 {
        self.outputs.iter().map(|o| o.completion_tokens).sum()
    }

    fn reasoning_tokens(&self) -> u32 {
        self.outputs.iter().map(|o| o.reasoning_tokens).sum()
    }

    /// How each choice ends, for the engine's metrics.
    fn engine_finishes(&self) -> Vec<&'static str> {
        self.outputs.iter().map(Output::engine_finish).collect()
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
    fn complete(&self) -> Reply {
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
                message.content = o.content.as_ref().map(Pieces::concat);
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
        body.id = self.id.clone();
        body.object = "chat.completion".to_owned();
        body.created = self.created;
        body.model = self.model.clone();
        body.choices = choices;
        body.system_fingerprint = Some(self.fingerprint.clone());
        Reply::ok(&body)
    }
}

/// Where a chat stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The first chunk of choice `.0` (its role).
    First(usize),
    /// The choices' steps, in turn.
    Steps,
    /// The usage chunk.
    Usage,
    /// `data: [DONE]`.
    Done,
    /// Nothing more.
    End,
}

/// The `chat.completion.chunk` events of an answer, made one at a time as the stream is
/// read, ending with `[DONE]`.
///
/// Every event is written from one chunk whose id, object, created and model are set once:
/// each step overwrites its one choice in place (reusing the strings there), so a token
/// costs no allocation but its event's bytes once those strings have grown to fit.
#[derive(Debug)]
struct ChatEvents {
    answer: Answer,
    plans: Vec<ChoiceSteps>,
    /// Per choice, its next step.
    next: Vec<usize>,
    /// The choice whose turn it is.
    turn: usize,
    include_usage: bool,
    continuous: bool,
    chunk: ChatCompletionChunk,
    step_nulls: Extra,
    finish_nulls: Extra,
    tool_nulls: Extra,
    fingerprint: Option<String>,
    sent_tokens: u32,
    phase: Phase,
}

impl ChatEvents {
    fn new(answer: Answer, style: ToolCallStyle, include_usage: bool, continuous: bool) -> Self {
        let plans: Vec<ChoiceSteps> = answer
            .outputs
            .iter()
            .map(|o| ChoiceSteps::new(o, answer.include_reasoning, style))
            .collect();
        let mut chunk = ChatCompletionChunk {
            id: answer.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: answer.created,
            model: answer.model.clone(),
            choices: vec![ChunkChoice::default()],
            ..ChatCompletionChunk::default()
        };
        // The first chunk of each choice has `prompt_token_ids` and `prompt_text` as `null`.
        chunk.set_null("prompt_token_ids");
        chunk.set_null("prompt_text");
        ChatEvents {
            next: vec![0; plans.len()],
            plans,
            turn: 0,
            include_usage,
            continuous,
            chunk,
            // The `null`s of a choice after its first chunk, and in its finish
            // (`stop_reason` too). Set once and copied into the choice at each step: an
            // `Extra` without members holds its type's record of `null`s in 24 bytes, and
            // copying it allocates nothing.
            step_nulls: nulls!(ChunkChoice, ["logprobs", "finish_reason", "token_ids"]).extra,
            finish_nulls: nulls!(ChunkChoice, ["logprobs", "stop_reason", "token_ids"]).extra,
            // A tool call's deltas have `"content": null`.
            tool_nulls: nulls!(Delta, ["content"]).extra,
            fingerprint: Some(answer.fingerprint.clone()),
            sent_tokens: 0,
            phase: if answer.outputs.is_empty() {
                Phase::Steps
            } else {
                Phase::First(0)
            },
            answer,
        }
    }

    /// The next choice with a step left, from the one whose turn it is.
    fn next_choice(&mut self) -> Option<usize> {
        let n = self.plans.len();
        for k in 0..n {
            let i = (self.turn + k) % n;
            if self.next[i] < self.plans[i].len() {
                self.turn = (i + 1) % n;
                return Some(i);
            }
        }
        None
    }

    /// The event of the next step, or `None` when every choice is done.
    fn step_event(&mut self) -> Option<(Bytes, u32)> {
        let index = self.next_choice()?;
        let output = &self.answer.outputs[index];
        let step = self.plans[index].step(output, self.next[index]);
        self.next[index] += 1;
        self.sent_tokens += step.tokens;
        let choice = &mut self.chunk.choices[0];
        choice.index = index as u32;
        fill(&mut choice.delta, step.piece, &self.tool_nulls);
        if step.finish {
            choice.extra = self.finish_nulls.clone();
            choice.finish_reason = Some(output.finish.clone());
            choice.stop_reason = output.stop_reason.clone();
        } else {
            choice.extra = self.step_nulls.clone();
            choice.finish_reason = None;
            choice.stop_reason = None;
        }
        if self.continuous {
            let so_far = self.sent_tokens.min(self.answer.completion_tokens());
            self.chunk.usage = Some(self.answer.usage(so_far, false, false));
        }
        if step.finish && !self.include_usage {
            self.chunk.system_fingerprint = self.fingerprint.take();
        }
        let bytes = event(&self.chunk);
        if let Some(sent) = self.chunk.system_fingerprint.take() {
            self.fingerprint = Some(sent);
        }
        Some((bytes, step.tokens))
    }
}

impl EventSource for ChatEvents {
    fn next_event(&mut self) -> Option<(Bytes, u32)> {
        loop {
            match self.phase {
                Phase::First(index) => {
                    if self.continuous {
                        self.chunk.usage = Some(self.answer.usage(0, false, false));
                    }
                    let choice = &mut self.chunk.choices[0];
                    choice.index = index as u32;
                    choice.extra = nulls!(ChunkChoice, ["logprobs", "finish_reason"]).extra;
                    choice.delta.role = Some(Role::Assistant);
                    set_text(&mut choice.delta.content, Some(""));
                    let bytes = event(&self.chunk);
                    if index + 1 < self.answer.outputs.len() {
                        self.phase = Phase::First(index + 1);
                    } else {
                        // Forget the first chunks' `null`s (the chunk has no other member in
                        // `extra`).
                        self.chunk.extra = Extra::new();
                        self.chunk.choices[0].delta.role = None;
                        self.phase = Phase::Steps;
                    }
                    return Some((bytes, 0));
                }
                Phase::Steps => match self.step_event() {
                    Some(event) => return Some(event),
                    None => {
                        self.phase = if self.include_usage {
                            Phase::Usage
                        } else {
                            Phase::Done
                        }
                    }
                },
                Phase::Usage => {
                    self.chunk.choices.clear();
                    self.chunk.usage = Some(self.answer.usage(
                        self.answer.completion_tokens(),
                        true,
                        false,
                    ));
                    self.chunk.system_fingerprint = self.fingerprint.take();
                    self.phase = Phase::Done;
                    return Some((event(&self.chunk), 0));
                }
                Phase::Done => {
                    self.phase = Phase::End;
                    return Some((Bytes::from_static(b"data: [DONE]\n\n"), 0));
                }
                Phase::End => return None,
            }
        }
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

/// The steps of tool call number `index`, in `style`.
fn tool_steps(steps: &mut Vec<ToolStep>, index: usize, call: &ToolCall, style: ToolCallStyle) {
    let name_tokens = tokenizer::count(&call.function.name);
    let step = |head: bool, name: bool, arguments: Option<(usize, usize)>, tokens| ToolStep {
        call: index,
        head,
        name,
        arguments,
        tokens,
    };
    let arguments = &call.function.arguments;
    match style {
        ToolCallStyle::Whole => {
            let tokens = name_tokens + tokenizer::count(arguments);
            steps.push(step(true, true, Some((0, arguments.len())), tokens));
            return;
        }
        ToolCallStyle::Hermes => {
            steps.push(step(true, false, None, 0));
            steps.push(step(false, true, None, name_tokens));
        }
        _ => steps.push(step(true, true, None, name_tokens)),
    }
    let mut at = 0;
    for piece in tokenizer::pieces(arguments) {
        steps.push(step(false, false, Some((at, at + piece.len())), 1));
        at += piece.len();
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
