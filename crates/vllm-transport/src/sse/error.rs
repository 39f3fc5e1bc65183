use std::fmt;

/// Why an event stream could not be decoded.
///
/// Errors are terminal: the decoder that returned one keeps returning it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SseError {
    /// The stream is not valid UTF-8.
    InvalidUtf8 {
        /// Offset in bytes, from the start of the stream (a byte order mark included),
        /// of the first byte that is not part of a valid UTF-8 sequence.
        offset: u64,
    },
    /// An event, or a single line, is larger than the decoder's maximum event size.
    ///
    /// See [`Decoder::with_max_event_size`](super::Decoder::with_max_event_size) for
    /// what is counted.
    EventTooLarge {
        /// The maximum event size in bytes.
        limit: usize,
    },
    /// The stream ended inside an event: in the middle of a line, or after a field of
    /// an event that no blank line terminated. Per the WHATWG rules, that event is
    /// discarded.
    UnexpectedEof {
        /// Length in bytes of the unterminated last line; 0 if the input ended after a
        /// line end but before the blank line that would have ended the event.
        partial_line_len: usize,
    },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUtf8 { offset } => {
                write!(f, "event stream is not valid UTF-8 (at byte {offset})")
            }
            Self::EventTooLarge { limit } => write!(
                f,
                "event stream event exceeds the maximum event size of {limit} bytes"
            ),
            Self::UnexpectedEof {
                partial_line_len: 0,
            } => f.write_str(
                "event stream ended before the blank line ending its last event; \
                 the incomplete event was discarded",
            ),
            Self::UnexpectedEof { partial_line_len } => write!(
                f,
                "event stream ended in the middle of a line ({partial_line_len} bytes \
                 without a line end); the incomplete event was discarded"
            ),
        }
    }
}

impl std::error::Error for SseError {}
