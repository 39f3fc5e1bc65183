//! `POST /v1/chat/completions`: what the echo model (or a script) says, in vLLM's shapes,
//! whole or streamed.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use vllm_types::{ChatCompletionRequest, Role, Stop, ToolChoice, ToolChoiceMode};

use crate::behavior::{Behavior, ScriptedCall, ToolCallStyle};
use crate::json::Maybe;
use crate::reply::Reply;
use crate::server::{Shared, now};
use crate::template::{
    apply_stop, chat_prompt, fill_schema, last_user_text, owned_pieces, tool_result_answer,
};
use crate::tokenizer;
use crate::validate::{
    Kind, SAMPLING_FIELDS, check_at_least_one, check_context, check_prompt_flags, check_types,
    parse_object, require, typed,
};
use crate::wire::{
    ChatChoiceOut, ChatCompletionOut, ChunkChoiceOut, ChunkOut, CompletionDetailsOut, DeltaOut,
    FunctionDeltaOut, FunctionOut, MessageOut, ToolCallOut, ToolDeltaOut, UsageOut,
};

pub(crate) const PATH: &str = "/v1/chat/completions";

/// The echo model's reasoning, by what it is about to do.
const REASON_ECHO: &str = "The user wants their words back. I will repeat them exactly.";
const REASON_TOOL_RESULT: &str = "The tool has answered. I will pass its result on.";
const REASON_SCRIPTED: &str = "I know what to say.";

/// Members of a chat request type-checked before anything else.
const CHAT_FIELDS: &[(&str, Kind)] = &[
    ("messages", Kind::List),
    ("max_completion_tokens", Kind::Int),
    ("thinking_token_budget", Kind::Int),
    ("tools", Kind::List),
    ("chat_template_kwargs", Kind::Object),
    ("logprobs", Kind::Bool),
    ("include_reasoning", Kind::Bool),
    ("add_generation_prompt", Kind::Bool),
    ("continue_final_message", Kind::Bool),
];

