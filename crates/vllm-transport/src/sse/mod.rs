//! Server-Sent Events decoding: bytes in, events out, no I/O.
//!
//! [`Decoder`] implements the [WHATWG event-stream parsing rules] as a pure state
//! machine. Feed it bytes as they arrive from the network, in pieces of any size,
//! and pull complete [`Event`]s out:
//!
//! ```
//! use vllm_transport::sse::Decoder;
//!
//! # fn main() -> Result<(), vllm_transport::sse::SseError> {
//! let mut decoder = Decoder::new();
//! let mut received = Vec::new();
//!
//! // Network reads split the stream anywhere, even inside a CRLF or a character.
//! for piece in [&b"data: {\"a\":1}\r"[..], b"\n\r\ndata: h\xC3", b"\xA9!\n\ndata: [DONE]\n\n"] {
//!     decoder.feed(piece);
//!     while let Some(event) = decoder.next_event()? {
//!         received.push(event.data().to_owned());
//!     }
//! }
//! // End of input: an error here means the server stopped mid-event.
//! decoder.finish()?;
//!
//! assert_eq!(received, ["{\"a\":1}", "hé!", "[DONE]"]);
//! # Ok(())
//! # }
//! ```
//!
//! # What is decoded
//!
//! - Lines end with LF, CR or CRLF; a CR at the end of one piece and an LF at the start
//!   of the next are one line end.
//! - `data` lines are joined with `\n`; a blank line dispatches the event unless it
//!   has no `data` line at all. `event` sets [`Event::event`] (default `"message"`),
//!   `id` sets the last event ID ([`Event::id`], [`Decoder::last_event_id`]) unless it
//!   contains NUL, `retry` sets [`Decoder::retry`] if it is all ASCII digits. Lines
//!   starting with `:` are comments; unknown fields are ignored; a line without a
//!   colon is a field name with an empty value; one space after the colon is removed.
//! - A UTF-8 byte order mark is skipped at the start of the stream only.
//! - The stream must be UTF-8: invalid bytes anywhere are an
//!   [`SseError::InvalidUtf8`], never replaced with U+FFFD. Characters split between
//!   pieces decode exactly, since each line is validated once it is complete.
//! - Events are bounded by a maximum size ([`Decoder::with_max_event_size`], 16 MiB by
//!   default; see there for exactly what is counted).
//!
//! Errors are terminal: once [`Decoder::next_event`] or [`Decoder::finish`] has
//! returned an error, they keep returning it.
//!
//! # Performance
//!
//! Decoding takes time linear in the input however it is split: every byte is searched
//! for a line end once (a search resumes where it stopped), consumed input is dropped
//! from the front of the buffer without moving the rest line by line (the rest moves
//! only when that costs no more than what was consumed since the last move), and each
//! line is validated as UTF-8 once, when it is complete, with AVX2 where the CPU has it.
//!
//! [`Decoder::feed_bytes`] takes a [`Bytes`](bytes::Bytes) chunk, such as an HTTP body
//! frame, without copying it: the data of an event in it is a slice of it, or, up to
//! 1 KiB, a copy (cheaper than counting references to the chunk). [`Decoder::feed`]
//! copies what it is given into the decoder, except an event at the start of the piece
//! when nothing is pending (the usual case when the server writes one event at a
//! time), which is decoded straight from the piece. Either way an event's data is a
//! single allocation that [`Event::into_data`] hands over as a `String`.
//!
//! See `benches/README.md` in the repository for figures.
//!
//! [WHATWG event-stream parsing rules]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

mod decoder;
mod error;
mod event;
#[cfg(test)]
mod tests;
mod utf8;

pub use decoder::{DEFAULT_MAX_EVENT_SIZE, Decoder};
pub use error::SseError;
pub use event::Event;
