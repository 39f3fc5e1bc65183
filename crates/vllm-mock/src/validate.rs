//! Request validation with vLLM's answers: pydantic's messages for bodies that do not fit
//! the schema, vLLM's own for values it rejects.
//!
//! A chat or completion request meets vLLM 0.32's checks in vLLM's order, each refusal
//! worded as vLLM words it (the captures in
//! `crates/vllm-types/tests/fixtures/vllm-0.32-cpu/validation/` are the reference):
//!
//! 1. the `Content-Type` ([`check_content_type`], called by the router);
//! 2. the body as a JSON object ([`parse_object`]);
//! 3. the request model ([`chat_request`], [`completion_request`]): its "before" validators
//!    (tool choice, logprobs, stream options, prompt flags; pydantic runs the last defined
//!    first), then pydantic's field validation, every failing field reported at once, values
//!    coerced as pydantic's lax mode does (`"0.5"` and `true` are numbers, `2.0` an integer);
//! 4. the model (`404`, in the handler);
//! 5. rendering and the sampling parameters ([`chat_params`], [`completion_params`]): the
//!    empty conversation or prompt list, `max_tokens` against `max_model_len`, then
//!    `SamplingParams._verify_args` as a table of ranges ([`RANGES`]), greedy sampling with
//!    `n > 1`, and the engine's limit on logprobs;
//! 6. the prompt against the context once it is rendered and counted ([`check_context`]):
//!    vLLM refuses a prompt longer than the context and otherwise clamps `max_tokens` to what
//!    the context leaves.
//!
//! One known difference of order: vLLM counts the prompt (6) before it builds the sampling
//! parameters (5), so a request with both an over-long prompt and an invalid parameter is
//! refused for the prompt by vLLM and for the parameter by the mock.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::json::{python_display, python_float, python_str};
use crate::reply::{FieldError, Reply};

/// The JSON type a member must have, as pydantic checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Number,
    Bool,
    Str,
    List,
    Object,
    /// `stop`: a string, or a list of at most [`MAX_STOP`] strings.
    Stop,
    /// `messages`: a list of chat messages (required).
    Messages,
    /// The completion `prompt`: a string, a list of strings, of token ids or of lists of ids.
    Prompt,
}

/// The members of a chat request pydantic validates, in the order of vLLM's
/// `ChatCompletionRequest` (its errors are listed in this order).
const CHAT_FIELDS: &[(&str, Kind)] = &[
    ("messages", Kind::Messages),
    ("model", Kind::Str),
    ("frequency_penalty", Kind::Number),
    ("logprobs", Kind::Bool),
    ("top_logprobs", Kind::Int),
    ("max_tokens", Kind::Int),
    ("max_completion_tokens", Kind::Int),
    ("n", Kind::Int),
    ("presence_penalty", Kind::Number),
    ("seed", Kind::Int),
    ("stop", Kind::Stop),
    ("stream", Kind::Bool),
    ("stream_options", Kind::Object),
    ("temperature", Kind::Number),
    ("top_p", Kind::Number),
    ("tools", Kind::List),
    ("thinking_token_budget", Kind::Int),
    ("include_reasoning", Kind::Bool),
    ("top_k", Kind::Int),
    ("min_p", Kind::Number),
    ("repetition_penalty", Kind::Number),
    ("include_stop_str_in_output", Kind::Bool),
    ("ignore_eos", Kind::Bool),
    ("min_tokens", Kind::Int),
    ("add_generation_prompt", Kind::Bool),
    ("continue_final_message", Kind::Bool),
    ("chat_template_kwargs", Kind::Object),
];

/// The members of a completion request pydantic validates, in the order of vLLM's
/// `CompletionRequest`.
const COMPLETION_FIELDS: &[(&str, Kind)] = &[
    ("model", Kind::Str),
    ("prompt", Kind::Prompt),
    ("echo", Kind::Bool),
    ("frequency_penalty", Kind::Number),
    ("logprobs", Kind::Int),
    ("max_tokens", Kind::Int),
    ("n", Kind::Int),
    ("presence_penalty", Kind::Number),
    ("seed", Kind::Int),
    ("stop", Kind::Stop),
    ("stream", Kind::Bool),
    ("stream_options", Kind::Object),
    ("temperature", Kind::Number),
    ("top_p", Kind::Number),
    ("top_k", Kind::Int),
    ("min_p", Kind::Number),
    ("repetition_penalty", Kind::Number),
    ("include_stop_str_in_output", Kind::Bool),
    ("ignore_eos", Kind::Bool),
    ("min_tokens", Kind::Int),
    ("thinking_token_budget", Kind::Int),
];

/// The most stop strings vLLM takes.
const MAX_STOP: usize = 4;
/// vLLM's default limit on logprobs per token (`--max-logprobs`).
const MAX_LOGPROBS: i64 = 20;
/// The vocabulary of the model the mock stands for (SmolLM2-135M as vLLM loads it): what
/// vLLM takes `-1` ("every token") logprobs for.
const VOCAB_SIZE: i64 = 49158;
/// vLLM's default `VLLM_MAX_N_SEQUENCES`.
const MAX_N: f64 = 16384.0;

/// What a sampling parameter must be, in Python's comparisons (`NaN` fails every range, and
/// passes `AtLeast`/`AtMost`/`Above` as Python's `<` does).
#[derive(Debug, Clone, Copy)]
enum Allowed {
    Finite,
    /// Refused below.
    AtLeast(f64),
    /// Refused above.
    AtMost(f64),
    /// Refused at or below.
    Above(f64),
    /// `lo <= v <= hi`.
    Within(f64, f64),
    /// `lo < v <= hi`.
    AboveAtMost(f64, f64),
}

impl Allowed {
    fn refuses(self, v: f64) -> bool {
        match self {
            Allowed::Finite => !v.is_finite(),
            Allowed::AtLeast(lo) => v < lo,
            Allowed::AtMost(hi) => v > hi,
            Allowed::Above(lo) => v <= lo,
            Allowed::Within(lo, hi) => !(lo <= v && v <= hi),
            Allowed::AboveAtMost(lo, hi) => !(lo < v && v <= hi),
        }
    }
}

/// One of vLLM's checks of a sampling parameter: its member, whether vLLM holds it as a
/// float (shown as Python shows floats: `0.0`), what it must be, the message (`{}`: the
/// value), and whether vLLM names it as the error's `param` (with `(parameter=…, value=…)`
/// after the message) or only in the message.
#[derive(Debug)]
struct Range {
    field: &'static str,
    float: bool,
    allowed: Allowed,
    message: &'static str,
    named: bool,
}

