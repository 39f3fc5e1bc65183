//! Decoding a borrowed piece in place: [`Decoder::events`], [`Events`], [`EventRef`].

use std::ops::Range;

use memchr::memchr2;

use super::decoder::{Take, line_end_len};
use super::{Decoder, Event, SseError, utf8};

impl Decoder {
    /// Decodes the events in `piece` where it lies, without copying it into the
    /// decoder: the data of the usual event (one `data` line and a blank line, complete
    /// in `piece`) is borrowed from `piece`, with no allocation and no copy.
    ///
    /// This is the fastest way to decode input that the caller holds anyway, such as a
    /// read buffer. Take the events out with [`Events::next_event`] until it returns
    /// `Ok(None)`; the input is then consumed. Anything else (an event split across
    /// pieces, several `data` lines, `event` or `id` fields) goes through the decoder's
    /// buffer as with [`feed`](Self::feed), so the events, errors and stream state are
    /// exactly those that `feed(piece)` and [`next_event`](Self::next_event) would give.
    /// So does the first event of the stream (while a byte order mark may still be
    /// arriving) and an event after a CR that ended the previous piece (an LF may follow).
    ///
    /// Dropping the [`Events`] before it returned `Ok(None)` feeds what it did not reach
    /// into the decoder, so that nothing is lost: [`next_event`](Self::next_event) or
    /// the next `events` returns those events.
    ///
    /// ```
    /// use vllm_transport::sse::Decoder;
    ///
    /// # fn main() -> Result<(), vllm_transport::sse::SseError> {
    /// let mut decoder = Decoder::new();
    /// let mut received = Vec::new();
    /// for piece in [&b"data: {\"a\":1}\n\ndata: h\xC3"[..], b"\xA9!\n\ndata: [DONE]\n\n"] {
    ///     let mut events = decoder.events(piece);
    ///     while let Some(event) = events.next_event()? {
    ///         received.push(event.data().to_owned());
    ///     }
    /// }
    /// decoder.finish()?;
    /// assert_eq!(received, ["{\"a\":1}", "hé!", "[DONE]"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn events<'d, 'p>(&'d mut self, piece: &'p [u8]) -> Events<'d, 'p> {
        Events {
            decoder: self,
            rest: piece,
            checked: "",
            look_ahead: piece.len() >= utf8::LOOK_AHEAD_MIN,
            current: None,
        }
    }
}

/// The events of a borrowed piece of input, from [`Decoder::events`].
///
/// Dropping it feeds the part of the piece it did not reach into the decoder.
pub struct Events<'d, 'p> {
    decoder: &'d mut Decoder,
    /// The part of the piece not yet consumed or handed to the decoder.
    rest: &'p [u8],
    /// A prefix of `rest` known to be valid UTF-8, validated in one go when the first
    /// event is taken from the piece ([`utf8::valid_prefix`]).
    checked: &'p str,
    /// `checked` is yet to be found.
    look_ahead: bool,
    /// The event last taken from the decoder's buffer, which an [`EventRef`] borrows.
    current: Option<Event>,
}

