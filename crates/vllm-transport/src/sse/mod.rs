//! Server-Sent Events decoding (placeholder until the decoder lands).