/// Answers a chat completion request. `behavior`: the queued behavior, replaced by the
/// model's when there is none (for the delivery settings).
pub(crate) fn handle(shared: &Shared, body: &[u8], behavior: &mut Option<Behavior>) -> Reply {
    match chat(shared, body, behavior) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn chat(shared: &Shared, body: &[u8], behavior: &mut Option<Behavior>) -> Result<Reply, Reply> {
    let body = parse_object(body)?;
    require(&body, "messages")?;
    check_types(&body, SAMPLING_FIELDS)?;
    check_types(&body, CHAT_FIELDS)?;
    let (model, scripted) =
        shared.model_and_script(body.get("model").and_then(Value::as_str), PATH, behavior)?;
    if let Some(reply) = scripted {
        return Ok(reply);
    }
    check_at_least_one(
        &body,
        &[
            "n",
            "max_tokens",
            "max_completion_tokens",
            "thinking_token_budget",
        ],
    )?;
    check_prompt_flags(&body)?;
    let request: ChatCompletionRequest = typed(body)?;
    let streamed = request.stream == Some(true);
    if request.stream_options.is_some() && !streamed {
        return Err(Reply::bad_request(
            Some("stream_options"),
            "Stream options can only be defined when `stream=True`.",
        ));
    }
    let tools = request.tools.as_deref().unwrap_or_default();
    check_tool_choice(&request)?;

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

/// vLLM's checks of `tool_choice` against `tools`.
fn check_tool_choice(request: &ChatCompletionRequest) -> Result<(), Reply> {
    let tools = request.tools.as_deref().unwrap_or_default();
    let needs_tools = match &request.tool_choice {
        Some(ToolChoice::Named(named)) => Some(named.function.name.as_str()),
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) => Some(""),
        _ => None,
    };
    match needs_tools {
        Some(_) if tools.is_empty() => Err(Reply::bad_request(
            Some("tool_choice"),
            "When using `tool_choice`, `tools` must be set.",
        )),
        Some(name) if !name.is_empty() && !tools.iter().any(|t| t.function.name == name) => {
            Err(Reply::bad_request(
                Some("tool_choice"),
                "The tool specified in `tool_choice` does not match any of the specified `tools`",
            ))
        }
        _ => Ok(()),
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
    calls: Vec<ToolCallOut>,
    /// Why it ended, as generated (`stop`, `length`, `tool_calls`).
    natural_finish: &'static str,
    /// Why it ended, as reported.
    finish: String,
    stop_reason: Option<String>,
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
    let finish = |natural: &str| plan.finish.clone().unwrap_or_else(|| natural.to_owned());
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
        let calls: Vec<ToolCallOut> = plan
            .calls
            .iter()
            .map(|c| ToolCallOut {
                id: c.id.clone().unwrap_or_else(|| shared.id("chatcmpl-tool-")),
                kind: "function",
                function: FunctionOut {
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                },
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
        stop_reason,
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

/// One chunk of a choice: what it adds, how many tokens that is, and the finish it carries.
#[derive(Debug)]
struct Step {
    delta: DeltaOut,
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

    fn usage(&self, completion_tokens: u32, details: bool, prompt_details: bool) -> UsageOut {
        UsageOut {
            prompt_tokens: self.prompt_tokens,
            total_tokens: self.prompt_tokens + completion_tokens,
            completion_tokens,
            prompt_tokens_details: if prompt_details {
                Maybe::Null
            } else {
                Maybe::Absent
            },
            completion_tokens_details: if details {
                Maybe::Value(CompletionDetailsOut {
                    reasoning_tokens: self.reasoning_tokens(),
                })
            } else {
                Maybe::Absent
            },
        }
    }

    /// The whole `chat.completion`.
    fn complete(self) -> Reply {
        let choices = self
            .outputs
            .iter()
            .enumerate()
            .map(|(index, o)| ChatChoiceOut {
                index: index as u32,
                message: MessageOut {
                    role: "assistant",
                    content: o.content.as_ref().map(|pieces| pieces.concat()),
                    refusal: (),
                    annotations: (),
                    audio: (),
                    function_call: (),
                    tool_calls: o
                        .calls
                        .iter()
                        .map(|c| ToolCallOut {
                            id: c.id.clone(),
                            kind: "function",
                            function: FunctionOut {
                                name: c.function.name.clone(),
                                arguments: c.function.arguments.clone(),
                            },
                        })
                        .collect(),
                    reasoning: (self.include_reasoning && !o.reasoning.is_empty())
                        .then(|| o.reasoning.concat()),
                },
                logprobs: (),
                finish_reason: o.finish.clone(),
                stop_reason: o.stop_reason.clone(),
                token_ids: (),
                routed_experts: (),
            })
            .collect();
        let body = ChatCompletionOut {
            id: &self.id,
            object: "chat.completion",
            created: self.created,
            model: &self.model,
            choices,
            service_tier: (),
            system_fingerprint: &self.fingerprint,
            usage: self.usage(self.completion_tokens(), true, true),
            prompt_logprobs: (),
            prompt_token_ids: (),
            prompt_text: (),
            kv_transfer_params: (),
            ec_transfer_params: (),
            metrics: (),
        };
        Reply::ok(&body)
    }

    /// The chunks of one choice, the last carrying its finish.
    fn steps(&self, output: &Output, style: ToolCallStyle) -> Vec<Step> {
        let mut steps = Vec::new();
        let token = |delta| Step {
            delta,
            tokens: 1,
            finish: false,
        };
        for piece in &output.reasoning {
            if self.include_reasoning {
                steps.push(token(DeltaOut {
                    reasoning: Maybe::Value(piece.clone()),
                    ..DeltaOut::default()
                }));
            }
        }
        for piece in output.content.iter().flatten() {
            steps.push(token(DeltaOut {
                content: Maybe::Value(piece.clone()),
                ..DeltaOut::default()
            }));
        }
        for (index, call) in output.calls.iter().enumerate() {
            tool_steps(&mut steps, index as u32, call, style);
        }
        match (output.natural_finish, steps.last_mut()) {
            ("length", Some(last)) => last.finish = true,
            (natural, _) => steps.push(Step {
                delta: if natural == "tool_calls" || !output.calls.is_empty() {
                    DeltaOut::default()
                } else {
                    DeltaOut {
                        content: Maybe::Value(String::new()),
                        ..DeltaOut::default()
                    }
                },
                tokens: 0,
                finish: true,
            }),
        }
        steps
    }

    /// The `chat.completion.chunk` events, ending with `[DONE]`.
    fn stream(self, style: ToolCallStyle, include_usage: bool, continuous: bool) -> Reply {
        let mut events = Vec::new();
        let mut sent_tokens = 0;
        let chunk = |choices: Vec<ChunkChoiceOut>| ChunkOut {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage: Maybe::Absent,
            system_fingerprint: Maybe::Absent,
            prompt_token_ids: Maybe::Absent,
            prompt_text: Maybe::Absent,
        };
        for index in 0..self.outputs.len() {
            let mut first = chunk(vec![ChunkChoiceOut {
                index: index as u32,
                delta: DeltaOut {
                    role: Maybe::Value("assistant"),
                    content: Maybe::Value(String::new()),
                    ..DeltaOut::default()
                },
                logprobs: (),
                finish_reason: None,
                stop_reason: Maybe::Absent,
                token_ids: Maybe::Absent,
            }]);
            first.prompt_token_ids = Maybe::Null;
            first.prompt_text = Maybe::Null;
            if continuous {
                first.usage = Maybe::Value(self.usage(0, false, false));
            }
            events.push(event(&first));
        }
        let mut steps: Vec<std::vec::IntoIter<Step>> = self
            .outputs
            .iter()
            .map(|o| self.steps(o, style).into_iter())
            .collect();
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
                let mut c = chunk(vec![ChunkChoiceOut {
                    index: index as u32,
                    delta: step.delta,
                    logprobs: (),
                    finish_reason: step.finish.then(|| output.finish.clone()),
                    stop_reason: if step.finish {
                        output.stop_reason.clone().map_or(Maybe::Null, Maybe::Value)
                    } else {
                        Maybe::Absent
                    },
                    token_ids: Maybe::Null,
                }]);
                if continuous {
                    let so_far = sent_tokens.min(self.completion_tokens());
                    c.usage = Maybe::Value(self.usage(so_far, false, false));
                }
                if step.finish && !include_usage {
                    c.system_fingerprint = Maybe::Value(&self.fingerprint);
                }
                events.push(event(&c));
            }
            if !any {
                break;
            }
        }
        if include_usage {
            let mut last = chunk(Vec::new());
            last.usage = Maybe::Value(self.usage(self.completion_tokens(), true, false));
            last.system_fingerprint = Maybe::Value(&self.fingerprint);
            events.push(event(&last));
        }
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
        Reply::events(events)
    }
}

/// The steps of one tool call, in `style`.
fn tool_steps(steps: &mut Vec<Step>, index: u32, call: &ToolCallOut, style: ToolCallStyle) {
    let delta = |id: bool, name: bool, arguments: Option<String>| DeltaOut {
        content: Maybe::Null,
        tool_calls: Maybe::Value(vec![ToolDeltaOut {
            id: if id {
                Maybe::Value(call.id.clone())
            } else {
                Maybe::Absent
            },
            kind: if id {
                Maybe::Value("function")
            } else {
                Maybe::Absent
            },
            index,
            function: if name || arguments.is_some() {
                Maybe::Value(FunctionDeltaOut {
                    name: if name {
                        Maybe::Value(call.function.name.clone())
                    } else {
                        Maybe::Absent
                    },
                    arguments: arguments.map_or(Maybe::Absent, Maybe::Value),
                })
            } else {
                Maybe::Absent
            },
        }]),
        ..DeltaOut::default()
    };
    let name_tokens = tokenizer::count(&call.function.name);
    let step = |delta, tokens| Step {
        delta,
        tokens,
        finish: false,
    };
    match style {
        ToolCallStyle::Whole => {
            let tokens = name_tokens + tokenizer::count(&call.function.arguments);
            steps.push(step(
                delta(true, true, Some(call.function.arguments.clone())),
                tokens,
            ));
            return;
        }
        ToolCallStyle::Hermes => {
            steps.push(step(delta(true, false, None), 0));
            steps.push(step(delta(false, true, None), name_tokens));
        }
        _ => steps.push(step(delta(true, true, None), name_tokens)),
    }
    for piece in tokenizer::pieces(&call.function.arguments) {
        steps.push(step(delta(false, false, Some(piece.to_owned())), 1));
    }
}

/// `data: {json}\n\n`.
pub(crate) fn event(chunk: &impl Serialize) -> Bytes {
    let mut bytes = b"data: ".to_vec();
    if serde_json::to_writer(&mut bytes, chunk).is_err() {
        bytes.extend_from_slice(b"{}");
    }
    bytes.extend_from_slice(b"\n\n");
    Bytes::from(bytes)
}