impl Events<'_, '_> {
    /// Returns the next complete event, or `None` once the piece is consumed (the
    /// events it completes have all been returned).
    ///
    /// # Errors
    ///
    /// As [`Decoder::next_event`]: [`SseError::InvalidUtf8`] or
    /// [`SseError::EventTooLarge`], after the events before the offending line.
    /// Errors are terminal for the decoder.
    #[inline]
    pub fn next_event(&mut self) -> Result<Option<EventRef<'_>>, SseError> {
        loop {
            if self.decoder.can_borrow() {
                if self.rest.is_empty() {
                    return Ok(None);
                }
                // Validating all the complete lines at once is much cheaper than line
                // by line. If some line is invalid, each is validated on its own, so
                // that errors are those of `feed`.
                if self.look_ahead {
                    self.look_ahead = false;
                    self.checked = utf8::valid_prefix(self.rest);
                }
                match self.decoder.take_simple(self.rest, self.checked) {
                    Take::Event(data, taken) => {
                        self.advance(taken);
                        return Ok(Some(EventRef::simple(data, self.decoder)));
                    }
                    Take::Buffered => {
                        self.rest = &[];
                        return Ok(None);
                    }
                    Take::Failed(error) => {
                        self.rest = &[];
                        return Err(error);
                    }
                    Take::Nothing => {}
                }
            } else if let Some((data, taken)) = self.decoder.complete_simple(self.rest) {
                self.advance(taken);
                return Ok(Some(self.decoder.borrowed_event(data)));
            } else if let Some(event) = self.decoder.next_event()? {
                return Ok(Some(EventRef::from(&*self.current.insert(event))));
            } else if self.rest.is_empty() {
                return Ok(None);
            }
            // Not the usual event, or the rest of one begun earlier: hand the decoder
            // its next line (and a blank line right after it), then ask again.
            let len = through_next_line(self.rest);
            self.decoder.feed(&self.rest[..len]);
            self.advance(len);
        }
    }

    /// Moves past the first `len` bytes of the rest of the piece, which end a line.
    #[inline(always)]
    fn advance(&mut self, len: usize) {
        self.rest = &self.rest[len..];
        // A line end is a character boundary; past the checked prefix, nothing is.
        self.checked = self.checked.get(len..).unwrap_or("");
    }
}

impl Drop for Events<'_, '_> {
    fn drop(&mut self) {
        self.decoder.feed(self.rest);
    }
}

impl std::fmt::Debug for Events<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("decoder", &self.decoder)
            .field("unread", &self.rest.len())
            .finish()
    }
}

/// An event borrowed from the input or from the decoder, from [`Events::next_event`].
///
/// The same fields as [`Event`], which converts into it with `EventRef::from(&event)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    data: &'a str,
    event: &'a str,
    id: Option<&'a str>,
}

impl<'a> EventRef<'a> {
    /// The event's data: the values of its `data` lines joined with `\n`.
    #[inline]
    pub fn data(&self) -> &'a str {
        self.data
    }

    /// The event type: the value of the event's `event` field, or `"message"` when it
    /// had none (or an empty one).
    #[inline]
    pub fn event(&self) -> &'a str {
        self.event
    }

    /// The last event ID when the event was dispatched, `None` if it was empty (it
    /// persists from earlier events, as for [`Event::id`]).
    #[inline]
    pub fn id(&self) -> Option<&'a str> {
        self.id
    }
}

impl<'a> EventRef<'a> {
    /// The usual event, of one `data` line: type `message`, the decoder's last event ID.
    #[inline]
    fn simple(data: &'a str, decoder: &'a Decoder) -> Self {
        let id = decoder.last_event_id();
        Self {
            data,
            event: "message",
            id: (!id.is_empty()).then_some(id),
        }
    }
}

impl Decoder {
    /// The event [`complete_simple`](Decoder::complete_simple) completed in the buffer.
    #[inline]
    fn borrowed_event(&self, data: Range<usize>) -> EventRef<'_> {
        EventRef::simple(self.buffered_data(data), self)
    }
}

impl<'a> From<&'a Event> for EventRef<'a> {
    #[inline]
    fn from(event: &'a Event) -> Self {
        Self {
            data: event.data(),
            event: event.event(),
            id: event.id(),
        }
    }
}

/// The length of the first line of `input` with its line end, and of a blank line
/// right after it; all of `input` if it has no line end.
fn through_next_line(input: &[u8]) -> usize {
    let Some(at) = memchr2(b'\n', b'\r', input) else {
        return input.len();
    };
    let mut end = at + line_end_len(input, at);
    if let Some(b'\n' | b'\r') = input.get(end) {
        end += line_end_len(input, end);
    }
    end
}
