//! `/v1/chat/completions`: messages, tools, the request, the response and stream chunks.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::{ChoiceLogprobs, FinishReason, JsonObject, PromptLogprobs, StopReason, Usage};
use crate::macros::{model, string_enum};
use crate::sampling::with_sampling_params;

string_enum! {
    /// The author of a message.
    pub enum Role {
        /// The model's replies (and its tool calls).
        Assistant = "assistant",
        /// The user's input.
        User = "user",
        /// Instructions that set the assistant's behaviour.
        System = "system",
        /// Instructions from the developer (OpenAI's newer name for `system`).
        Developer = "developer",
        /// A tool's result, answering a tool call.
        Tool = "tool",
        /// A function's result (deprecated OpenAI function calling).
        Function = "function",
    }
}

/// A message body: a string, or a list of content parts (text, images, audio, video, files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content parts, for multimodal input.
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// The text of the body: the string, or the text parts joined (other parts skipped).
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            MessageContent::Text(s) => Cow::Borrowed(s),
            MessageContent::Parts(parts) => {
                let mut texts = parts.iter().filter_map(|p| p.text.as_deref());
                match (texts.next(), texts.next()) {
                    (None, _) => Cow::Borrowed(""),
                    (Some(one), None) => Cow::Borrowed(one),
                    (Some(first), Some(second)) => {
                        let mut all = String::from(first);
                        all.push_str(second);
                        texts.for_each(|t| all.push_str(t));
                        Cow::Owned(all)
                    }
                }
            }
        }
    }
}

impl Default for MessageContent {
    fn default() -> Self {
        MessageContent::Text(String::new())
    }
}

impl From<&str> for MessageContent {
    fn from(s: &str) -> Self {
        MessageContent::Text(s.to_owned())
    }
}

impl From<String> for MessageContent {
    fn from(s: String) -> Self {
        MessageContent::Text(s)
    }
}

impl From<Vec<ContentPart>> for MessageContent {
    fn from(parts: Vec<ContentPart>) -> Self {
        MessageContent::Parts(parts)
    }
}

model! {
    /// One part of a multimodal message body. `kind` (the `type` member) says which of the
    /// other fields is set; a part of a type this crate does not model keeps its members in
    /// `extra`.
    ///
    /// ```
    /// use vllm_types::{ContentPart, Message};
    ///
    /// let msg = Message::user_parts(vec![
    ///     ContentPart::text("What is in this image?"),
    ///     ContentPart::image_url("https://example.com/cat.png"),
    /// ]);
    /// assert_eq!(
    ///     serde_json::to_string(&msg).unwrap(),
    ///     r#"{"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}"#
    /// );
    /// ```
    pub struct ContentPart {
        /// `text`, `image_url`, `input_audio`, `video_url`, `audio_url`, `file`, ….
        req kind: String as "type",
        /// The text, for `text` parts.
        opt text: String,
        /// The image, for `image_url` parts.
        opt image_url: ImageUrl,
        /// The audio, for `input_audio` parts.
        opt input_audio: InputAudio,
        /// The audio URL, for vLLM's `audio_url` parts.
        opt audio_url: MediaUrl,
        /// The video, for vLLM's `video_url` parts.
        opt video_url: MediaUrl,
        /// The file, for `file` parts.
        opt file: FileInput,
    }
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            kind: "text".into(),
            text: Some(text.into()),
            ..Self::default()
        }
    }

    /// An image part, from an `https://` or `data:image/...;base64,` URL.
    pub fn image_url(url: impl Into<String>) -> Self {
        Self {
            kind: "image_url".into(),
            image_url: Some(ImageUrl {
                url: url.into(),
                ..ImageUrl::default()
            }),
            ..Self::default()
        }
    }

    /// An audio part from base64 data in `format` (`wav`, `mp3`).
    pub fn input_audio(data: impl Into<String>, format: impl Into<String>) -> Self {
        Self {
            kind: "input_audio".into(),
            input_audio: Some(InputAudio {
                data: data.into(),
                format: format.into(),
                ..InputAudio::default()
            }),
            ..Self::default()
        }
    }

    /// An audio part from a URL (vLLM).
    pub fn audio_url(url: impl Into<String>) -> Self {
        Self {
            kind: "audio_url".into(),
            audio_url: Some(MediaUrl::new(url)),
            ..Self::default()
        }
    }

    /// A video part from a URL (vLLM).
    pub fn video_url(url: impl Into<String>) -> Self {
        Self {
            kind: "video_url".into(),
            video_url: Some(MediaUrl::new(url)),
            ..Self::default()
        }
    }

    /// A file part from base64 `file_data` and its name.
    pub fn file(filename: impl Into<String>, file_data: impl Into<String>) -> Self {
        Self {
            kind: "file".into(),
            file: Some(FileInput {
                filename: Some(filename.into()),
                file_data: Some(file_data.into()),
                ..FileInput::default()
            }),
            ..Self::default()
        }
    }
}

