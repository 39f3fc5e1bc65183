//! `/version`.

use crate::macros::model;

model! {
    /// The answer of `GET /version`.
    pub struct VersionResponse {
        /// The server's vLLM version.
        def version: String,
    }
}
