//! `/v1/models`: the models (and LoRA adapters) a server serves.

use serde_json::Value;

use crate::macros::model;

model! {
    /// The answer of `GET /v1/models`.
    pub struct ModelList {
        /// `list`.
        def object: String,
        /// The models.
        def data: Vec<Model>,
    }
}

model! {
    /// A model or LoRA adapter the server serves.
    pub struct Model {
        /// The id to send as `model`.
        req id: String,
        /// `model`.
        def object: String,
        /// Unix time of creation, in seconds.
        opt created: u64,
        /// The owner (vLLM: `vllm`).
        opt owned_by: String,
        /// vLLM: the base model's path or name.
        opt root: String,
        /// vLLM: for a LoRA adapter, the base model's id.
        opt parent: String,
        /// vLLM: the context length, prompt plus output tokens.
        opt max_model_len: u32,
        /// vLLM: permissions (informational).
        opt permission: Vec<Value>,
    }
}

impl ModelList {
    /// The model with id `id`.
    pub fn get(&self, id: &str) -> Option<&Model> {
        self.data.iter().find(|m| m.id == id)
    }
}