model! {
    /// An image reference in an `image_url` part.
    pub struct ImageUrl {
        /// `https://…` or `data:image/png;base64,…`.
        req url: String,
        /// `auto`, `low` or `high`.
        opt detail: String,
    }
}

model! {
    /// Inline audio in an `input_audio` part.
    pub struct InputAudio {
        /// Base64-encoded audio.
        req data: String,
        /// `wav`, `mp3`, ….
        req format: String,
    }
}

model! {
    /// A media URL in vLLM's `video_url` / `audio_url` parts.
    pub struct MediaUrl {
        /// `https://…` or a `data:` URL.
        req url: String,
    }
}

impl MediaUrl {
    /// A URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

model! {
    /// A file in a `file` part.
    pub struct FileInput {
        /// Base64-encoded file content.
        opt file_data: String,
        /// An uploaded file's id.
        opt file_id: String,
        /// The file name.
        opt filename: String,
    }
}

model! {
    /// A message of the conversation, of any role.
    ///
    /// ```
    /// use vllm_types::Message;
    ///
    /// let history = vec![
    ///     Message::system("You are terse."),
    ///     Message::user("Hello!"),
    /// ];
    /// assert_eq!(
    ///     serde_json::to_string(&history).unwrap(),
    ///     r#"[{"role":"system","content":"You are terse."},{"role":"user","content":"Hello!"}]"#
    /// );
    /// ```
    pub struct Message {
        /// Who wrote it.
        req role: Role,
        /// The body; `None` for an assistant message that only calls tools.
        opt content: MessageContent,
        /// An optional name for the participant.
        opt name: String,
        /// The tool calls of an assistant message.
        opt tool_calls: Vec<ToolCall>,
        /// The call a `tool` message answers.
        opt tool_call_id: String,
        /// An assistant message's reasoning, for chat templates that replay it.
        opt reasoning: String,
    }
}

impl Message {
    fn with_text(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(MessageContent::Text(content.into())),
            ..Self::default()
        }
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::with_text(Role::System, content)
    }

    /// A `developer` message.
    pub fn developer(content: impl Into<String>) -> Self {
        Self::with_text(Role::Developer, content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::with_text(Role::User, content)
    }

    /// A `user` message with content parts (text, images, audio, …).
    pub fn user_parts(parts: Vec<ContentPart>) -> Self {
        Self {
            role: Role::User,
            content: Some(MessageContent::Parts(parts)),
            ..Self::default()
        }
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::with_text(Role::Assistant, content)
    }

    /// An `assistant` message that calls tools (no content).
    pub fn assistant_tool_calls(tool_calls: Vec<ToolCall>) -> Self {
        Self {
            role: Role::Assistant,
            tool_calls: Some(tool_calls),
            ..Self::default()
        }
    }

    /// A `tool` message: the result of the call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: Some(MessageContent::Text(content.into())),
            tool_call_id: Some(tool_call_id.into()),
            ..Self::default()
        }
    }
}

model! {
    /// A tool the model may call.
    ///
    /// ```
    /// use vllm_types::Tool;
    /// use serde_json::json;
    ///
    /// let tool = Tool::function(
    ///     "get_weather",
    ///     "Get the weather for a city",
    ///     json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    /// );
    /// assert_eq!(tool.function.name, "get_weather");
    /// ```
    pub struct Tool {
        /// Always `function`.
        def kind: String as "type",
        /// The function.
        req function: FunctionDefinition,
    }
}

impl Tool {
    /// A function tool with a description and a JSON Schema for its arguments.
    pub fn function(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: Value,
    ) -> Self {
        Self {
            kind: "function".into(),
            function: FunctionDefinition {
                name: name.into(),
                description: Some(description.into()),
                parameters: Some(parameters),
                ..FunctionDefinition::default()
            },
            ..Self::default()
        }
    }

    /// The same tool with `strict: true` (vLLM then constrains the arguments to the schema).
    pub fn strict(mut self) -> Self {
        self.function.strict = Some(true);
        self
    }
}

model! {
    /// A function the model may call.
    pub struct FunctionDefinition {
        /// The function's name.
        req name: String,
        /// What it does, for the model.
        opt description: String,
        /// JSON Schema of its arguments.
        opt parameters: Value,
        /// Constrain the arguments to the schema exactly.
        opt strict: bool,
    }
}

