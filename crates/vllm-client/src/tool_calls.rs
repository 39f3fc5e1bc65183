//! [`ToolCall`], and the accumulator that assembles streamed tool-call pieces into calls.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::VllmError;

/// A complete tool call made by the model.
///
/// ```
/// use vllm_client::{ToolCall, json};
///
/// let call = ToolCall {
///     id: "chatcmpl-tool-1".into(),
///     name: "get_weather".into(),
///     arguments: r#"{"city": "Paris"}"#.into(),
/// };
/// assert_eq!(call.parse_args().unwrap()["city"], "Paris");
///
/// // The message that answers it, for the next turn.
/// assert_eq!(
///     call.result("22 C and sunny"),
///     json!({"role": "tool", "tool_call_id": "chatcmpl-tool-1", "content": "22 C and sunny"})
/// );
/// assert_eq!(
///     call.result(json!({"temp": 22}))["content"],
///     r#"{"temp":22}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolCall {
    /// The call's id, quoted by the `tool` message that answers it. Empty if the server sent
    /// none.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments as JSON text, exactly as generated (it may not be valid JSON: use
    /// [`parse_args`](Self::parse_args) to find out).
    pub arguments: String,
}

impl ToolCall {
    /// The arguments parsed as JSON. Empty arguments parse as `{}`.
    pub fn parse_args(&self) -> Result<Value, VllmError> {
        self.parse_args_as()
    }

    /// The arguments parsed into `T`. Empty arguments parse as `{}`.
    pub fn parse_args_as<T: DeserializeOwned>(&self) -> Result<T, VllmError> {
        let text = if self.arguments.trim().is_empty() {
            "{}"
        } else {
            &self.arguments
        };
        serde_json::from_str(text).map_err(|e| {
            VllmError::decode(
                format!("the arguments of tool call `{}` ({})", self.name, self.id),
                text,
                e,
            )
        })
    }

    /// The `tool` message answering this call: `{"role": "tool", "tool_call_id", "content"}`.
    /// A string `result` is sent as it is; any other JSON value is sent as its JSON text.
    pub fn result(&self, result: impl Into<Value>) -> Value {
        let content = match result.into() {
            Value::String(s) => s,
            other => other.to_string(),
        };
        serde_json::json!({"role": "tool", "tool_call_id": self.id, "content": content})
    }

    /// The call in the wire shape of an assistant message's `tool_calls`.
    pub fn to_value(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        })
    }
}

impl From<vllm_types::ToolCall> for ToolCall {
    fn from(call: vllm_types::ToolCall) -> Self {
        ToolCall {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        }
    }
}

impl From<&ToolCall> for vllm_types::ToolCall {
    fn from(call: &ToolCall) -> Self {
        vllm_types::ToolCall::function(call.id.clone(), call.name.clone(), call.arguments.clone())
    }
}

/// A call being assembled from stream pieces.
#[derive(Debug)]
struct PendingCall {
    /// The `index` of the pieces.
    index: u32,
    call: ToolCall,
}

/// Assembles the tool-call pieces of one choice's stream into complete calls.
///
/// Handles the shapes vLLM really sends: the id and type first and the name in a later piece
/// (Hermes parser); calls interleaved by `index`; argument text in the finish chunk; and a new
/// call reported at an `index` that already had one, under a different id. Each call is
/// returned once, complete: when its choice finishes, when a new id replaces it at its
/// index, or when the stream starts another call and this one's arguments are complete JSON.
#[derive(Debug, Default)]
pub(crate) struct ToolCallAccumulator {
    pending: Vec<PendingCall>,
}

impl ToolCallAccumulator {
    /// Adds one piece; complete calls it reveals are pushed to `done`.
    pub(crate) fn push(&mut self, delta: &vllm_types::ToolCallDelta, done: &mut Vec<ToolCall>) {
        let name = delta.function.as_ref().and_then(|f| f.name.as_deref());
        let arguments = delta.function.as_ref().and_then(|f| f.arguments.as_deref());
        let id = delta.id.as_deref().filter(|id| !id.is_empty());

        let slot = self.pending.iter().position(|p| p.index == delta.index);
        // A different id at an index in use: the call there is finished, this is a new one.
        let replaces = match (slot, id) {
            (Some(i), Some(id)) => {
                !self.pending[i].call.id.is_empty() && self.pending[i].call.id != id
            }
            _ => false,
        };
        if replaces {
            if let Some(i) = slot {
                done.push(self.pending.remove(i).call);
            }
        }
        let starts_new = replaces || slot.is_none();
        if starts_new {
            // Another call starts: earlier calls whose arguments are complete JSON are done.
            let mut i = 0;
            while i < self.pending.len() {
                if is_complete_json(&self.pending[i].call.arguments) {
                    done.push(self.pending.remove(i).call);
                } else {
                    i += 1;
                }
            }
            self.pending.push(PendingCall {
                index: delta.index,
                call: ToolCall::default(),
            });
        }
        let Some(pending) = self.pending.iter_mut().find(|p| p.index == delta.index) else {
            return;
        };
        if let Some(id) = id {
            if pending.call.id.is_empty() {
                pending.call.id = id.to_owned();
            }
        }
        if let Some(name) = name {
            // Names arrive whole; some servers repeat the name in later pieces.
            if pending.call.name.is_empty() {
                pending.call.name = name.to_owned();
            } else if pending.call.name != name {
                pending.call.name.push_str(name);
            }
        }
        if let Some(arguments) = arguments {
            pending.call.arguments.push_str(arguments);
        }
    }

