use std::fmt;
use std::mem;
use std::str;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use memchr::memchr2;

use super::event::Payload;
use super::utf8;
use super::{Event, SseError};

/// The maximum event size of [`Decoder::new`]: 16 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Up to this size, the data of an event sliced from a `Bytes` chunk is copied instead:
/// a small copy costs less than counting references to the chunk.
const COPY_MAX: usize = 1024;
const DATA_PREFIX: &[u8] = b"data:";

/// A Server-Sent Events decoder: feed it bytes, take out [`Event`]s.
///
/// See the [module documentation](super) for a guide and an example.
///
/// Input is buffered until it forms complete lines; [`next_event`](Self::next_event)
/// interprets them and returns the next dispatched event. The decoder keeps the
/// stream state of the WHATWG rules ([`last_event_id`](Self::last_event_id),
/// [`retry`](Self::retry)) across events.
#[derive(Clone)]
pub struct Decoder {
    /// The front of the unconsumed input, `owned[start..]`: bytes copied in by `feed`,
    /// or the rest of a `feed_bytes` chunk that could not be sliced. Always before
    /// `shared`.
    owned: Vec<u8>,
    /// How much of `owned` is consumed. The consumed prefix is dropped when the
    /// buffer is drained, or when moving the rest to the front costs no more than
    /// the bytes consumed since the last move, so that every byte moves at most once.
    start: usize,
    /// The back of the unconsumed input: a chunk given to `feed_bytes`, sliced without
    /// copying. Non-empty only when `owned[start..]` is empty or ends with a line end,
    /// so no line spans the two.
    shared: Bytes,
    /// An event `feed` decoded straight from its chunk, to be returned first.
    ready: Option<Event>,
    /// Everything but the input buffers (a separate struct to borrow it beside them).
    state: State,
    /// The error returned before, if any: errors are terminal.
    error: Option<SseError>,
}

#[derive(Clone)]
struct State {
    /// How many bytes at the front of the current line were searched for a line end.
    scanned: usize,
    /// The stream offset of a line end found by `feed` in the bytes it appended,
    /// the first one after the bytes searched before. It spares searching freshly
    /// copied bytes, which is slow (the copy's stores are still in flight).
    line_end_hint: Option<u64>,
    /// The last line ended with a CR that was the last byte of input: an LF arriving
    /// next belongs to that line end.
    after_cr: bool,
    /// Nothing has been consumed yet, so a byte order mark may follow.
    at_start: bool,
    /// Stream offset of the first unconsumed byte (for error messages).
    offset: u64,
    /// The data buffer of the pending event, without the spec's trailing `\n`;
    /// `None` until it has a `data` line.
    data: Option<Pending>,
    /// The event type buffer of the pending event; `None` when empty.
    event_type: Option<Box<str>>,
    /// The pending event has a `data`, `event` or `id` field.
    in_event: bool,
    /// The spec's "last event ID buffer"; `None` when empty.
    id_buffer: Option<Arc<str>>,
    /// The spec's "last event ID string", set from `id_buffer` at every blank line.
    last_event_id: Option<Arc<str>>,
    /// The reconnection time sent by the server, in milliseconds.
    retry: Option<u64>,
    max_event_size: usize,
}

/// The data of the pending event.
#[derive(Clone)]
enum Pending {
    /// The value of its one `data` line so far.
    One(Payload),
    /// The values of its `data` lines joined with `\n`.
    Joined(String),
}

impl Pending {
    fn as_str(&self) -> &str {
        match self {
            Pending::One(data) => data.as_str(),
            Pending::Joined(data) => data,
        }
    }

    fn len(&self) -> usize {
        match self {
            Pending::One(data) => data.len(),
            Pending::Joined(data) => data.len(),
        }
    }
}

impl Decoder {
    /// A decoder with the default maximum event size, [`DEFAULT_MAX_EVENT_SIZE`]
    /// (16 MiB).
    pub fn new() -> Self {
        Self::with_max_event_size(DEFAULT_MAX_EVENT_SIZE)
    }