string_enum! {
    /// How the model may use tools, as a word.
    pub enum ToolChoiceMode {
        /// The model decides.
        Auto = "auto",
        /// The model must call at least one tool.
        Required = "required",
        /// The model must not call tools.
        None = "none",
    }
}

/// How the model may use tools: `"auto"`, `"required"`, `"none"`, or a named function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `auto`, `required` or `none`.
    Mode(ToolChoiceMode),
    /// `{"type": "function", "function": {"name": …}}`: call this function.
    Named(NamedToolChoice),
}

impl ToolChoice {
    /// `"auto"`.
    pub fn auto() -> Self {
        ToolChoice::Mode(ToolChoiceMode::Auto)
    }

    /// `"required"`.
    pub fn required() -> Self {
        ToolChoice::Mode(ToolChoiceMode::Required)
    }

    /// `"none"`.
    pub fn none() -> Self {
        ToolChoice::Mode(ToolChoiceMode::None)
    }

    /// Call the function `name`.
    pub fn function(name: impl Into<String>) -> Self {
        ToolChoice::Named(NamedToolChoice {
            kind: "function".into(),
            function: FunctionName {
                name: name.into(),
                ..FunctionName::default()
            },
            ..NamedToolChoice::default()
        })
    }
}

model! {
    /// A named function in `tool_choice`.
    pub struct NamedToolChoice {
        /// Always `function`.
        def kind: String as "type",
        /// The function to call.
        req function: FunctionName,
    }
}

model! {
    /// A function's name.
    pub struct FunctionName {
        /// The name.
        req name: String,
    }
}

model! {
    /// A complete tool call made by the model.
    pub struct ToolCall {
        /// The call's id (vLLM: `chatcmpl-tool-…`), quoted by the `tool` message answering it.
        def id: String,
        /// Always `function`.
        def kind: String as "type",
        /// The function and its arguments.
        def function: FunctionCall,
    }
}

impl ToolCall {
    /// A function call with its arguments as JSON text.
    pub fn function(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            kind: "function".into(),
            function: FunctionCall {
                name: name.into(),
                arguments: arguments.into(),
                ..FunctionCall::default()
            },
            ..Self::default()
        }
    }
}

model! {
    /// The function of a tool call.
    pub struct FunctionCall {
        /// The function's name.
        def name: String,
        /// The arguments, as JSON text (as generated: it may not be valid JSON).
        def arguments: String,
    }
}

model! {
    /// A piece of a tool call in a stream chunk. The first piece of a call usually carries
    /// `id`, `type` and the name; later pieces carry argument text. Pieces of one call share
    /// `index`.
    pub struct ToolCallDelta {
        /// Which call of the choice this piece belongs to.
        def index: u32,
        /// The call's id, when this piece starts the call.
        opt id: String,
        /// `function`, when this piece starts the call.
        opt kind: String as "type",
        /// The name and/or a piece of the arguments.
        opt function: FunctionCallDelta,
    }
}

model! {
    /// A piece of a function call in a stream chunk.
    pub struct FunctionCallDelta {
        /// The function's name (usually once, in the first piece).
        opt name: String,
        /// A piece of the arguments' JSON text.
        opt arguments: String,
    }
}

string_enum! {
    /// How much the model should reason (`reasoning_effort`).
    pub enum ReasoningEffort {
        /// Moderate reasoning.
        Medium = "medium",
        /// No reasoning.
        None = "none",
        /// Very little reasoning.
        Minimal = "minimal",
        /// Little reasoning.
        Low = "low",
        /// Much reasoning.
        High = "high",
    }
}