const fn int(field: &'static str, allowed: Allowed, message: &'static str, named: bool) -> Range {
    Range {
        field,
        float: false,
        allowed,
        message,
        named,
    }
}

const fn float(field: &'static str, allowed: Allowed, message: &'static str, named: bool) -> Range {
    Range {
        field,
        float: true,
        allowed,
        message,
        named,
    }
}

/// `SamplingParams._verify_args` of vLLM 0.32, in its order (the first refusal is reported).
/// `max_tokens` is `max_completion_tokens` when a chat request has it.
const RANGES: &[Range] = &[
    int(
        "n",
        Allowed::AtLeast(1.0),
        "n must be at least 1, got {}.",
        false,
    ),
    int(
        "n",
        Allowed::AtMost(MAX_N),
        "n must be at most 16384, got {}. To increase this limit, set the \
         VLLM_MAX_N_SEQUENCES environment variable.",
        false,
    ),
    float(
        "presence_penalty",
        Allowed::Within(-2.0, 2.0),
        "presence_penalty must be in [-2, 2], got {}.",
        false,
    ),
    float(
        "frequency_penalty",
        Allowed::Within(-2.0, 2.0),
        "frequency_penalty must be in [-2, 2], got {}.",
        false,
    ),
    float(
        "repetition_penalty",
        Allowed::Finite,
        "repetition_penalty must be a finite number, got {}.",
        false,
    ),
    float(
        "repetition_penalty",
        Allowed::Above(0.0),
        "repetition_penalty must be greater than zero, got {}.",
        false,
    ),
    float(
        "temperature",
        Allowed::Finite,
        "temperature must be a finite number, got {}.",
        true,
    ),
    float(
        "temperature",
        Allowed::AtLeast(0.0),
        "temperature must be non-negative, got {}.",
        true,
    ),
    float(
        "temperature",
        Allowed::AtMost(2.0),
        "temperature must be in [0, 2], got {}.",
        true,
    ),
    float(
        "top_p",
        Allowed::AboveAtMost(0.0, 1.0),
        "top_p must be in (0, 1], got {}.",
        true,
    ),
    int(
        "top_k",
        Allowed::AtLeast(-1.0),
        "top_k must be 0 (disable), or at least 1, got {}.",
        false,
    ),
    float(
        "min_p",
        Allowed::Within(0.0, 1.0),
        "min_p must be in [0, 1], got {}.",
        false,
    ),
    int(
        "max_tokens",
        Allowed::AtLeast(1.0),
        "max_tokens must be at least 1, got {}.",
        true,
    ),
    int(
        "min_tokens",
        Allowed::AtLeast(0.0),
        "min_tokens must be greater than or equal to 0, got {}.",
        false,
    ),
];

/// vLLM's `400` for a value it refuses (`VLLMValidationError`): the message, then
/// `(parameter=…, value=…)` for what it names, and `param` the parameter.
fn refuse(message: &str, parameter: Option<&str>, value: Option<&str>) -> Reply {
    let extras: Vec<String> = parameter
        .map(|p| format!("parameter={p}"))
        .into_iter()
        .chain(value.map(|v| format!("value={v}")))
        .collect();
    if extras.is_empty() {
        Reply::bad_request(parameter, message)
    } else {
        Reply::bad_request(parameter, &format!("{message} ({})", extras.join(", ")))
    }
}

/// vLLM's refusal of a body not sent as JSON: the media type of `Content-Type`, lowercased,
/// must be `application/json` (parameters such as `charset` are allowed).
pub(crate) fn check_content_type(content_type: Option<&str>) -> Result<(), Reply> {
    let lowered = content_type.unwrap_or_default().to_ascii_lowercase();
    match lowered.split(';').next() {
        Some("application/json") => Ok(()),
        _ => Err(Reply::unsupported_media_type()),
    }
}

/// The body as a JSON object, or the `400` vLLM sends for an empty body, invalid JSON, or
/// JSON that is not an object.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Reply::validation(
            "missing",
            "body",
            "Field required",
            &Value::Null,
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Reply::validation(
            "model_attributes_type",
            "body",
            "Input should be a valid dictionary or object to extract fields from",
            &other,
        )),
        Err(e) => {
            let (offset, error) = python_json_error(body, &e);
            let ctx = format!("{{'error': {}}}", python_str(&error));
            Err(Reply::validation_with_ctx(
                "json_invalid",
                &format!("body.{offset}"),
                "JSON decode error",
                &Value::String("<dict of 0 items>".into()),
                Some(&ctx),
            ))
        }
    }
}

/// The byte offset of a serde_json error position (1-based line and column; the column
/// counts the offending byte).
fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = body
        .split(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    let mut offset = (line_start + column.saturating_sub(1)).min(body.len());
    // serde_json stops inside a bad literal (`tru`, `this`); Python points at its start.
    while offset > 0 && body[offset - 1].is_ascii_alphabetic() {
        offset -= 1;
    }
    offset
}

/// The error as Python's `json` module reports it: where (a byte offset) and its message,
/// where the two parsers agree on the cause.
fn python_json_error(body: &[u8], e: &serde_json::Error) -> (usize, String) {
    if e.classify() == serde_json::error::Category::Eof {
        return python_eof_error(body);
    }
    let offset = byte_offset(body, e.line(), e.column());
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or_default();
    let message = if text.starts_with("expected value") || text.starts_with("expected ident") {
        "Expecting value"
    } else if text.starts_with("key must be a string") {
        "Expecting property name enclosed in double quotes"
    } else if text.starts_with("expected `,` or") {
        "Expecting ',' delimiter"
    } else if text.starts_with("expected `:`") {
        "Expecting ':' delimiter"
    } else if text.starts_with("trailing characters") {
        "Extra data"
    } else if text.starts_with("invalid escape") {
        // serde_json points past the backslash, Python at it.
        let backslash = body[..offset.min(body.len())]
            .iter()
            .rposition(|&b| b == b'\\')
            .unwrap_or(offset);
        return (backslash, "Invalid \\escape".into());
    } else {
        text
    };
    (offset, message.to_owned())
}