    /// A decoder that rejects events larger than `max` bytes with
    /// [`SseError::EventTooLarge`].
    ///
    /// What is counted is the event's data exactly as [`Event::data`] would return
    /// it: the values of its `data` lines joined with `\n`, without field names,
    /// colons, the space after them, or line ends. An event whose data is exactly
    /// `max` bytes is accepted and one with `max + 1` is rejected, however the bytes
    /// arrive. A `data` line still arriving counts with the part received so far, so
    /// the decoder never holds much more than `max` bytes of an event before it
    /// errors. Every other line (`event`, `id`, comments, …) may be at most `max`
    /// bytes long on its own, line end excluded.
    pub fn with_max_event_size(max: usize) -> Self {
        Self {
            owned: Vec::new(),
            start: 0,
            shared: Bytes::new(),
            ready: None,
            state: State {
                scanned: 0,
                line_end_hint: None,
                after_cr: false,
                at_start: true,
                offset: 0,
                data: None,
                event_type: None,
                in_event: false,
                id_buffer: None,
                last_event_id: None,
                retry: None,
                max_event_size: max,
            },
            error: None,
        }
    }

    /// Appends bytes received from the network, copying them into the decoder.
    ///
    /// Pieces may split the stream anywhere. Call [`next_event`](Self::next_event)
    /// until it returns `Ok(None)` to take out the events they complete. After an
    /// error the bytes are ignored. When the decoder holds [`Bytes`] chunks anyway,
    /// [`feed_bytes`](Self::feed_bytes) spares the copy.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.error.is_some() || chunk.is_empty() {
            return;
        }
        if !self.shared.is_empty() {
            let shared = mem::take(&mut self.shared);
            self.append(&shared);
        }
        let mut chunk = chunk;
        let buffered = self.owned.len() - self.start;
        if buffered == 0 && self.ready.is_none() && self.state.is_idle() {
            // The usual event, alone at the start of the chunk: decode it from the
            // chunk itself, rather than from the copy (whose stores may be in flight).
            let (event, consumed) = self.state.simple_event_in(chunk, None);
            self.ready = event;
            chunk = &chunk[consumed..];
        } else if self.state.scanned == buffered && self.state.line_end_hint.is_none() {
            // Everything buffered was searched: find the next line end in `chunk`.
            if let Some(found) = memchr2(b'\n', b'\r', chunk) {
                self.state.line_end_hint = Some(self.state.offset + (buffered + found) as u64);
            }
        }
        if !chunk.is_empty() {
            self.append(chunk);
        }
    }

    /// Appends bytes received from the network, without copying them where possible.
    ///
    /// Like [`feed`](Self::feed), for a [`Bytes`] chunk such as an HTTP body frame.
    /// The decoder keeps the chunk instead of copying it; the data of an event in it
    /// becomes a slice of it, or a copy up to 1 KiB (cheaper than counting references
    /// to the chunk). Only a line that continues earlier input is copied into the
    /// decoder's buffer.
    pub fn feed_bytes(&mut self, chunk: Bytes) {
        if self.error.is_some() || chunk.is_empty() {
            return;
        }
        if self.start == self.owned.len() && self.shared.is_empty() {
            if self.ready.is_none() && self.state.is_idle() {
                // As in `feed`: the usual event at the start of the chunk, at once.
                let (event, consumed) = self.state.simple_event_in(&chunk, Some(&chunk));
                self.ready = event;
                if consumed < chunk.len() {
                    self.shared = if consumed == 0 {
                        chunk
                    } else {
                        chunk.slice(consumed..)
                    };
                }
                return;
            }
            self.shared = chunk;
            return;
        }
        if !self.shared.is_empty() {
            let shared = mem::take(&mut self.shared);
            self.append(&shared);
        }
        // `owned` holds the front of the input. Complete its last line from the head of
        // `chunk`, so that no line spans the two buffers, and keep the rest shared.
        if let Some(b'\n' | b'\r') = self.owned.last() {
            self.shared = chunk;
            return;
        }
        match memchr2(b'\n', b'\r', &chunk) {
            None => self.append(&chunk),
            Some(end) => {
                // If `owned` is one partial line searched to its end, the appended head
                // has its only line end last: do not search it again.
                let searched_all = self.state.scanned == self.owned.len() - self.start;
                self.append(&chunk[..=end]);
                if searched_all {
                    self.state.scanned = self.owned.len() - self.start - 1;
                }
                self.shared = chunk.slice(end + 1..);
            }
        }
    }

    /// Returns the next complete event, or `None` if more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`SseError::InvalidUtf8`] if a line is not valid UTF-8, and
    /// [`SseError::EventTooLarge`] if an event or a line exceeds the maximum event
    /// size. Events before the offending line are returned first. Errors are
    /// terminal: every later call returns the same error.
    #[inline]
    pub fn next_event(&mut self) -> Result<Option<Event>, SseError> {
        if let Some(event) = self.ready.take() {
            return Ok(Some(event));
        }
        if self.start == self.owned.len() && self.shared.is_empty() && self.error.is_none() {
            // Nothing buffered, the usual answer after an event: nothing to do.
            return Ok(None);
        }
        self.next_buffered_event()
    }

    /// [`next_event`](Self::next_event) when something is buffered (or failed).
    #[inline(never)]
    fn next_buffered_event(&mut self) -> Result<Option<Event>, SseError> {
        if let Some(event) = self.next_simple_event() {
            return Ok(Some(event));
        }
        self.next_event_general()
    }

    /// Signals the end of the input.
    ///
    /// Call it once [`next_event`](Self::next_event) has returned `Ok(None)` after the
    /// last bytes were fed.
    ///
    /// # Errors
    ///
    /// [`SseError::UnexpectedEof`] if the input ended inside an event: in the middle
    /// of a line, or after a `data`, `event` or `id` field that no blank line
    /// terminated. Per the WHATWG rules such an event is not dispatched. Returns the
    /// earlier error if there was one.
    pub fn finish(&mut self) -> Result<(), SseError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let partial_line_len = self.buffered();
        if partial_line_len == 0 && !self.state.in_event {
            return Ok(());
        }
        let error = SseError::UnexpectedEof { partial_line_len };
        self.fail(error.clone());
        Err(error)
    }

    /// The last event ID of the stream, `""` if none was set.
    ///
    /// Set from the `id` fields at every blank line, dispatched event or not; send it
    /// as the `Last-Event-ID` header when reconnecting.
    pub fn last_event_id(&self) -> &str {
        self.state.last_event_id.as_deref().unwrap_or("")
    }

    /// The reconnection time in milliseconds from the last valid `retry` field, if
    /// any.
    pub fn retry(&self) -> Option<u64> {
        self.state.retry
    }

    /// The maximum event size in bytes.
    pub fn max_event_size(&self) -> usize {
        self.state.max_event_size
    }

    /// [`next_event`](Self::next_event) for any input.
    #[inline(always)]
    fn next_event_general(&mut self) -> Result<Option<Event>, SseError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = self.decode();
        if let Err(error) = &result {
            self.fail(error.clone());
        }
        result
    }

    /// The fast path of [`next_event`](Self::next_event), for the usual event: one
    /// `data` line and a blank line, complete at the front of the input, with nothing
    /// pending. Returns `None` for anything else, leaving it (errors included) to
    /// [`next_event_general`](Self::next_event_general); it consumes nothing then, but
    /// remembers how far it searched for the line end.
    #[inline(always)]
    fn next_simple_event(&mut self) -> Option<Event> {
        let state = &mut self.state;
        if self.error.is_some() || state.at_start || state.after_cr || state.data.is_some() {
            return None;
        }
        let in_owned = self.start < self.owned.len();
        let (input, chunk) = if in_owned {
            (&self.owned[self.start..], None)
        } else {
            (&self.shared[..], Some(&self.shared))
        };
        if !input.starts_with(DATA_PREFIX) {
            return None;
        }
        let len = match state.line_end_hint {
            Some(end) if end >= state.offset + state.scanned as u64 => {
                (end - state.offset) as usize
            }
            _ => match memchr2(b'\n', b'\r', &input[state.scanned..]) {
                Some(found) => {
                    let len = state.scanned + found;
                    // Should this not be the usual event, the general path needs it.
                    state.line_end_hint = Some(state.offset + len as u64);
                    len
                }
                None => {
                    state.scanned = input.len();
                    state.line_end_hint = None;
                    return None;
                }
            },
        };
        let consumed = simple_event_len(input, len)?;
        let start = data_value_start(input);
        let value = &input[start..len];
        if value.len() > state.max_event_size {
            return None;
        }
        let value = state.validate(value, start).ok()?;
        let data = match chunk {
            None => Payload::copy(value),
            // The event ends the chunk: take the chunk rather than count another
            // reference to it.
            Some(chunk) if consumed == chunk.len() => {
                let mut data = mem::take(&mut self.shared);
                data.truncate(len);
                data.advance(start);
                // SAFETY: `data` holds the bytes of `value`, validated above.
                unsafe { Payload::from_utf8_unchecked(data) }
            }
            Some(chunk) => Payload::shared(chunk, value),
        };
        let event = state.dispatch_single(data);
        state.offset += consumed as u64;
        state.scanned = 0;
        state.line_end_hint = None;
        if in_owned {
            self.start += consumed;
            if self.start == self.owned.len() {
                self.owned.clear();
                self.start = 0;
            }
        } else if !self.shared.is_empty() {
            self.shared.advance(consumed);
        }
        Some(event)
    }

    /// The number of bytes fed but not yet consumed.
    fn buffered(&self) -> usize {
        self.owned.len() - self.start + self.shared.len()
    }

    /// Appends to `owned`, first dropping its consumed prefix if moving the rest
    /// costs no more than the bytes consumed since the last move (linear overall).
    fn append(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.owned.len() - self.start <= self.start {
            self.owned.copy_within(self.start.., 0);
            self.owned.truncate(self.owned.len() - self.start);
            self.start = 0;
        }
        self.owned.extend_from_slice(bytes);
    }

    #[inline(always)]
    fn decode(&mut self) -> Result<Option<Event>, SseError> {
        if self.state.at_start && !self.skip_bom() {
            return Ok(None);
        }
        if self.start < self.owned.len() {
            let mut consumed = 0;
            let result = self
                .state
                .lines(&self.owned[self.start..], None, &mut consumed);
            self.start += consumed;
            if self.start == self.owned.len() {
                self.owned.clear();
                self.start = 0;
            }
            if !matches!(result, Ok(None)) {
                return result;
            }
            if self.start < self.owned.len() {
                debug_assert!(self.shared.is_empty(), "a line spans both buffers");
                self.state.check_partial_line(&self.owned[self.start..])?;
                return Ok(None);
            }
        }
        if self.shared.is_empty() {
            return Ok(None);
        }
        let mut consumed = 0;
        let result = self
            .state
            .lines(&self.shared, Some(&self.shared), &mut consumed);
        if consumed == self.shared.len() {
            // Release the chunk rather than keep an empty view of it.
            self.shared = Bytes::new();
        } else {
            self.shared.advance(consumed);
        }
        if !matches!(result, Ok(None)) {
            return result;
        }
        if !self.shared.is_empty() {
            self.state.check_partial_line(&self.shared)?;
        }
        Ok(None)
    }

    /// Skips a byte order mark at the start of the stream. Returns false if the input
    /// so far is too short to tell.
    fn skip_bom(&mut self) -> bool {
        let in_owned = self.start < self.owned.len();
        let front: &[u8] = if in_owned {
            &self.owned[self.start..]
        } else {
            &self.shared
        };
        let n = front.len().min(BOM.len());
        if front[..n] == BOM[..n] {
            if n < BOM.len() {
                return false;
            }
            if in_owned {
                self.start += n;
            } else {
                self.shared.advance(n);
            }
            self.state.offset += n as u64;
        }
        self.state.at_start = false;
        true
    }

    /// Enters the terminal error state, releasing the buffers.
    #[cold]
    fn fail(&mut self, error: SseError) {
        self.error = Some(error);
        self.ready = None;
        self.owned = Vec::new();
        self.start = 0;
        self.shared = Bytes::new();
        self.state.data = None;
    }
}