    /// The choice finished (or the stream ended): every call still open is complete.
    pub(crate) fn finish(&mut self, done: &mut Vec<ToolCall>) {
        self.pending.sort_by_key(|p| p.index);
        done.extend(self.pending.drain(..).map(|p| p.call));
    }

    /// Whether any call is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Whether `text` is one complete JSON value (so no more argument text can follow).
fn is_complete_json(text: &str) -> bool {
    !text.trim().is_empty() && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vllm_types::{FunctionCallDelta, ToolCallDelta};

    fn delta(
        index: u32,
        id: Option<&str>,
        name: Option<&str>,
        args: Option<&str>,
    ) -> ToolCallDelta {
        ToolCallDelta {
            index,
            id: id.map(Into::into),
            kind: id.map(|_| "function".into()),
            function: (name.is_some() || args.is_some()).then(|| FunctionCallDelta {
                name: name.map(Into::into),
                arguments: args.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn run(deltas: &[ToolCallDelta]) -> (Vec<ToolCall>, Vec<ToolCall>) {
        let mut acc = ToolCallAccumulator::default();
        let mut early = Vec::new();
        for d in deltas {
            acc.push(d, &mut early);
        }
        let mut at_finish = Vec::new();
        acc.finish(&mut at_finish);
        (early, at_finish)
    }

    fn call(id: &str, name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: args.into(),
        }
    }

    #[test]
    fn id_first_and_name_in_a_later_piece() {
        let (early, done) = run(&[
            delta(0, Some("call_a"), None, None),
            delta(0, None, Some("get_weather"), None),
            delta(0, None, None, Some("{\"city\":")),
            delta(0, None, None, Some(" \"Paris\"}")),
        ]);
        assert!(early.is_empty());
        assert_eq!(
            done,
            vec![call("call_a", "get_weather", "{\"city\": \"Paris\"}")]
        );
    }

    #[test]
    fn parallel_calls_interleaved_by_index() {
        let (early, done) = run(&[
            delta(0, Some("a"), Some("f"), None),
            delta(1, Some("b"), Some("g"), None),
            delta(0, None, None, Some("{\"x\":")),
            delta(1, None, None, Some("{\"y\":")),
            delta(0, None, None, Some("1}")),
            delta(1, None, None, Some("2}")),
        ]);
        assert!(
            early.is_empty(),
            "no call is complete before its arguments are"
        );
        assert_eq!(
            done,
            vec![call("a", "f", "{\"x\":1}"), call("b", "g", "{\"y\":2}")]
        );
    }

    #[test]
    fn sequential_calls_complete_when_the_next_starts() {
        let (early, done) = run(&[
            delta(0, Some("a"), Some("f"), Some("{}")),
            delta(1, Some("b"), Some("g"), Some("{\"y\"")),
            delta(1, None, None, Some(":2}")),
        ]);
        assert_eq!(early, vec![call("a", "f", "{}")]);
        assert_eq!(done, vec![call("b", "g", "{\"y\":2}")]);
    }

    #[test]
    fn a_new_id_at_the_same_index_is_a_new_call() {
        let (early, done) = run(&[
            delta(0, Some("a"), Some("f"), Some("{\"n\":1}")),
            delta(0, Some("b"), Some("f"), Some("{\"n\":2}")),
        ]);
        assert_eq!(early, vec![call("a", "f", "{\"n\":1}")]);
        assert_eq!(done, vec![call("b", "f", "{\"n\":2}")]);
    }

    #[test]
    fn arguments_in_the_finish_chunk_are_kept() {
        let mut acc = ToolCallAccumulator::default();
        let mut out = Vec::new();
        acc.push(&delta(0, Some("a"), Some("f"), None), &mut out);
        acc.push(&delta(0, None, None, Some("{\"all\": true}")), &mut out);
        acc.finish(&mut out);
        assert_eq!(out, vec![call("a", "f", "{\"all\": true}")]);
        assert!(acc.is_empty());
    }

    #[test]
    fn parse_args_reports_invalid_json_with_the_call_named() {
        let bad = call("id1", "f", "{\"x\": ");
        let err = bad.parse_args().unwrap_err();
        assert!(err.to_string().contains("tool call `f`"), "{err}");
        assert_eq!(
            call("i", "f", "").parse_args().unwrap(),
            serde_json::json!({})
        );
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct Args {
            x: u32,
        }
        assert_eq!(
            call("i", "f", "{\"x\": 3}")
                .parse_args_as::<Args>()
                .unwrap(),
            Args { x: 3 }
        );
    }
}