/// What Python's `json` says of a body that ends too soon, from where it ended: inside a
/// string, a literal, an object or a list.
fn python_eof_error(body: &[u8]) -> (usize, String) {
    #[derive(Clone, Copy)]
    enum Frame {
        /// An object: whether a key is expected next, and whether one just ended.
        Object {
            key_next: bool,
            after_key: bool,
        },
        List,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut string_start = None;
    let mut escaped = false;
    for (i, &b) in body.iter().enumerate() {
        if string_start.is_some() {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    string_start = None;
                    if let Some(Frame::Object {
                        key_next,
                        after_key,
                    }) = stack.last_mut()
                    {
                        if *key_next {
                            *key_next = false;
                            *after_key = true;
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => string_start = Some(i),
            b'{' => stack.push(Frame::Object {
                key_next: true,
                after_key: false,
            }),
            b'[' => stack.push(Frame::List),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { after_key, .. }) = stack.last_mut() {
                    *after_key = false;
                }
            }
            b',' => {
                if let Some(Frame::Object { key_next, .. }) = stack.last_mut() {
                    *key_next = true;
                }
            }
            _ => {}
        }
    }
    if let Some(start) = string_start {
        return (start, "Unterminated string starting at".into());
    }
    let end = body.len();
    let Some(last) = body.iter().rposition(|b| !b.is_ascii_whitespace()) else {
        return (end, "Expecting value".into());
    };
    if body[last].is_ascii_alphabetic() {
        // An unfinished literal (`tru`): Python points at its start.
        let start = body[..=last]
            .iter()
            .rposition(|b| !b.is_ascii_alphabetic())
            .map_or(0, |i| i + 1);
        return (start, "Expecting value".into());
    }
    let message = match (body[last], stack.last()) {
        (b'{', _) | (b',', Some(Frame::Object { .. })) => {
            "Expecting property name enclosed in double quotes"
        }
        (b'[' | b':' | b',', _) => "Expecting value",
        (
            _,
            Some(Frame::Object {
                after_key: true, ..
            }),
        ) => "Expecting ':' delimiter",
        _ => "Expecting ',' delimiter",
    };
    (end, message.to_owned())
}

/// Parses the body of a pooling-style request, which needs `input` unless it has `messages`.
pub(crate) fn parse_input_object(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    let body = parse_object(body)?;
    if !body.contains_key("messages") {
        require(&body, "input")?;
    }
    Ok(body)
}

/// `Field required` for `field` when the body lacks it.
pub(crate) fn require(body: &Map<String, Value>, field: &str) -> Result<(), Reply> {
    if body.contains_key(field) {
        return Ok(());
    }
    Err(Reply::validation(
        "missing",
        &format!("body.{field}"),
        "Field required",
        &Value::String(format!("<dict of {} items>", body.len())),
    ))
}

/// vLLM's refusal of `continue_final_message` together with `add_generation_prompt`.
pub(crate) fn check_prompt_flags(body: &Map<String, Value>) -> Result<(), Reply> {
    if truthy(body.get("continue_final_message")) && truthy(body.get("add_generation_prompt")) {
        return Err(refuse(
            "Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
            None,
            None,
        ));
    }
    Ok(())
}

/// The body as the typed request `T`, or a `400` saying why it does not fit.
pub(crate) fn typed<T: DeserializeOwned>(body: Map<String, Value>) -> Result<T, Reply> {
    serde_json::from_value(Value::Object(body)).map_err(|e| {
        let text = e.to_string();
        let msg = text
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned();
        Reply::validation("value_error", "body", &msg, &Value::Null)
    })
}

// ------------------------------------------------------------------ the request model

/// Python's truth of a member: absent, `null`, `false`, `0`, `""`, `[]` and `{}` are false.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Object(map)) => !map.is_empty(),
    }
}

/// A member that is there and not `null`.
fn given<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    body.get(field).filter(|v| !v.is_null())
}

/// A number as Python compares it (`true` is 1; a string is one when it reads as one, as
/// `"nan"` and `"inf"` are left by the lax coercion).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Checks a chat request as vLLM's `ChatCompletionRequest` does before the handler runs:
/// its validators, then its fields (coerced in place as pydantic coerces them).
pub(crate) fn chat_request(body: &mut Map<String, Value>) -> Result<(), Reply> {
    // pydantic runs the "before" validators last defined first.
    check_prompt_flags(body)?;
    check_tool_usage(body)?;
    check_logprobs(body, "top_logprobs")?;
    check_stream_options(body)?;
    check_fields(body, CHAT_FIELDS)
}

/// Checks a completion request as vLLM's `CompletionRequest` does before the handler runs.
pub(crate) fn completion_request(body: &mut Map<String, Value>) -> Result<(), Reply> {
    let prompt_empty = match given(body, "prompt") {
        None => true,
        Some(prompt) => prompt.as_str() == Some(""),
    };
    let embeds_empty = match given(body, "prompt_embeds") {
        None => true,
        Some(embeds) => embeds.as_array().is_some_and(Vec::is_empty),
    };
    if prompt_empty && embeds_empty {
        return Err(refuse(
            "Either prompt or prompt_embeds must be provided and non-empty.",
            Some("prompt"),
            None,
        ));
    }
    check_stream_options(body)?;
    check_logprobs(body, "logprobs")?;
    check_fields(body, COMPLETION_FIELDS)
}

fn check_stream_options(body: &Map<String, Value>) -> Result<(), Reply> {
    if truthy(body.get("stream_options")) && !truthy(body.get("stream")) {
        return Err(refuse(
            "Stream options can only be defined when `stream=True`.",
            Some("stream_options"),
            None,
        ));
    }
    Ok(())
}

/// vLLM's `check_logprobs`: `top` is `top_logprobs` (chat) or `logprobs` (completions).
fn check_logprobs(body: &Map<String, Value>, top: &str) -> Result<(), Reply> {
    for field in ["prompt_logprobs", top] {
        if let Some(value) = given(body, field).filter(|v| !v.is_number() && !v.is_boolean()) {
            return Err(refuse(
                &format!("`{field}` must be an integer."),
                Some(field),
                Some(&python_display(value)),
            ));
        }
    }
    if let Some(value) = given(body, "prompt_logprobs") {
        let p = number(value).unwrap_or_default();
        if truthy(body.get("stream")) && (p > 0.0 || p == -1.0) {
            return Err(refuse(
                "`prompt_logprobs` are not available when `stream=True`.",
                Some("prompt_logprobs"),
                None,
            ));
        }
        if p < 0.0 && p != -1.0 {
            return Err(refuse(
                "`prompt_logprobs` must be a positive value or -1.",
                Some("prompt_logprobs"),
                Some(&python_display(value)),
            ));
        }
    }
    if let Some(value) = given(body, top) {
        let k = number(value).unwrap_or_default();
        if k < 0.0 && k != -1.0 {
            return Err(refuse(
                &format!("`{top}` must be a positive value or -1."),
                Some(top),
                Some(&python_display(value)),
            ));
        }
        if top == "top_logprobs" && (k == -1.0 || k > 0.0) && !truthy(body.get("logprobs")) {
            return Err(refuse(
                "when using `top_logprobs`, `logprobs` must be set to true.",
                Some("top_logprobs"),
                None,
            ));
        }
    }
    Ok(())
}

