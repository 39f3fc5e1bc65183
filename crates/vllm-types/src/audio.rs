//! `/v1/audio/transcriptions`: the transcript of an uploaded audio file, whole or streamed.
//!
//! The request is a `multipart/form-data` upload (the file and form fields), not JSON, so only
//! the responses are modelled here.

use crate::chat::Delta;
use crate::common::{FinishReason, StopReason, Usage};
use crate::macros::model;

model! {
    /// A `/v1/audio/transcriptions` response (`response_format: "json"`, the default).
    ///
    /// ```
    /// use vllm_types::TranscriptionResponse;
    ///
    /// let body = r#"{"text":"Hello there.","usage":{"type":"duration","seconds":3}}"#;
    /// let transcription: TranscriptionResponse = serde_json::from_str(body).unwrap();
    /// assert_eq!(transcription.text, "Hello there.");
    /// assert_eq!(transcription.usage.as_ref().and_then(|u| u.seconds), Some(3));
    /// assert_eq!(serde_json::to_string(&transcription).unwrap(), body);
    /// ```
    pub struct TranscriptionResponse {
        /// The transcript.
        def text: String,
        /// What was transcribed (vLLM: `{"type": "duration", "seconds": …}`).
        opt usage: TranscriptionUsage,
    }
}

model! {
    /// The usage of a transcription: how much audio it took.
    pub struct TranscriptionUsage {
        /// `duration` (vLLM). OpenAI may send `tokens`, whose counts are kept in `extra`.
        def kind: String as "type",
        /// The audio's length, in seconds (vLLM sends a whole number).
        opt seconds: u64,
    }
}

model! {
    /// One chunk of a streamed transcription (`stream=true`): `object` is
    /// `transcription.chunk`.
    ///
    /// With `stream_include_usage`, the last chunk before `[DONE]` has `choices: []` and the
    /// request's `usage`.
    ///
    /// ```
    /// use vllm_types::{FinishReason, TranscriptionChunk};
    ///
    /// let chunk: TranscriptionChunk = serde_json::from_str(
    ///     r#"{"id":"trsc-1","object":"transcription.chunk","created":1,"model":"whisper",
    ///         "choices":[{"delta":{"content":" there."},"finish_reason":"stop","stop_reason":null}]}"#,
    /// ).unwrap();
    /// assert_eq!(chunk.choices[0].delta.content.as_deref(), Some(" there."));
    /// assert_eq!(chunk.choices[0].finish_reason, Some(FinishReason::Stop));
    /// ```
    pub struct TranscriptionChunk {
        /// The transcription's id (the same in every chunk).
        def id: String,
        /// `transcription.chunk`.
        def object: String,
        /// Unix time of creation, in seconds.
        def created: u64,
        /// The model that transcribes.
        def model: String,
        /// The update this chunk carries (empty in the usage chunk).
        each choices: TranscriptionChunkChoice,
        /// Token counts: the usage chunk's, or the running counts on every chunk with
        /// `stream_continuous_usage_stats`.
        opt usage: Usage,
    }
}

model! {
    /// The update of a [`TranscriptionChunk`]. Unlike a chat chunk's choice it has no
    /// `index`: a transcription has one text.
    pub struct TranscriptionChunkChoice {
        /// The text added, as `content`.
        def delta: Delta,
        /// Set in the last chunk of the text (vLLM leaves it out before).
        opt finish_reason: FinishReason,
        /// vLLM: the stop string or token id that ended it (`null` in the last chunk).
        opt stop_reason: StopReason,
    }
}
