use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// One dispatched server-sent event.
///
/// Cloning shares the data rather than copying it.
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    /// The data lines joined with `\n`.
    data: Payload,
    /// The event type and ID, `None` when both are empty (boxed: they are rare, and a
    /// small event is fast to move).
    meta: Option<Box<Meta>>,
}

#[derive(Clone, PartialEq, Eq)]
struct Meta {
    /// The event type, `None` when no `event` field was given or its value was empty.
    event: Option<Box<str>>,
    /// The last event ID at dispatch, `None` when it is empty.
    id: Option<Arc<str>>,
}

impl Event {
    /// Builds an event from its parts.
    #[inline(always)]
    pub(super) fn new(data: Payload, event: Option<Box<str>>, id: Option<Arc<str>>) -> Self {
        let meta = (event.is_some() || id.is_some()).then(|| Box::new(Meta { event, id }));
        Self { data, meta }
    }

    /// The event's data: the values of its `data` lines joined with `\n`.
    #[inline]
    pub fn data(&self) -> &str {
        self.data.as_str()
    }

    /// The event type: the value of the event's `event` field, or `"message"` when it
    /// had none (or an empty one).
    #[inline]
    pub fn event(&self) -> &str {
        self.meta
            .as_ref()
            .and_then(|meta| meta.event.as_deref())
            .unwrap_or("message")
    }

    /// The last event ID when the event was dispatched, `None` if it was empty.
    ///
    /// As the WHATWG rules say, the ID persists: an event without an `id` field gets
    /// the ID of an earlier one.
    #[inline]
    pub fn id(&self) -> Option<&str> {
        self.meta.as_ref().and_then(|meta| meta.id.as_deref())
    }

    /// The data as a `String`.
    ///
    /// Free when the event owns its data alone, as it does unless it was cloned or its
    /// data is a slice of a chunk given to [`Decoder::feed_bytes`] (an event over
    /// 1 KiB): then the data is copied. [`into_data_bytes`](Self::into_data_bytes)
    /// never copies.
    ///
    /// [`Decoder::feed_bytes`]: super::Decoder::feed_bytes
    #[inline]
    pub fn into_data(self) -> String {
        let bytes = Vec::from(self.data.0);
        // SAFETY: `Payload` holds valid UTF-8, and `Vec::from` keeps the bytes.
        unsafe { String::from_utf8_unchecked(bytes) }
    }

    /// The data as [`Bytes`] (valid UTF-8), without copying.
    #[inline]
    pub fn into_data_bytes(self) -> Bytes {
        self.data.0
    }
}

/// The data of an event: [`Bytes`] that are valid UTF-8, owned alone or a slice of an
/// input chunk. (A plain struct of scalars, not an enum, so that building an event
/// compiles to register moves.)
#[derive(Clone)]
pub(super) struct Payload(Bytes);

impl Payload {
    /// A copy of `data`.
    #[inline]
    pub(super) fn copy(data: &str) -> Self {
        Self(Bytes::copy_from_slice(data.as_bytes()))
    }

    #[inline]
    pub(super) fn from_string(data: String) -> Self {
        Self(Bytes::from(data))
    }

    /// A slice of `chunk`; `data` must lie inside `chunk`.
    #[inline]
    pub(super) fn shared(chunk: &Bytes, data: &str) -> Self {
        Self(chunk.slice_ref(data.as_bytes()))
    }

    /// # Safety
    ///
    /// `data` must be valid UTF-8.
    #[inline]
    pub(super) unsafe fn from_utf8_unchecked(data: Bytes) -> Self {
        Self(data)
    }

    #[inline]
    pub(super) fn as_str(&self) -> &str {
        // SAFETY: every constructor takes a `&str` or a `String`, except
        // `from_utf8_unchecked`, whose callers guarantee valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.0.len()
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
            .field("id", &self.id())
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