/// How vLLM wants a named `tool_choice` written.
const TOOL_CHOICE_USAGE: &str =
    r#"Correct usage: `{"type": "function", "function": {"name": "my_function"}}`"#;

/// vLLM's `check_tool_usage`: `tools` not empty, and a `tool_choice` other than `none` only
/// with tools, one of `auto`, `required` or a function among them.
fn check_tool_usage(body: &Map<String, Value>) -> Result<(), Reply> {
    let tools = given(body, "tools");
    if tools.and_then(Value::as_array).is_some_and(Vec::is_empty) {
        return Err(refuse(
            "`tools` must not be an empty array. Either provide at least one tool or omit the \
             field entirely.",
            Some("tools"),
            None,
        ));
    }
    let Some(choice) = given(body, "tool_choice") else {
        return Ok(());
    };
    if choice.as_str() == Some("none") {
        return Ok(());
    }
    let Some(tools) = tools else {
        return Err(refuse(
            "When using `tool_choice`, `tools` must be set.",
            Some("tool_choice"),
            None,
        ));
    };
    let named = match choice {
        Value::String(mode) if mode == "auto" || mode == "required" => return Ok(()),
        Value::Object(named) => named,
        other => {
            return Err(refuse(
                &format!(
                    "Invalid value for `tool_choice`: {}! Only named tools, \"none\", \"auto\" \
                     or \"required\" are supported.",
                    python_display(other)
                ),
                Some("tool_choice"),
                None,
            ));
        }
    };
    let Some(function) = named.get("function").and_then(Value::as_object) else {
        let function = named.get("function").unwrap_or(&Value::Null);
        return Err(refuse(
            &format!(
                "Invalid value for `function`: `{}` in `tool_choice`! {TOOL_CHOICE_USAGE}",
                python_display(function)
            ),
            Some("tool_choice.function"),
            None,
        ));
    };
    let Some(name) = function.get("name") else {
        return Err(refuse(
            &format!("Expected field `name` in `function` in `tool_choice`! {TOOL_CHOICE_USAGE}"),
            Some("tool_choice.function.name"),
            None,
        ));
    };
    if name.as_str().is_none_or(str::is_empty) {
        return Err(refuse(
            &format!(
                "Invalid `name` in `function`: `{}` in `tool_choice`! {TOOL_CHOICE_USAGE}",
                python_display(name)
            ),
            Some("tool_choice.function.name"),
            None,
        ));
    }
    let listed = tools
        .as_array()
        .into_iter()
        .flatten()
        .any(|tool| tool.pointer("/function/name") == Some(name));
    if !listed {
        return Err(refuse(
            "The tool specified in `tool_choice` does not match any of the specified `tools`",
            Some("tool_choice"),
            None,
        ));
    }
    Ok(())
}

/// pydantic's validation of `fields`: every failing field's errors at once; the others
/// coerced in place to the JSON their type reads as (`"2"` → `2`, `true` → `1.0`).
fn check_fields(body: &mut Map<String, Value>, fields: &[(&str, Kind)]) -> Result<(), Reply> {
    let mut errors = Vec::new();
    let mut coerced = Vec::new();
    for &(field, kind) in fields {
        let loc = format!("body.{field}");
        let Some(value) = body.get(field) else {
            if kind == Kind::Messages {
                let input = Value::String(format!("<dict of {} items>", body.len()));
                errors.push(FieldError::new("missing", loc, "Field required", &input));
            }
            continue;
        };
        match kind {
            Kind::Messages => errors.extend(message_errors(value)),
            _ if value.is_null() => {}
            Kind::Stop => errors.extend(stop_errors(value)),
            Kind::Prompt => match check_prompt(value) {
                Ok(Some(value)) => coerced.push((field, value)),
                Ok(None) => {}
                Err(prompt) => errors.extend(prompt),
            },
            _ => match lax(kind, value) {
                Ok(Some(value)) => coerced.push((field, value)),
                Ok(None) => {}
                Err((error, msg)) => errors.push(FieldError::new(error, loc, msg, value)),
            },
        }
    }
    if !errors.is_empty() {
        return Err(Reply::validation_errors(&errors));
    }
    for (field, value) in coerced {
        body.insert(field.to_owned(), value);
    }
    Ok(())
}

