use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// One dispatched server-sent event.
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    /// The data lines joined with `\n`.
    data: Payload,
    /// The event type, `None` when no `event` field was given or its value was empty.
    event: Option<Box<str>>,
    /// The last event ID at dispatch, `None` when it is empty.
    id: Option<Arc<str>>,
}

impl Event {
    /// Builds an event from its parts.
    pub(super) fn new(data: Payload, event: Option<Box<str>>, id: Option<Arc<str>>) -> Self {
        Self { data, event, id }
    }

    /// The event's data: the values of its `data` lines joined with `\n`.
    pub fn data(&self) -> &str {
        self.data.as_str()
    }

    /// The event type: the value of the event's `event` field, or `"message"` when it
    /// had none (or an empty one).
    pub fn event(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }

    /// The last event ID when the event was dispatched, `None` if it was empty.
    ///
    /// As the WHATWG rules say, the ID persists: an event without an `id` field gets
    /// the ID of an earlier one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The data as a `String`.
    ///
    /// Free for events decoded from input given to [`Decoder::feed`]: their data is
    /// already a `String`. An event whose data is a slice of a chunk given to
    /// [`Decoder::feed_bytes`] copies it; [`into_data_bytes`](Self::into_data_bytes)
    /// does not.
    ///
    /// [`Decoder::feed`]: super::Decoder::feed
    /// [`Decoder::feed_bytes`]: super::Decoder::feed_bytes
    pub fn into_data(self) -> String {
        match self.data {
            Payload::Owned(data) => data,
            Payload::Shared(_) => self.data.as_str().to_owned(),
        }
    }

    /// The data as [`Bytes`] (valid UTF-8), without copying.
    pub fn into_data_bytes(self) -> Bytes {
        match self.data {
            Payload::Owned(data) => Bytes::from(data),
            Payload::Shared(data) => data,
        }
    }
}

/// The data of an event: its own `String`, or a slice of an input chunk.
#[derive(Clone)]
pub(super) enum Payload {
    Owned(String),
    /// Invariant: valid UTF-8.
    Shared(Bytes),
}

impl Payload {
    /// A slice of `chunk`; `data` must lie inside `chunk`.
    pub(super) fn shared(chunk: &Bytes, data: &str) -> Self {
        Self::Shared(chunk.slice_ref(data.as_bytes()))
    }

    pub(super) fn as_str(&self) -> &str {
        match self {
            Self::Owned(data) => data,
            // SAFETY: `Shared` is only built by `Payload::shared`, from a `&str`.
            Self::Shared(data) => unsafe { std::str::from_utf8_unchecked(data) },
        }
    }

    pub(super) fn len(&self) -> usize {
        self.as_str().len()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Payload {}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("event", &self.event())
            .field("data", &Abbreviated(self.data()))
            .field("id", &self.id)
            .finish()
    }
}

/// Debug-formats a string, cut short if it is long (an event may be megabytes).
struct Abbreviated<'a>(&'a str);

impl fmt::Debug for Abbreviated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 256;
        if self.0.len() <= SHOWN {
            return fmt::Debug::fmt(self.0, f);
        }
        let mut end = SHOWN;
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        fmt::Debug::fmt(&self.0[..end], f)?;
        write!(f, "... ({} bytes)", self.0.len())
    }
}
