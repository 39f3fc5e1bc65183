//! The request parameters that chat completions and legacy completions share.

/// Declares a request model with the parameters shared by `/v1/chat/completions` and
/// `/v1/completions` appended to the fields given.
macro_rules! with_sampling_params {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $($fields:tt)* }
    ) => {
        $crate::macros::model! {
            $(#[$meta])*
            pub struct $name {
                $($fields)*
                /// The model to use (an id from `/v1/models`). vLLM serves its only model when
                /// this is left out.
                opt model: String,
                /// Maximum number of tokens to generate.
                opt max_tokens: u32,
                /// Sampling temperature, 0 to 2; 0 is greedy.
                opt temperature: f64,
                /// Nucleus sampling: sample from the smallest set of tokens whose probability
                /// adds up to `top_p`.
                opt top_p: f64,
                /// Number of choices to generate.
                opt n: u32,
                /// Stop generating at any of these sequences.
                opt stop: $crate::Stop,
                /// Stream the response as server-sent events.
                opt stream: bool,
                /// Options for streamed responses (`include_usage`).
                opt stream_options: $crate::StreamOptions,
                /// Penalise tokens by whether they appeared so far, -2 to 2.
                opt presence_penalty: f64,
                /// Penalise tokens by how often they appeared so far, -2 to 2.
                opt frequency_penalty: f64,
                /// Bias added to the logits of token ids (keys are token ids as strings).
                opt logit_bias: std::collections::BTreeMap<String, f64>,
                /// Random seed, for reproducible sampling.
                opt seed: i64,
                /// An end-user id, for abuse monitoring.
                opt user: String,
                /// Output format constraint.
                opt response_format: $crate::ResponseFormat,
                /// vLLM: number of candidate sequences generated, of which `n` are returned.
                opt best_of: u32,
                /// vLLM: use beam search.
                opt use_beam_search: bool,
                /// vLLM: sample from the `top_k` most likely tokens (-1 or 0: all).
                opt top_k: i32,
                /// vLLM: minimum probability of a token, relative to the most likely one.
                opt min_p: f64,
                /// vLLM: penalty on repeated tokens (1.0 = none, above 1 discourages repeats).
                opt repetition_penalty: f64,
                /// vLLM: length penalty for beam search.
                opt length_penalty: f64,
                /// vLLM: stop at any of these token ids.
                opt stop_token_ids: Vec<u32>,
                /// vLLM: keep the matched stop string in the output.
                opt include_stop_str_in_output: bool,
                /// vLLM: keep generating past the end-of-sequence token.
                opt ignore_eos: bool,
                /// vLLM: minimum number of tokens to generate before a stop may end the output.
                opt min_tokens: u32,
                /// vLLM: leave special tokens out of the output text.
                opt skip_special_tokens: bool,
                /// vLLM: put spaces between special tokens in the output text.
                opt spaces_between_special_tokens: bool,
                /// vLLM: keep only the last N prompt tokens (-1: as many as the model allows).
                opt truncate_prompt_tokens: i32,
                /// vLLM: return the log probabilities of this many prompt tokens per position.
                opt prompt_logprobs: u32,
                /// vLLM: only these token ids may be generated.
                opt allowed_token_ids: Vec<u32>,
                /// vLLM: words that may not be generated.
                opt bad_words: Vec<String>,
                /// vLLM: constrained decoding (JSON schema, regex, choice, grammar, …).
                opt structured_outputs: $crate::StructuredOutputs,
                /// vLLM (older releases): JSON-schema constrained decoding.
                opt guided_json: serde_json::Value,
                /// vLLM (older releases): regex constrained decoding.
                opt guided_regex: String,
                /// vLLM (older releases): choice constrained decoding.
                opt guided_choice: Vec<String>,
                /// vLLM (older releases): grammar constrained decoding.
                opt guided_grammar: String,
                /// vLLM (older releases): the constrained decoding backend.
                opt guided_decoding_backend: String,
                /// vLLM (older releases): whitespace pattern for JSON decoding.
                opt guided_whitespace_pattern: String,
                /// vLLM: scheduling priority (lower runs earlier; needs priority scheduling).
                opt priority: i32,
                /// vLLM: the id the server uses for this request (logs, metrics, responses).
                opt request_id: String,
                /// vLLM: represent tokens as `token_id:N` strings in logprobs.
                opt return_tokens_as_token_ids: bool,
                /// vLLM: return prompt and generated token ids in the response.
                opt return_token_ids: bool,
                /// vLLM: salt for the prefix cache, so requests only share cache with the same salt.
                opt cache_salt: String,
                /// vLLM: parameters for disaggregated prefill (KV transfer).
                opt kv_transfer_params: $crate::JsonObject,
                /// vLLM: extra arguments for custom extensions.
                opt vllm_xargs: $crate::JsonObject,
                /// vLLM: add special tokens (such as BOS) to the prompt.
                opt add_special_tokens: bool,
                /// vLLM: echo the prompt (or the last message) before the output.
                opt echo: bool,
                /// vLLM: logits processors to apply (names or objects).
                opt logits_processors: Vec<serde_json::Value>,
            }
        }
    };
}

pub(crate) use with_sampling_params;