/// pydantic's lax reading of `value` as a `kind` (one of the plain kinds): `Ok(None)` when it
/// is one already, `Ok(Some(v))` with the value it reads as, or the error type and message.
fn lax(kind: Kind, value: &Value) -> Result<Option<Value>, (&'static str, &'static str)> {
    const NOT_INT: (&str, &str) = ("int_type", "Input should be a valid integer");
    const INT_FRACTION: (&str, &str) = (
        "int_from_float",
        "Input should be a valid integer, got a number with a fractional part",
    );
    const INT_TEXT: (&str, &str) = (
        "int_parsing",
        "Input should be a valid integer, unable to parse string as an integer",
    );
    const NUMBER_TEXT: (&str, &str) = (
        "float_parsing",
        "Input should be a valid number, unable to parse string as a number",
    );
    const BOOL_TEXT: (&str, &str) = (
        "bool_parsing",
        "Input should be a valid boolean, unable to interpret input",
    );
    /// A float with no fraction, as the integer it is.
    fn whole(f: f64) -> Option<Value> {
        (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then(|| Value::from(f as i64))
    }
    match (kind, value) {
        (Kind::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(None),
        (Kind::Int, Value::Number(n)) => n.as_f64().and_then(whole).map(Some).ok_or(INT_FRACTION),
        (Kind::Int, Value::Bool(b)) => Ok(Some(Value::from(i64::from(*b)))),
        (Kind::Int, Value::String(s)) => {
            let s = s.trim();
            match s.parse::<i64>() {
                Ok(n) => Ok(Some(Value::from(n))),
                Err(_) => s.parse().ok().and_then(whole).map(Some).ok_or(INT_TEXT),
            }
        }
        (Kind::Int, _) => Err(NOT_INT),
        (Kind::Number, Value::Number(_)) => Ok(None),
        (Kind::Number, Value::Bool(b)) => Ok(Some(Value::from(f64::from(u8::from(*b))))),
        // `nan` and `inf` are numbers to pydantic but not to JSON: they stay text, and the
        // range checks refuse them as vLLM does.
        (Kind::Number, Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(f) => Ok(serde_json::Number::from_f64(f).map(Value::Number)),
            Err(_) => Err(NUMBER_TEXT),
        },
        (Kind::Number, _) => Err(("float_type", "Input should be a valid number")),
        (Kind::Bool, Value::Bool(_)) => Ok(None),
        (Kind::Bool, Value::Number(n)) => match n.as_f64() {
            Some(f) if f == 0.0 || f == 1.0 => Ok(Some(Value::Bool(f == 1.0))),
            _ => Err(BOOL_TEXT),
        },
        (Kind::Bool, Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "0" | "off" | "f" | "false" | "n" | "no" => Ok(Some(Value::Bool(false))),
            "1" | "on" | "t" | "true" | "y" | "yes" => Ok(Some(Value::Bool(true))),
            _ => Err(BOOL_TEXT),
        },
        (Kind::Bool, _) => Err(("bool_type", "Input should be a valid boolean")),
        (Kind::Str, Value::String(_)) | (Kind::List, Value::Array(_)) => Ok(None),
        (Kind::Object, Value::Object(_)) => Ok(None),
        (Kind::Str, _) => Err(("string_type", "Input should be a valid string")),
        (Kind::List, _) => Err(("list_type", "Input should be a valid list")),
        (Kind::Object, _) => Err(("dict_type", "Input should be a valid dictionary")),
        (Kind::Stop | Kind::Messages | Kind::Prompt, _) => Ok(None),
    }
}

/// pydantic's errors for `stop` (`str | list[str]` of at most [`MAX_STOP`] items).
fn stop_errors(value: &Value) -> Vec<FieldError> {
    const LOC: &str = "body.stop";
    let not_text = |v: &Value, loc: String| {
        FieldError::new("string_type", loc, "Input should be a valid string", v)
    };
    match value {
        Value::String(_) => Vec::new(),
        Value::Array(items) if items.len() > MAX_STOP => {
            let n = items.len();
            let too_long = FieldError::new(
                "too_long",
                LOC,
                format!("List should have at most {MAX_STOP} items after validation, not {n}"),
                value,
            )
            .with_ctx(format!(
                "{{'field_type': 'List', 'max_length': {MAX_STOP}, 'actual_length': {n}}}"
            ));
            vec![not_text(value, LOC.into()), too_long]
        }
        Value::Array(items) => {
            let mut errors: Vec<FieldError> = items
                .iter()
                .enumerate()
                .filter(|(_, item)| !item.is_string())
                .map(|(i, item)| not_text(item, format!("{LOC}.{i}")))
                .collect();
            if !errors.is_empty() {
                errors.insert(0, not_text(value, LOC.into()));
            }
            errors
        }
        other => vec![
            not_text(other, LOC.into()),
            FieldError::new("list_type", LOC, "Input should be a valid list", other),
        ],
    }
}

/// pydantic's reading of a completion `prompt` (`list[int >= 0] | list[list[int >= 0]] |
/// str | list[str]`, in smart mode: an exact match first, else the first member that reads
/// it): `Ok(Some(v))` when it reads as token ids it is not written as (`[1, "2"]` → `[1, 2]`),
/// else the errors of every member, in order.
fn check_prompt(value: &Value) -> Result<Option<Value>, Vec<FieldError>> {
    const LOC: &str = "body.prompt";
    let not_text = |v: &Value, loc: String| {
        FieldError::new("string_type", loc, "Input should be a valid string", v)
    };
    let not_list = |v: &Value, loc: String| {
        FieldError::new("list_type", loc, "Input should be a valid list", v)
    };
    let Value::Array(items) = value else {
        if value.is_string() {
            return Ok(None);
        }
        return Err(vec![
            not_list(value, LOC.into()),
            not_list(value, LOC.into()),
            not_text(value, LOC.into()),
            not_list(value, LOC.into()),
        ]);
    };
    let id = |v: &Value| v.as_u64().is_some();
    let exact = items.iter().all(id)
        || items
            .iter()
            .all(|i| i.as_array().is_some_and(|ids| ids.iter().all(id)))
        || items.iter().all(Value::is_string);
    if exact {
        return Ok(None);
    }
    // A token id, read leniently: the id, or why it is not one.
    let token = |v: &Value, loc: String| -> Result<Value, Box<FieldError>> {
        let read = match lax(Kind::Int, v) {
            Ok(coerced) => coerced.unwrap_or_else(|| v.clone()),
            Err((kind, msg)) => return Err(Box::new(FieldError::new(kind, loc, msg, v))),
        };
        if read.as_i64().is_some_and(|n| n < 0) {
            return Err(Box::new(
                FieldError::new(
                    "greater_than_equal",
                    loc,
                    "Input should be greater than or equal to 0",
                    v,
                )
                .with_ctx("{'ge': 0}"),
            ));
        }
        Ok(read)
    };
    let ids = |items: &[Value], at: &str| -> Result<Vec<Value>, Vec<FieldError>> {
        let read: Vec<Result<Value, Box<FieldError>>> = items
            .iter()
            .enumerate()
            .map(|(i, v)| token(v, format!("{at}.{i}")))
            .collect();
        if read.iter().all(Result::is_ok) {
            Ok(read.into_iter().flatten().collect())
        } else {
            Err(read
                .into_iter()
                .filter_map(|r| r.err().map(|e| *e))
                .collect())
        }
    };
    let mut errors = match ids(items, LOC) {
        Ok(read) => return Ok(Some(Value::Array(read))),
        Err(errors) => errors,
    };
    let batches: Vec<Result<Value, Vec<FieldError>>> = items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Array(inner) => ids(inner, &format!("{LOC}.{i}")).map(Value::Array),
            other => Err(vec![not_list(other, format!("{LOC}.{i}"))]),
        })
        .collect();
    if batches.iter().all(Result::is_ok) {
        return Ok(Some(Value::Array(batches.into_iter().flatten().collect())));
    }
    errors.extend(batches.into_iter().filter_map(Result::err).flatten());
    errors.push(not_text(value, LOC.into()));
    errors.extend(
        items
            .iter()
            .enumerate()
            .filter(|(_, item)| !item.is_string())
            .map(|(i, item)| not_text(item, format!("{LOC}.{i}"))),
    );
    Err(errors)
}