with_sampling_params! {
    /// A `/v1/chat/completions` request: every OpenAI field and vLLM's extra parameters.
    ///
    /// Unset fields are not sent. Parameters this crate does not model go into `extra`.
    ///
    /// ```
    /// use vllm_types::{ChatCompletionRequest, Message};
    ///
    /// let request = ChatCompletionRequest {
    ///     temperature: Some(0.0),
    ///     top_k: Some(20),
    ///     ..ChatCompletionRequest::new("smollm2-135m", vec![Message::user("Hello!")])
    /// };
    /// assert_eq!(
    ///     serde_json::to_string(&request).unwrap(),
    ///     r#"{"messages":[{"role":"user","content":"Hello!"}],"model":"smollm2-135m","temperature":0.0,"top_k":20}"#
    /// );
    /// ```
    pub struct ChatCompletionRequest {
        /// The conversation so far.
        req messages: Vec<Message>,
        /// Maximum tokens to generate, reasoning included (OpenAI's newer name for `max_tokens`).
        opt max_completion_tokens: u32,
        /// Return log probabilities of the generated tokens.
        opt logprobs: bool,
        /// With `logprobs`: how many most likely alternatives to return per position.
        opt top_logprobs: u32,
        /// Tools the model may call.
        opt tools: Vec<Tool>,
        /// How the model may use `tools`.
        opt tool_choice: ToolChoice,
        /// Whether the model may call several tools at once.
        opt parallel_tool_calls: bool,
        /// How much a reasoning model should think.
        opt reasoning_effort: ReasoningEffort,
        /// vLLM: include the reasoning in the response (default true).
        opt include_reasoning: bool,
        /// vLLM: cap on reasoning tokens for thinking models that support it.
        opt thinking_token_budget: u32,
        /// vLLM: add the generation prompt (the assistant turn's header) to the template output.
        opt add_generation_prompt: bool,
        /// vLLM: continue the last (assistant) message instead of starting a new one.
        opt continue_final_message: bool,
        /// vLLM: documents for retrieval-augmented chat templates.
        opt documents: Vec<JsonObject>,
        /// vLLM: a Jinja chat template to use instead of the model's.
        opt chat_template: String,
        /// vLLM: extra variables for the chat template (e.g. `enable_thinking`).
        opt chat_template_kwargs: JsonObject,
        /// vLLM: arguments for the multimodal processor.
        opt mm_processor_kwargs: JsonObject,
        /// vLLM: arguments for loading media.
        opt media_io_kwargs: JsonObject,
        /// OpenAI: key/value metadata stored with the request.
        opt metadata: JsonObject,
        /// OpenAI: store the completion.
        opt store: bool,
        /// OpenAI: the processing tier.
        opt service_tier: String,
        /// OpenAI: output modalities (`text`, `audio`).
        opt modalities: Vec<String>,
        /// OpenAI: audio output parameters.
        opt audio: Value,
        /// OpenAI: predicted output, to speed up generation.
        opt prediction: Value,
        /// OpenAI: web search options.
        opt web_search_options: Value,
        /// OpenAI: response verbosity (`low`, `medium`, `high`).
        opt verbosity: String,
        /// OpenAI: a stable id of the end user, for safety monitoring.
        opt safety_identifier: String,
        /// OpenAI: a key for prompt caching.
        opt prompt_cache_key: String,
        /// OpenAI (deprecated): functions the model may call.
        opt functions: Vec<Value>,
        /// OpenAI (deprecated): how the model may call `functions`.
        opt function_call: Value,
    }
}

impl ChatCompletionRequest {
    /// A request for `model` with `messages`; every other field unset.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: Some(model.into()),
            messages,
            ..Self::default()
        }
    }
}

model! {
    /// A `/v1/chat/completions` response (not streamed).
    pub struct ChatCompletion {
        /// The completion's id.
        def id: String,
        /// `chat.completion`.
        def object: String,
        /// Unix time of creation, in seconds.
        def created: u64,
        /// The model that answered.
        def model: String,
        /// The generated choices (`n` of them).
        each choices: Choice,
        /// Token counts.
        opt usage: Usage,
        /// The backend configuration's fingerprint.
        opt system_fingerprint: String,
        /// The processing tier.
        opt service_tier: String,
        /// vLLM: log probabilities of the prompt tokens (with `prompt_logprobs`).
        opt prompt_logprobs: PromptLogprobs,
        /// vLLM: the prompt's token ids (with `return_token_ids`).
        opt prompt_token_ids: Vec<u32>,
        /// vLLM: the prompt as text, next to `prompt_token_ids` (vLLM 0.32 sends `null` when
        /// it does not return it).
        opt prompt_text: String,
        /// vLLM: KV transfer parameters (disaggregated prefill).
        opt kv_transfer_params: JsonObject,
        /// vLLM: encoder-cache transfer parameters (encoder-cache disaggregated serving;
        /// vLLM 0.32 sends `null` otherwise).
        opt ec_transfer_params: JsonObject,
    }
}

impl ChatCompletion {
    /// The first choice's message, if there is a choice.
    pub fn first_message(&self) -> Option<&ResponseMessage> {
        self.choices.first().map(|c| &c.message)
    }
}

