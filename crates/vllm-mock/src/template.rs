//! The echo model's chat template, and the text helpers of its answers.

use serde_json::Value;
use vllm_types::{Message, Role, Tool};

use crate::json::python_json;
use crate::tokenizer;

/// The conversation as the prompt the model would see, in ChatML:
/// `<|im_start|>{role}\n{content}<|im_end|>\n` per message (tools first, as a system turn;
/// tool calls as `<tool_call>{…}</tool_call>`), then `<|im_start|>assistant\n` when
/// `add_generation_prompt`.
pub(crate) fn render(messages: &[Message], tools: &[Tool], add_generation_prompt: bool) -> String {
    let mut prompt = String::new();
    if !tools.is_empty() {
        prompt.push_str("<|im_start|>system\n# Tools\n");
        for tool in tools {
            let function = serde_json::to_value(&tool.function).unwrap_or(Value::Null);
            prompt.push_str(&python_json(&function));
            prompt.push('\n');
        }
        prompt.push_str("<|im_end|>\n");
    }
    for message in messages {
        prompt.push_str("<|im_start|>");
        prompt.push_str(message.role.as_str());
        prompt.push('\n');
        if let Some(content) = &message.content {
            prompt.push_str(&content.text());
        }
        for call in message.tool_calls.iter().flatten() {
            let arguments = serde_json::from_str::<Value>(&call.function.arguments)
                .unwrap_or_else(|_| Value::String(call.function.arguments.clone()));
            let call = serde_json::json!({"name": call.function.name, "arguments": arguments});
            prompt.push_str("<tool_call>");
            prompt.push_str(&python_json(&call));
            prompt.push_str("</tool_call>");
        }
        prompt.push_str("<|im_end|>\n");
    }
    if add_generation_prompt {
        prompt.push_str("<|im_start|>assistant\n");
    }
    prompt
}

/// The prompt of a chat request, built the same way by `/v1/chat/completions` and `/tokenize`
/// (so that `/tokenize`'s count is the chat answer's `prompt_tokens`): the template with the
/// generation prompt (`add_generation_prompt`, default true), or with the last message left
/// open (no `<|im_end|>`) for `continue_final_message`.
pub(crate) fn chat_prompt(
    messages: &[Message],
    tools: &[Tool],
    add_generation_prompt: Option<bool>,
    continue_final_message: Option<bool>,
) -> String {
    let open = continue_final_message == Some(true);
    let prompt = render(
        messages,
        tools,
        !open && add_generation_prompt != Some(false),
    );
    match prompt.strip_suffix(END_OF_TURN) {
        Some(text) if open && !messages.is_empty() => text.to_owned(),
        _ => prompt,
    }
}

/// The end of a message in the template.
const END_OF_TURN: &str = "<|im_end|>\n";

/// The text of the last `user` message ("" when there is none).
pub(crate) fn last_user_text(messages: &[Message]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .and_then(|m| m.content.as_ref())
        .map(|c| c.text().into_owned())
        .unwrap_or_default()
}

/// The answer to a conversation whose last message is a tool's result: a sentence that
/// quotes it (and names the tool, when the call it answers is in the conversation).
pub(crate) fn tool_result_answer(messages: &[Message]) -> Option<String> {
    let last = messages.last().filter(|m| m.role == Role::Tool)?;
    let result = last
        .content
        .as_ref()
        .map(|c| c.text().into_owned())
        .unwrap_or_default();
    let name = last.tool_call_id.as_deref().and_then(|id| {
        messages
            .iter()
            .rev()
            .flat_map(|m| m.tool_calls.iter().flatten())
            .find(|c| c.id == id)
            .map(|c| c.function.name.clone())
    });
    Some(match name {
        Some(name) => format!("The tool {name} returned: {result}"),
        None => format!("The tool returned: {result}"),
    })
}

/// Output text as pieces (tokens): a text's pieces, or for a model made to go on past the
/// end of its text (`ignore_eos`), those pieces over and over up to a length. Pieces are
/// made on demand, so a million-token answer costs the pieces of its text once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pieces {
    base: Vec<String>,
    len: usize,
}

impl Pieces {
    /// The pieces of `text`.
    pub(crate) fn of(text: &str) -> Self {
        let base = owned_pieces(text);
        Pieces {
            len: base.len(),
            base,
        }
    }

    /// How many pieces there are.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Piece `i` (`i < len`).
    pub(crate) fn get(&self, i: usize) -> &str {
        &self.base[i % self.base.len()]
    }

    /// Keeps the first `len` pieces.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Repeats the text's pieces up to `len` pieces (when there are any).
    pub(crate) fn repeat_to(&mut self, len: usize) {
        if !self.base.is_empty() {
            self.len = len;
        }
    }

