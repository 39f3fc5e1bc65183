//! Request validation with vLLM's answers: pydantic's messages for bodies that do not fit
//! the schema, vLLM's own for values it rejects.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::json::python_str;
use crate::reply::Reply;

/// The JSON type a member must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Number,
    Bool,
    Str,
    List,
    Object,
}

/// The members that chat and completion requests type-check before anything else.
pub(crate) const SAMPLING_FIELDS: &[(&str, Kind)] = &[
    ("model", Kind::Str),
    ("max_tokens", Kind::Int),
    ("n", Kind::Int),
    ("temperature", Kind::Number),
    ("top_p", Kind::Number),
    ("top_k", Kind::Int),
    ("min_p", Kind::Number),
    ("seed", Kind::Int),
    ("stream", Kind::Bool),
    ("stream_options", Kind::Object),
    ("presence_penalty", Kind::Number),
    ("frequency_penalty", Kind::Number),
    ("repetition_penalty", Kind::Number),
    ("ignore_eos", Kind::Bool),
    ("include_stop_str_in_output", Kind::Bool),
];

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
            let offset = byte_offset(body, e.line(), e.column());
            let ctx = format!("{{'error': {}}}", python_str(&python_json_error(&e)));
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

/// The error as Python's `json` module words it, where the two agree on the cause.
fn python_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or_default();
    if text.starts_with("expected value")
        || text.starts_with("expected ident")
        || text.starts_with("EOF while parsing a value")
    {
        "Expecting value".into()
    } else if text.starts_with("key must be a string") {
        "Expecting property name enclosed in double quotes".into()
    } else if text.starts_with("expected `,` or") || text.starts_with("EOF while parsing") {
        "Expecting ',' delimiter".into()
    } else if text.starts_with("expected `:`") {
        "Expecting ':' delimiter".into()
    } else if text.starts_with("trailing characters") {
        "Extra data".into()
    } else {
        text.to_owned()
    }
}

/// `Field required` for `field` when the body lacks it.
/// Parses the body of a pooling-style request, which needs `input` unless it has `messages`.
pub(crate) fn parse_input_object(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    let body = parse_object(body)?;
    if !body.contains_key("messages") {
        require(&body, "input")?;
    }
    Ok(body)
}

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

/// pydantic's type errors for the members of `fields` the body has with the wrong type
/// (`null` is accepted: every checked member is optional or checked by [`require`]).
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

/// pydantic's error type and message for `value` where a `kind` is wanted, if it is not one.
fn type_error(kind: Kind, value: &Value) -> Option<(&'static str, &'static str)> {
    match (kind, value) {
        (Kind::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => None,
        (Kind::Int, Value::Number(_)) => Some((
            "int_from_float",
            "Input should be a valid integer, got a number with a fractional part",
        )),
        (Kind::Int, Value::String(_)) => Some((
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        )),
        (Kind::Int, _) => Some(("int_type", "Input should be a valid integer")),
        (Kind::Number, Value::Number(_)) => None,
        (Kind::Number, Value::String(_)) => Some((
            "float_parsing",
            "Input should be a valid number, unable to parse string as a number",
        )),
        (Kind::Number, _) => Some(("float_type", "Input should be a valid number")),
        (Kind::Bool, Value::Bool(_)) => None,
        (Kind::Bool, _) => Some((
            "bool_parsing",
            "Input should be a valid boolean, unable to interpret input",
        )),
        (Kind::Str, Value::String(_)) => None,
        (Kind::Str, _) => Some(("string_type", "Input should be a valid string")),
        (Kind::List, Value::Array(_)) => None,
        (Kind::List, _) => Some(("list_type", "Input should be a valid list")),
        (Kind::Object, Value::Object(_)) => None,
        (Kind::Object, _) => Some(("dict_type", "Input should be a valid dictionary")),
    }
}

/// vLLM's check that counts are at least 1 (`n`, `max_tokens`, …), and that they fit in
/// 32 bits.
pub(crate) fn check_at_least_one(body: &Map<String, Value>, fields: &[&str]) -> Result<(), Reply> {
    for &field in fields {
        let Some(n) = body.get(field).and_then(Value::as_i64) else {
            continue;
        };
        if n < 1 {
            return Err(Reply::bad_request(
                Some(field),
                &format!("{field} must be at least 1, got {n}."),
            ));
        }
        if n > i64::from(u32::MAX) {
            return Err(Reply::bad_request(
                Some(field),
                &format!("{field}={n} is too large. (parameter={field}, value={n})"),
            ));
        }
    }
    Ok(())
}

/// vLLM's refusal of `continue_final_message` together with `add_generation_prompt`.
pub(crate) fn check_prompt_flags(body: &Map<String, Value>) -> Result<(), Reply> {
    let set = |key: &str| body.get(key) == Some(&Value::Bool(true));
    if set("continue_final_message") && set("add_generation_prompt") {
        return Err(Reply::validation(
            "value_error",
            "body",
            "Value error, Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
            &Value::Object(body.clone()),
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

/// vLLM's checks of the output budget against the context, for a prompt of
/// `prompt_tokens`; the output budget: `requested`, else what the context leaves.
pub(crate) fn check_context(
    max_model_len: u32,
    prompt_tokens: u32,
    requested: Option<u32>,
) -> Result<u32, Reply> {
    if let Some(max) = requested.filter(|&m| m > max_model_len) {
        return Err(Reply::bad_request(
            Some("max_tokens"),
            &format!(
                "max_tokens={max} cannot be greater than max_model_len={max_model_len}. \
                 Please request fewer output tokens. (parameter=max_tokens, value={max})"
            ),
        ));
    }
    if prompt_tokens >= max_model_len {
        return Err(Reply::bad_request(
            Some("input_tokens"),
            &format!(
                "This model's maximum context length is {max_model_len} tokens. However, your \
                 request has {prompt_tokens} input tokens. Please reduce the length of the input \
                 messages. (parameter=input_tokens, value={prompt_tokens})"
            ),
        ));
    }
    let room = max_model_len - prompt_tokens;
    match requested {
        Some(max) if max > room => Err(Reply::bad_request(
            Some("max_tokens"),
            &format!(
                "'max_tokens' or 'max_completion_tokens' is too large: {max}. This model's \
                 maximum context length is {max_model_len} tokens and your request has \
                 {prompt_tokens} input tokens ({max} > {max_model_len} - {prompt_tokens}). \
                 (parameter=max_tokens, value={max})"
            ),
        )),
        Some(max) => Ok(max),
        None => Ok(room),
    }
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
        let body = parse_object(br#"{"max_tokens":"abc"}"#).unwrap();
        let Err(reply) = check_types(&body, SAMPLING_FIELDS) else {
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
    fn context_checks() {
        assert_eq!(check_context(4096, 10, None).unwrap(), 4086);
        assert_eq!(check_context(4096, 10, Some(5)).unwrap(), 5);
        let Err(reply) = check_context(4096, 10, Some(100_000)) else {
            panic!()
        };
        assert_eq!(
            body_of(&reply)["error"]["message"],
            "max_tokens=100000 cannot be greater than max_model_len=4096. Please request fewer output tokens. (parameter=max_tokens, value=100000)"
        );
        assert!(check_context(100, 95, Some(10)).is_err());
        assert!(check_context(100, 100, None).is_err());
    }
}