/// The message types of vLLM's `messages` union, in its order: each one's required fields
/// in their declared order, and the role it takes (`None`: any string).
const MESSAGE_TYPES: &[(&str, &[&str], Option<&str>)] = &[
    (
        "ChatCompletionDeveloperMessageParam",
        &["content", "role"],
        Some("developer"),
    ),
    (
        "ChatCompletionSystemMessageParam",
        &["content", "role"],
        Some("system"),
    ),
    (
        "ChatCompletionUserMessageParam",
        &["content", "role"],
        Some("user"),
    ),
    (
        "ChatCompletionAssistantMessageParam",
        &["role"],
        Some("assistant"),
    ),
    (
        "ChatCompletionToolMessageParam",
        &["content", "role", "tool_call_id"],
        Some("tool"),
    ),
    (
        "ChatCompletionFunctionMessageParam",
        &["content", "name", "role"],
        Some("function"),
    ),
    ("CustomChatCompletionMessageParam", &["role"], None),
];

/// pydantic's errors for `messages`: not a list, or messages that fit no member of the union
/// (not an object; no role, or a role that is not a string). A message with a string role is
/// always accepted (as a custom message); the mock knows vLLM's words only for messages whose
/// content is text or missing, and leaves others to the typed request.
fn message_errors(value: &Value) -> Vec<FieldError> {
    let Value::Array(messages) = value else {
        return vec![FieldError::new(
            "list_type",
            "body.messages",
            "Input should be a valid list",
            value,
        )];
    };
    let mut errors = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let at = format!("body.messages.{i}");
        let Value::Object(fields) = message else {
            for (name, _, _) in MESSAGE_TYPES {
                errors.push(FieldError::new(
                    "dict_type",
                    format!("{at}.{name}"),
                    "Input should be a valid dictionary",
                    message,
                ));
            }
            errors.push(FieldError::new(
                "model_attributes_type",
                format!("{at}.Message"),
                "Input should be a valid dictionary or object to extract fields from",
                message,
            ));
            continue;
        };
        if fields.get("role").is_some_and(Value::is_string)
            || !fields.get("content").is_none_or(Value::is_string)
        {
            continue;
        }
        for &(name, required, role) in MESSAGE_TYPES {
            for &field in required {
                let loc = format!("{at}.{name}.{field}");
                match (fields.get(field), role) {
                    (None, _) => {
                        errors.push(FieldError::new("missing", loc, "Field required", message))
                    }
                    (Some(given), Some(role)) if field == "role" => errors.push(
                        FieldError::new(
                            "literal_error",
                            loc,
                            format!("Input should be '{role}'"),
                            given,
                        )
                        .with_ctx(format!(
                            "{{'expected': {}}}",
                            python_str(&format!("'{role}'"))
                        )),
                    ),
                    (Some(given), None) if field == "role" => errors.push(FieldError::new(
                        "string_type",
                        loc,
                        "Input should be a valid string",
                        given,
                    )),
                    _ => {}
                }
            }
        }
        // openai-harmony's `Message`: an author, and content as a list.
        if !fields.contains_key("author") {
            errors.push(FieldError::new(
                "missing",
                format!("{at}.Message.author"),
                "Field required",
                message,
            ));
        }
        if let Some(content) = fields.get("content").filter(|c| !c.is_array()) {
            errors.push(FieldError::new(
                "list_type",
                format!("{at}.Message.content"),
                "Input should be a valid list",
                content,
            ));
        }
    }
    errors
}

/// The `type_error` of [`lax`], for the endpoints that only check types.
fn type_error(kind: Kind, value: &Value) -> Option<(&'static str, &'static str)> {
    lax(kind, value).err()
}

/// pydantic's type errors for the members of `fields` the body has with the wrong type (the
/// first one; `null` is accepted: every checked member is optional or checked by
/// [`require`]). For the endpoints besides chat and completions.
pub(crate) fn check_types(body: &Map<String, Value>, fields: &[(&str, Kind)]) -> Result<(), Reply> {
    for &(field, kind) in fields {
        let Some(value) = body.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        if let Some((kind, msg)) = type_error(kind, value) {
            return Err(Reply::validation(
                kind,
                &format!("body.{field}"),
                msg,
                value,
            ));
        }
    }
    Ok(())
}

// --------------------------------------------------------------- rendering and sampling

/// Checks a chat request as vLLM does once the model is known: the conversation, then the
/// sampling parameters. A `thinking_token_budget` of `-1` (unlimited) is dropped.
pub(crate) fn chat_params(body: &mut Map<String, Value>, max_model_len: u32) -> Result<(), Reply> {
    if given(body, "messages")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        return Err(refuse(
            "Cannot apply chat template to an empty conversation. Provide at least one message.",
            None,
            None,
        ));
    }
    let max_tokens = given(body, "max_completion_tokens")
        .or_else(|| given(body, "max_tokens"))
        .cloned();
    check_sampling(body, max_tokens.as_ref(), max_model_len)?;
    if truthy(body.get("logprobs")) {
        let top = given(body, "top_logprobs").and_then(Value::as_i64);
        check_logprobs_limit(top.unwrap_or(0))?;
    }
    unlimited_budget(body);
    Ok(())
}

/// Checks a completion request as vLLM does once the model is known: the prompt list, then
/// the sampling parameters.
pub(crate) fn completion_params(
    body: &mut Map<String, Value>,
    max_model_len: u32,
) -> Result<(), Reply> {
    if given(body, "prompt")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        return Err(refuse("You must pass at least one prompt", None, None));
    }
    let empty_prompt =
        |p: &Value| p.as_str() == Some("") || p.as_array().is_some_and(Vec::is_empty);
    if given(body, "prompt")
        .and_then(Value::as_array)
        .is_some_and(|prompts| prompts.iter().any(empty_prompt))
    {
        return Err(refuse("The decoder prompt cannot be empty", None, None));
    }
    let max_tokens = given(body, "max_tokens").cloned();
    check_sampling(body, max_tokens.as_ref(), max_model_len)?;
    if let Some(k) = given(body, "logprobs").and_then(Value::as_i64) {
        check_logprobs_limit(k)?;
    }
    unlimited_budget(body);
    Ok(())
}

/// `thinking_token_budget: -1` is no budget.
fn unlimited_budget(body: &mut Map<String, Value>) {
    if given(body, "thinking_token_budget").and_then(Value::as_i64) == Some(-1) {
        body.remove("thinking_token_budget");
    }
}