    /// The pieces of the text once (for `/detokenize`), whatever the length.
    pub(crate) fn text_once(&self) -> String {
        self.base[..self.len.min(self.base.len())].concat()
    }

    /// All the pieces, joined.
    pub(crate) fn concat(&self) -> String {
        let mut out = String::new();
        for i in 0..self.len {
            out.push_str(self.get(i));
        }
        out
    }
}

/// The pieces of `text`, owned.
pub(crate) fn owned_pieces(text: &str) -> Vec<String> {
    tokenizer::pieces(text)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// `text` cut at the earliest stop sequence: the kept text, the stop sequence that matched,
/// and how many pieces had to be generated to see it (those of `text` that start before
/// the end of the match). Without a match: `text`, `None`, and all its pieces.
pub(crate) fn apply_stop(
    text: &str,
    stops: &[String],
    include: bool,
) -> (String, Option<String>, usize) {
    let found = stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()).map(|at| (at, s)))
        .min_by_key(|(at, s)| (*at, std::cmp::Reverse(s.len())));
    let Some((at, stop)) = found else {
        return (text.to_owned(), None, tokenizer::pieces(text).len());
    };
    let end = at + stop.len();
    let kept = if include { &text[..end] } else { &text[..at] };
    let mut offset = 0;
    let mut needed = 0;
    for piece in tokenizer::pieces(text) {
        if offset >= end {
            break;
        }
        needed += 1;
        offset += piece.len();
    }
    (kept.to_owned(), Some(stop.clone()), needed)
}

/// A value for the JSON Schema `schema`, built deterministically: its `default`, `const`
/// or first `enum` value if it has one, else by type: `text` for a string, 1 for a number,
/// `true`, `[]`, `null`, and for an object its required properties, filled the same way.
pub(crate) fn fill_schema(schema: &Value, text: &str) -> Value {
    for key in ["default", "const"] {
        if let Some(value) = schema.get(key) {
            return value.clone();
        }
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            return fill_schema(first, text);
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let properties = schema.get("properties");
            let required = schema.get("required").and_then(Value::as_array);
            let object = required
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|name| {
                    let property = properties.and_then(|p| p.get(name)).unwrap_or(&Value::Null);
                    (name.to_owned(), fill_schema(property, text))
                })
                .collect();
            Value::Object(object)
        }
        "integer" | "number" => Value::from(1),
        "boolean" => Value::Bool(true),
        "array" => Value::Array(Vec::new()),
        "null" => Value::Null,
        _ => Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_chatml() {
        let messages = vec![Message::system("Be brief."), Message::user("hi")];
        assert_eq!(
            render(&messages, &[], true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            tokenizer::count(&render(&[Message::user("hi")], &[], true)),
            9
        );
    }

    #[test]
    fn continue_final_message_leaves_the_last_message_open() {
        let messages = vec![Message::user("hi"), Message::assistant("Hel")];
        assert_eq!(
            chat_prompt(&messages, &[], None, Some(true)),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nHel"
        );
        assert_eq!(
            chat_prompt(&messages, &[], None, None),
            render(&messages, &[], true)
        );
        assert_eq!(
            chat_prompt(&messages, &[], Some(false), None),
            render(&messages, &[], false)
        );
    }

    #[test]
    fn stop_sequences_cut_at_the_earliest_match() {
        let text = "one two three four five six";
        let stops = vec!["six".to_owned(), "four".to_owned()];
        let (kept, stop, needed) = apply_stop(text, &stops, false);
        assert_eq!(kept, "one two three ");
        assert_eq!(stop.as_deref(), Some("four"));
        assert_eq!(needed, 4);
        let (kept, _, _) = apply_stop(text, &stops, true);
        assert_eq!(kept, "one two three four");
        assert_eq!(apply_stop(text, &[], false), (text.to_owned(), None, 6));
    }

    #[test]
    fn schemas_are_filled_from_required_properties() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
                "extra": {"type": "string"},
            },
            "required": ["city", "unit", "days"],
        });
        assert_eq!(
            fill_schema(&schema, "Paris"),
            json!({"city": "Paris", "unit": "celsius", "days": 1})
        );
        assert_eq!(fill_schema(&json!({"type": "object"}), "x"), json!({}));
    }

    #[test]
    fn tool_results_are_quoted_with_the_tool_name() {
        let messages: Vec<Message> = serde_json::from_value(json!([
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "22 C"}
        ]))
        .unwrap();
        assert_eq!(
            tool_result_answer(&messages).as_deref(),
            Some("The tool get_weather returned: 22 C")
        );
        assert_eq!(tool_result_answer(&messages[..1]), None);
    }
}