model! {
    /// One generated answer of a [`ChatCompletion`].
    pub struct Choice {
        /// Position among the choices.
        def index: u32,
        /// The generated message.
        def message: ResponseMessage,
        /// Log probabilities (with `logprobs`).
        opt logprobs: ChoiceLogprobs,
        /// Why generation stopped.
        opt finish_reason: FinishReason,
        /// vLLM: the stop string or token id that ended it, if any.
        opt stop_reason: StopReason,
        /// vLLM: the generated token ids (with `return_token_ids`).
        opt token_ids: Vec<u32>,
    }
}

model! {
    /// The message of a [`Choice`].
    pub struct ResponseMessage {
        /// `assistant`.
        def role: Role,
        /// The generated text, if any.
        opt content: String,
        /// The reasoning of a thinking model (vLLM's current name).
        opt reasoning: String,
        /// The reasoning, under its older name (older vLLM, llama.cpp's server).
        opt reasoning_content: String,
        /// Tool calls the model made.
        opt tool_calls: Vec<ToolCall>,
        /// A refusal message.
        opt refusal: String,
        /// OpenAI: annotations (citations).
        opt annotations: Vec<Value>,
        /// OpenAI: generated audio.
        opt audio: Value,
        /// OpenAI (deprecated): a function call.
        opt function_call: Value,
    }
}

impl ResponseMessage {
    /// The reasoning, from `reasoning` or else `reasoning_content`.
    pub fn reasoning_text(&self) -> Option<&str> {
        self.reasoning
            .as_deref()
            .or(self.reasoning_content.as_deref())
    }

    /// The tool calls (empty when none).
    pub fn tool_calls(&self) -> &[ToolCall] {
        self.tool_calls.as_deref().unwrap_or_default()
    }

    /// The message to append to the conversation for the next turn: the role, the content
    /// and the tool calls (reasoning is left out, as chat templates expect).
    pub fn to_message(&self) -> Message {
        Message {
            role: self.role.clone(),
            content: self.content.clone().map(MessageContent::Text),
            tool_calls: self.tool_calls.clone().filter(|calls| !calls.is_empty()),
            ..Message::default()
        }
    }
}

model! {
    /// One chunk of a streamed `/v1/chat/completions` response.
    ///
    /// With `stream_options.include_usage`, the last chunk before `[DONE]` has `choices: []`
    /// and the request's `usage`.
    pub struct ChatCompletionChunk {
        /// The completion's id (the same in every chunk).
        def id: String,
        /// `chat.completion.chunk`.
        def object: String,
        /// Unix time of creation, in seconds.
        def created: u64,
        /// The model that answers.
        def model: String,
        /// The choices this chunk updates (empty in the usage chunk).
        each choices: ChunkChoice,
        /// Token counts (the usage chunk, or every chunk with `continuous_usage_stats`).
        opt usage: Usage,
        /// The backend configuration's fingerprint.
        opt system_fingerprint: String,
        /// The processing tier.
        opt service_tier: String,
        /// vLLM: the prompt's token ids (first chunk, with `return_token_ids`).
        opt prompt_token_ids: Vec<u32>,
        /// vLLM: the prompt as text, next to `prompt_token_ids` (vLLM 0.32 sends `null` in the
        /// first chunk of each choice when it does not return it).
        opt prompt_text: String,
        /// vLLM: KV transfer parameters.
        opt kv_transfer_params: JsonObject,
    }
}

model! {
    /// A choice's update in a [`ChatCompletionChunk`].
    pub struct ChunkChoice {
        /// Which choice this updates.
        def index: u32,
        /// What was added.
        def delta: Delta,
        /// Log probabilities of the added tokens.
        opt logprobs: ChoiceLogprobs,
        /// Set in the choice's last chunk.
        opt finish_reason: FinishReason,
        /// vLLM: the stop string or token id that ended it.
        opt stop_reason: StopReason,
        /// vLLM: the added token ids (with `return_token_ids`).
        opt token_ids: Vec<u32>,
    }
}

model! {
    /// What a chunk adds to a choice's message.
    pub struct Delta {
        /// `assistant`, in the first chunk.
        opt role: Role,
        /// Generated text.
        opt content: String,
        /// Reasoning text (vLLM's current name).
        opt reasoning: String,
        /// Reasoning text under its older name.
        opt reasoning_content: String,
        /// Pieces of tool calls.
        opt tool_calls: Vec<ToolCallDelta>,
        /// Refusal text.
        opt refusal: String,
    }
}

impl Delta {
    /// The reasoning text, from `reasoning` or else `reasoning_content`.
    pub fn reasoning_text(&self) -> Option<&str> {
        self.reasoning
            .as_deref()
            .or(self.reasoning_content.as_deref())
    }
}