/// vLLM's checks of the sampling parameters (`max_tokens`: the requested output budget), in
/// its order: against `max_model_len`, the thinking budget, [`RANGES`], `min_tokens`
/// against `max_tokens`, empty stop strings, and `n` with greedy sampling.
fn check_sampling(
    body: &Map<String, Value>,
    max_tokens: Option<&Value>,
    max_model_len: u32,
) -> Result<(), Reply> {
    if let Some(max) = max_tokens.and_then(number) {
        if max > f64::from(max_model_len) {
            let max = max_tokens.map(python_display).unwrap_or_default();
            return Err(refuse(
                &format!(
                    "max_tokens={max} cannot be greater than max_model_len={max_model_len}. \
                     Please request fewer output tokens."
                ),
                Some("max_tokens"),
                Some(&max),
            ));
        }
    }
    if let Some(budget) = given(body, "thinking_token_budget").filter(|b| number(b) < Some(-1.0)) {
        return Err(refuse(
            "`thinking_token_budget` must be a non-negative integer or -1 for unlimited.",
            Some("thinking_token_budget"),
            Some(&python_display(budget)),
        ));
    }
    for range in RANGES {
        let value = if range.field == "max_tokens" {
            max_tokens
        } else {
            given(body, range.field)
        };
        let Some(v) = value.and_then(number) else {
            continue;
        };
        if !range.allowed.refuses(v) {
            continue;
        }
        let shown = if range.float {
            python_float(v)
        } else {
            value.map(python_display).unwrap_or_default()
        };
        let message = range.message.replace("{}", &shown);
        return Err(if range.named {
            refuse(&message, Some(range.field), Some(&shown))
        } else {
            refuse(&message, None, None)
        });
    }
    let min_tokens = given(body, "min_tokens").and_then(Value::as_i64);
    let max = max_tokens.and_then(Value::as_i64);
    if let (Some(min), Some(max)) = (min_tokens, max) {
        if min > max {
            return Err(refuse(
                &format!("min_tokens must be less than or equal to max_tokens={max}, got {min}."),
                None,
                None,
            ));
        }
    }
    let empty_stop = match given(body, "stop") {
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(stops)) => stops.iter().any(|s| s.as_str() == Some("")),
        _ => false,
    };
    if empty_stop {
        return Err(refuse("stop cannot contain an empty string.", None, None));
    }
    // Greedy: a temperature of 0 (below 0.01 vLLM raises it to 0.01; unset, it is 1).
    let greedy = given(body, "temperature").and_then(number) == Some(0.0);
    let n = given(body, "n").and_then(Value::as_i64).unwrap_or(1);
    if greedy && n > 1 {
        return Err(refuse(
            &format!("n must be 1 when using greedy sampling, got {n}."),
            None,
            None,
        ));
    }
    Ok(())
}

/// The engine's limit on sample logprobs (`-1`: the whole vocabulary).
fn check_logprobs_limit(k: i64) -> Result<(), Reply> {
    let k = if k == -1 { VOCAB_SIZE } else { k };
    if k > MAX_LOGPROBS {
        let shown = k.to_string();
        return Err(refuse(
            &format!(
                "Requested sample logprobs of {k}, which is greater than max allowed: {MAX_LOGPROBS}"
            ),
            Some("logprobs"),
            Some(&shown),
        ));
    }
    Ok(())
}

/// vLLM's checks of a text prompt of `prompt_tokens` against the context; the output budget:
/// `requested` clamped to what the context leaves (vLLM clamps rather than refuse). vLLM's
/// tokenizer stops one token past the context, so an over-long text prompt is reported as
/// "at least" that many tokens.
pub(crate) fn check_context(
    max_model_len: u32,
    prompt_tokens: u32,
    requested: Option<u32>,
) -> Result<u32, Reply> {
    let counted = prompt_tokens.min(max_model_len.saturating_add(1));
    context(max_model_len, counted, requested)
}

/// [`check_context`] for a prompt of token ids (counted exactly).
pub(crate) fn check_ids_context(
    max_model_len: u32,
    prompt_tokens: u32,
    requested: Option<u32>,
) -> Result<u32, Reply> {
    context(max_model_len, prompt_tokens, requested)
}