impl State {
    /// Nothing pending: the next byte starts a line of a new event.
    #[inline(always)]
    fn is_idle(&self) -> bool {
        !self.at_start && !self.after_cr && self.data.is_none() && self.scanned == 0
    }

    /// The usual event, a `data` line and a blank line, if `input` starts with one
    /// and is idle, decoded with a copy of its data; and the bytes consumed: those of
    /// the event, or 0. Errors are left to the general path.
    #[inline(always)]
    fn simple_event_in(&mut self, input: &[u8], chunk: Option<&Bytes>) -> (Option<Event>, usize) {
        let Some((value, consumed)) = self.simple_value(input) else {
            return (None, 0);
        };
        let data = match chunk {
            Some(chunk) if value.len() > COPY_MAX => Payload::shared(chunk, value),
            _ => Payload::copy(value),
        };
        (Some(self.dispatch_single(data)), consumed)
    }

    /// The data of the usual event, a `data` line and a blank line, if `input` starts
    /// with one and is idle, and the bytes of the event, which it consumes. Otherwise
    /// `None`, consuming nothing, errors included (the general path reports them); the
    /// search for the line end is remembered for the general path, as if `input` were
    /// appended to the (empty) buffer.
    ///
    /// The caller dispatches the event ([`dispatch_single`](Self::dispatch_single)).
    #[inline(always)]
    fn simple_value<'i>(&mut self, input: &'i [u8]) -> Option<(&'i str, usize)> {
        // Whatever this finds, spare the general path the search.
        let Some(len) = memchr2(b'\n', b'\r', input) else {
            self.scanned = input.len();
            return None;
        };
        self.line_end_hint = Some(self.offset + len as u64);
        if !input.starts_with(DATA_PREFIX) {
            return None;
        }
        let consumed = simple_event_len(input, len)?;
        let start = data_value_start(input);
        if len - start > self.max_event_size {
            return None;
        }
        let value = self.validate(&input[start..len], start).ok()?;
        self.offset += consumed as u64;
        self.line_end_hint = None;
        Some((value, consumed))
    }

    /// Interprets the complete lines at the front of `input` until one dispatches an
    /// event, or only an incomplete line (or nothing) is left, and sets `consumed` to
    /// the number of bytes interpreted. `chunk` is `input` as [`Bytes`] when values
    /// may be sliced from it rather than copied.
    #[inline(always)]
    fn lines(
        &mut self,
        input: &[u8],
        chunk: Option<&Bytes>,
        consumed: &mut usize,
    ) -> Result<Option<Event>, SseError> {
        let mut pos = 0;
        let result = loop {
            let rest = &input[pos..];
            let Some(&first) = rest.first() else {
                break Ok(None);
            };
            if self.after_cr {
                self.after_cr = false;
                if first == b'\n' {
                    pos += 1;
                    continue;
                }
            }
            // A blank line, the usual line after a `data` line: no search needed.
            if first == b'\n' || first == b'\r' {
                pos += self.line_end_len(rest, 0);
                match self.dispatch() {
                    Some(event) => break Ok(Some(event)),
                    None => continue,
                }
            }
            // Resume the search where the previous call stopped.
            let search_start = self.offset + (pos + self.scanned) as u64;
            let found = match self.line_end_hint.take() {
                Some(end) if end >= search_start => Some((end - search_start) as usize),
                _ => memchr2(b'\n', b'\r', &rest[self.scanned..]),
            };
            let Some(found) = found else {
                self.scanned = rest.len();
                break Ok(None);
            };
            let len = self.scanned + found;
            self.scanned = 0;
            let end_len = self.line_end_len(rest, len);
            let line = &rest[..len];
            // The usual event, one `data` line and a blank line, is built directly.
            if self.data.is_none() && line.starts_with(DATA_PREFIX) {
                if let Some(b'\n' | b'\r') = rest.get(len + end_len) {
                    let blank_len = self.line_end_len(rest, len + end_len);
                    let start = data_value_start(line);
                    let value = &line[start..];
                    if value.len() > self.max_event_size {
                        break Err(self.too_large());
                    }
                    match self.validate(value, pos + start) {
                        Ok(value) => {
                            pos += len + end_len + blank_len;
                            let data = match chunk {
                                Some(chunk) => Payload::shared(chunk, value),
                                None => Payload::copy(value),
                            };
                            break Ok(Some(self.dispatch_single(data)));
                        }
                        Err(error) => break Err(error),
                    }
                }
            }
            if let Err(error) = self.line(line, chunk, pos) {
                break Err(error);
            }
            pos += len + end_len;
        };
        *consumed = pos;
        self.offset += pos as u64;
        result
    }

    /// The length of the line end at `bytes[at]`, a CR or an LF: 2 for CRLF, else 1.
    /// Notes a CR that is the last byte so far, which an LF may still follow.
    #[inline]
    fn line_end_len(&mut self, bytes: &[u8], at: usize) -> usize {
        if bytes[at] == b'\r' && at + 1 == bytes.len() {
            self.after_cr = true;
        }
        line_end_len(bytes, at)
    }

    /// Interprets the complete, non-empty `line`, found `at` bytes into the unconsumed
    /// input.
    #[inline]
    fn line(&mut self, line: &[u8], chunk: Option<&Bytes>, at: usize) -> Result<(), SseError> {
        if line.starts_with(DATA_PREFIX) {
            let start = data_value_start(line);
            return self.data_line(&line[start..], chunk, at + start);
        }
        self.other_line(line, at)
    }

    /// Dispatches the event of one `data` line with this `data`, followed by a blank
    /// line, when no data was pending: the same as [`data_line`](Self::data_line)
    /// then [`dispatch`](Self::dispatch), without storing the data in between.
    #[inline(always)]
    fn dispatch_single(&mut self, data: Payload) -> Event {
        self.in_event = false;
        if self.id_buffer.is_some() || self.last_event_id.is_some() {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        let event_type = self.event_type.take();
        Event::new(data, event_type, self.last_event_id.clone())
    }

    /// Interprets a line that does not start with `data:`.
    #[inline(never)]
    fn other_line(&mut self, line: &[u8], at: usize) -> Result<(), SseError> {
        if line.len() > self.max_event_size {
            return Err(self.too_large());
        }
        let line = self.validate(line, at)?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            // `data:` was handled before: this is `data` without a colon.
            "data" => return self.data_line(&[], None, at + line.len()),
            "event" => {
                self.event_type = (!value.is_empty()).then(|| value.into());
                self.in_event = true;
            }
            "id" => {
                if !value.contains('\0') {
                    self.id_buffer = (!value.is_empty()).then(|| value.into());
                }
                self.in_event = true;
            }
            "retry" => {
                if let Some(retry) = parse_retry(value) {
                    self.retry = Some(retry);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Appends `value`, found `at` bytes into the unconsumed input, to the data buffer.
    #[inline]
    fn data_line(
        &mut self,
        value: &[u8],
        chunk: Option<&Bytes>,
        at: usize,
    ) -> Result<(), SseError> {
        let data_len = match &self.data {
            None => value.len(),
            Some(data) => data.len().saturating_add(1 + value.len()),
        };
        if data_len > self.max_event_size {
            return Err(self.too_large());
        }
        let value = self.validate(value, at)?;
        self.in_event = true;
        match &mut self.data {
            None => {
                self.data = Some(Pending::One(match chunk {
                    Some(chunk) => Payload::shared(chunk, value),
                    None => Payload::copy(value),
                }));
            }
            Some(Pending::Joined(data)) => {
                data.push('\n');
                data.push_str(value);
            }
            Some(pending @ Pending::One(_)) => {
                let mut data = String::with_capacity(data_len);
                data.push_str(pending.as_str());
                data.push('\n');
                data.push_str(value);
                *pending = Pending::Joined(data);
            }
        }
        Ok(())
    }

    /// Handles a blank line: dispatches the pending event if it has data.
    #[inline]
    fn dispatch(&mut self) -> Option<Event> {
        self.in_event = false;
        // The last event ID is set at every blank line, whether an event follows or not.
        if self.id_buffer.is_some() || self.last_event_id.is_some() {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        let event_type = self.event_type.take();
        let data = match self.data.take()? {
            Pending::One(data) => data,
            Pending::Joined(data) => Payload::from_string(data),
        };
        Some(Event::new(data, event_type, self.last_event_id.clone()))
    }

    /// Checks the size limit against the incomplete line `partial`, as much as is
    /// known of it, the same way [`line`](Self::line) will when it is complete.
    fn check_partial_line(&self, partial: &[u8]) -> Result<(), SseError> {
        let size = if partial.starts_with(DATA_PREFIX) {
            let value_len = partial.len() - data_value_start(partial);
            match &self.data {
                None => value_len,
                Some(data) => data.len().saturating_add(1 + value_len),
            }
        } else if DATA_PREFIX.starts_with(partial) {
            // Maybe a data line, whose value so far is empty.
            0
        } else {
            partial.len()
        };
        if size > self.max_event_size {
            return Err(self.too_large());
        }
        Ok(())
    }

    /// Validates `bytes`, found `at` bytes into the unconsumed input, as UTF-8.
    #[inline(always)]
    fn validate<'a>(&self, bytes: &'a [u8], at: usize) -> Result<&'a str, SseError> {
        utf8::validate(bytes).map_err(|valid_up_to| SseError::InvalidUtf8 {
            offset: self.offset + (at + valid_up_to) as u64,
        })
    }

    #[cold]
    fn too_large(&self) -> SseError {
        SseError::EventTooLarge {
            limit: self.max_event_size,
        }
    }
}

/// The length of the usual event at the start of `input`, whose first line ends at
/// `input[len]`: that line, its line end and a blank line, if they are complete (a CR
/// at the end of `input` may still be followed by an LF).
#[inline(always)]
fn simple_event_len(input: &[u8], len: usize) -> Option<usize> {
    let end_len = match input[len..] {
        [b'\r', b'\n', ..] => 2,
        [b'\r', _, ..] | [b'\n', ..] => 1,
        _ => return None,
    };
    let blank_len = match input[len + end_len..] {
        [b'\r', b'\n', ..] => 2,
        [b'\r', _, ..] | [b'\n', ..] => 1,
        _ => return None,
    };
    Some(len + end_len + blank_len)
}

/// The length of the line end at `bytes[at]`, a CR or an LF: 2 for CRLF, else 1.
#[inline]
fn line_end_len(bytes: &[u8], at: usize) -> usize {
    if bytes[at] == b'\r' && bytes.get(at + 1) == Some(&b'\n') {
        2
    } else {
        1
    }
}

/// Where the value of `line`, which starts with `data:`, starts: after the colon
/// and one space.
#[inline]
fn data_value_start(line: &[u8]) -> usize {
    DATA_PREFIX.len() + usize::from(line.get(DATA_PREFIX.len()) == Some(&b' '))
}

/// The value of a `retry` field: ASCII digits only, and fits in a `u64`.
fn parse_retry(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &self.buffered())
            .field(
                "pending_data_len",
                &self.state.data.as_ref().map_or(0, Pending::len),
            )
            .field("last_event_id", &self.last_event_id())
            .field("retry", &self.state.retry)
            .field("max_event_size", &self.state.max_event_size)
            .field("error", &self.error)
            .finish()
    }
}