fn context(max_model_len: u32, prompt_tokens: u32, requested: Option<u32>) -> Result<u32, Reply> {
    if let Some(max) = requested.filter(|&m| m > max_model_len) {
        return Err(refuse(
            &format!(
                "max_tokens={max} cannot be greater than max_model_len={max_model_len}. \
                 Please request fewer output tokens."
            ),
            Some("max_tokens"),
            Some(&max.to_string()),
        ));
    }
    if prompt_tokens > max_model_len {
        let at_least = if prompt_tokens == max_model_len.saturating_add(1) {
            "at least "
        } else {
            ""
        };
        return Err(refuse(
            &format!(
                "This model's maximum context length is {max_model_len} tokens. However, your \
                 prompt contains {at_least}{prompt_tokens} input tokens, which exceeds this limit \
                 even without any output tokens. Please reduce the length of the input prompt."
            ),
            Some("input_tokens"),
            Some(&prompt_tokens.to_string()),
        ));
    }
    let room = max_model_len - prompt_tokens;
    let budget = requested.map_or(room, |max| max.min(room));
    if budget == 0 {
        return Err(refuse(
            "max_tokens must be at least 1, got 0.",
            Some("max_tokens"),
            Some("0"),
        ));
    }
    Ok(budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Payload;

    fn body_of(reply: &Reply) -> Value {
        match &reply.payload {
            Payload::Full(_, bytes) => serde_json::from_slice(bytes).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_json_is_reported_at_its_offset_as_vllm_does() {
        let Err(reply) = parse_object(br#"{"model": "x", "messages": [ this is not json"#) else {
            panic!()
        };
        assert_eq!(reply.status, 400);
        assert_eq!(
            body_of(&reply),
            serde_json::json!({"error": {
                "message": "1 validation error:\n  {'type': 'json_invalid', 'loc': 'body.29', 'msg': 'JSON decode error', 'input': '<dict of 0 items>', 'ctx': {'error': 'Expecting value'}}",
                "type": "Bad Request",
                "param": "body.29",
                "code": 400,
            }})
        );
    }

    #[test]
    fn missing_field_is_reported_as_vllm_does() {
        let body = parse_object(br#"{"model":"smollm2-135m","max_tokens":4}"#).unwrap();
        let Err(reply) = require(&body, "messages") else {
            panic!()
        };
        assert_eq!(
            body_of(&reply)["error"]["message"],
            "1 validation error:\n  {'type': 'missing', 'loc': 'body.messages', 'msg': 'Field required', 'input': '<dict of 2 items>'}"
        );
    }

    #[test]
    fn wrong_types_are_reported_as_vllm_does() {
        let mut body = parse_object(br#"{"messages":[],"max_tokens":"abc"}"#).unwrap();
        let Err(reply) = chat_request(&mut body) else {
            panic!()
        };
        assert_eq!(
            body_of(&reply)["error"],
            serde_json::json!({
                "message": "1 validation error:\n  {'type': 'int_parsing', 'loc': 'body.max_tokens', 'msg': 'Input should be a valid integer, unable to parse string as an integer', 'input': 'abc'}",
                "type": "Bad Request",
                "param": "body.max_tokens",
                "code": 400,
            })
        );
    }

    #[test]
    fn values_are_coerced_as_pydantic_does() {
        let mut body = parse_object(
            br#"{"messages":[],"max_tokens":"3","n":2.0,"temperature":true,"top_p":" 0.5 ","stream":"no","logprobs":0}"#,
        )
        .unwrap();
        chat_request(&mut body).unwrap();
        assert_eq!(
            Value::Object(body),
            serde_json::json!({"messages": [], "max_tokens": 3, "n": 2, "temperature": 1.0,
                               "top_p": 0.5, "stream": false, "logprobs": false})
        );
    }

    #[test]
    fn a_body_that_ends_too_soon_is_reported_as_pythons_json_does() {
        // Captured from vLLM 0.32: the body, where Python's `json` stopped, and why.
        for (body, offset, error) in [
            ("{", 1, "Expecting property name enclosed in double quotes"),
            (r#"{"a""#, 4, "Expecting ':' delimiter"),
            (r#"{"a":"#, 5, "Expecting value"),
            (r#"{"a":1"#, 6, "Expecting ',' delimiter"),
            ("[1", 2, "Expecting ',' delimiter"),
            (r#"{"model": "x"#, 10, "Unterminated string starting at"),
            (
                r#"{"a":1,"#,
                7,
                "Expecting property name enclosed in double quotes",
            ),
            ("[1,", 3, "Expecting value"),
            (r#"{"a": [1, 2"#, 11, "Expecting ',' delimiter"),
            (r#"{"a": "b""#, 9, "Expecting ',' delimiter"),
            (
                r#"{"a": {"b": 1},"#,
                15,
                "Expecting property name enclosed in double quotes",
            ),
            (r#"{"a": tru"#, 6, "Expecting value"),
            (r#"{"a" 1}"#, 5, "Expecting ':' delimiter"),
            (r#"{"a": 1} x"#, 9, "Extra data"),
            (r#"{"a": "x\q"}"#, 8, "Invalid \\escape"),
            (
                r#"{"model": "smollm2-135m", "messages": ["#,
                39,
                "Expecting value",
            ),
        ] {
            let e = serde_json::from_slice::<Value>(body.as_bytes()).unwrap_err();
            assert_eq!(
                python_json_error(body.as_bytes(), &e),
                (offset, error.to_owned()),
                "{body}"
            );
        }
    }

    #[test]
    fn sampling_ranges_are_vllms() {
        let refusal = |json: &str| {
            let mut body = parse_object(json.as_bytes()).unwrap();
            chat_request(&mut body).unwrap();
            let Err(reply) = chat_params(&mut body, 4096) else {
                panic!("{json} was accepted")
            };
            body_of(&reply)["error"].clone()
        };
        let e = refusal(r#"{"messages":[{"role":"user","content":"hi"}],"temperature":-0.5}"#);
        assert_eq!(
            e["message"],
            "temperature must be non-negative, got -0.5. (parameter=temperature, value=-0.5)"
        );
        assert_eq!(e["param"], "temperature");
        let e = refusal(r#"{"messages":[{"role":"user","content":"hi"}],"top_p":0}"#);
        assert_eq!(
            e["message"],
            "top_p must be in (0, 1], got 0.0. (parameter=top_p, value=0.0)"
        );
        let e = refusal(r#"{"messages":[{"role":"user","content":"hi"}],"min_p":"nan"}"#);
        assert_eq!(e["message"], "min_p must be in [0, 1], got nan.");
        assert_eq!(e["param"], Value::Null);
        let e = refusal(r#"{"messages":[{"role":"user","content":"hi"}],"n":2,"temperature":0}"#);
        assert_eq!(
            e["message"],
            "n must be 1 when using greedy sampling, got 2."
        );
        for ok in [
            r#"{"messages":[{"role":"user","content":"hi"}],"temperature":2,"top_p":1,"top_k":-1,"min_p":1}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"n":2,"temperature":0.000001}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"presence_penalty":-2,"frequency_penalty":2}"#,
        ] {
            let mut body = parse_object(ok.as_bytes()).unwrap();
            chat_request(&mut body).unwrap();
            chat_params(&mut body, 4096).unwrap();
        }
    }

    #[test]
    fn context_checks() {
        assert_eq!(check_context(4096, 10, None).unwrap(), 4086);
        assert_eq!(check_context(4096, 10, Some(5)).unwrap(), 5);
        // vLLM clamps the output budget to what the context leaves.
        assert_eq!(check_context(100, 95, Some(10)).unwrap(), 5);
        let Err(reply) = check_context(4096, 10, Some(100_000)) else {
            panic!()
        };
        assert_eq!(
            body_of(&reply)["error"]["message"],
            "max_tokens=100000 cannot be greater than max_model_len=4096. Please request fewer output tokens. (parameter=max_tokens, value=100000)"
        );
        // A text prompt over the context is counted one past it ("at least"), token ids exactly.
        let Err(reply) = check_context(4096, 5000, None) else {
            panic!()
        };
        assert_eq!(
            body_of(&reply)["error"]["message"],
            "This model's maximum context length is 4096 tokens. However, your prompt contains at least 4097 input tokens, which exceeds this limit even without any output tokens. Please reduce the length of the input prompt. (parameter=input_tokens, value=4097)"
        );
        let Err(reply) = check_ids_context(4096, 5000, None) else {
            panic!()
        };
        assert!(
            body_of(&reply)["error"]["message"]
                .as_str()
                .unwrap()
                .contains("your prompt contains 5000 input tokens"),
        );
        // A prompt that fills the context leaves no output.
        let Err(reply) = check_context(100, 100, None) else {
            panic!()
        };
        assert_eq!(
            body_of(&reply)["error"]["message"],
            "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)"
        );
    }
}
