//! The mock's tokenizer: simple, deterministic word pieces.
//!
//! Text is cut into pieces that concatenate back to exactly the text:
//!
//! - a special token `<|…|>` (up to 32 characters, no whitespace inside) is one piece;
//! - a word (a run of letters and digits) is one piece, together with one space before it;
//! - any other character (punctuation, a symbol) is one piece, with one space before it;
//! - the whitespace left over (newlines, runs of spaces) is one piece per run.
//!
//! ```
//! use vllm_mock::tokenizer;
//!
//! assert_eq!(tokenizer::pieces("Hello, world!"), ["Hello", ",", " world", "!"]);
//! assert_eq!(tokenizer::pieces("a\n\nb  c"), ["a", "\n\n", "b", " ", " c"]);
//! assert_eq!(tokenizer::count("<|im_start|>user\nhi"), 4);
//! ```
//!
//! Each piece has a fixed id ([`token_id`]): its byte for a one-byte piece, otherwise a hash
//! of its text below [`VOCAB_SIZE`]. Every count the mock reports (usage, `/tokenize`) is a
//! number of pieces.

/// The number of token ids: ids are below it.
pub const VOCAB_SIZE: u32 = 1 << 24;

/// The longest special token `<|…|>`, in bytes.
const MAX_SPECIAL: usize = 32;

/// The pieces of `text`, in order. Joined, they give `text` back.
pub fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        if let Some(len) = special_len(rest) {
            out.push(&rest[..len]);
            i += len;
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        if c.is_whitespace() {
            let run = rest
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(rest.len());
            let followed = run < rest.len();
            // One space before a word or a symbol belongs to it, unless a special follows.
            if followed && rest[..run].ends_with(' ') && special_len(&rest[run..]).is_none() {
                if run > 1 {
                    out.push(&rest[..run - 1]);
                }
                i += run - 1;
                let len = 1 + word_len(&rest[run..]);
                out.push(&text[i..i + len]);
                i += len;
            } else {
                out.push(&rest[..run]);
                i += run;
            }
            continue;
        }
        let len = word_len(rest);
        out.push(&rest[..len]);
        i += len;
    }
    out
}

/// The number of pieces of `text`.
pub fn count(text: &str) -> u32 {
    u32::try_from(pieces(text).len()).unwrap_or(u32::MAX)
}

/// The id of a piece: its byte for a one-byte piece, otherwise 256 plus a hash (FNV-1a) of
/// its text, below [`VOCAB_SIZE`].
///
/// ```
/// use vllm_mock::tokenizer::token_id;
///
/// assert_eq!(token_id(","), 44);
/// assert_eq!(token_id(" world"), token_id(" world"));
/// assert!(token_id(" world") >= 256);
/// ```
pub fn token_id(piece: &str) -> u32 {
    if piece.len() == 1 {
        return u32::from(piece.as_bytes()[0]);
    }
    let hash = fnv1a(piece.as_bytes());
    256 + (hash % u64::from(VOCAB_SIZE - 256)) as u32
}

/// The ids of the pieces of `text`.
pub fn encode(text: &str) -> Vec<u32> {
    pieces(text).into_iter().map(token_id).collect()
}

/// FNV-1a, 64 bits: a stable hash (the same on every platform and run).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The length of the special token `rest` starts with, if it starts with one.
fn special_len(rest: &str) -> Option<usize> {
    let inner = rest.strip_prefix("<|")?;
    let end = inner.find("|>")?;
    let name = &inner[..end];
    (!name.is_empty() && end + 4 <= MAX_SPECIAL && !name.chars().any(char::is_whitespace))
        .then_some(end + 4)
}

/// The length of the word or symbol `rest` starts with (`rest` starts with neither
/// whitespace nor a special token).
fn word_len(rest: &str) -> usize {
    let mut chars = rest.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_alphanumeric() => rest
            .find(|c: char| !c.is_alphanumeric())
            .unwrap_or(rest.len()),
        Some((_, c)) => c.len_utf8(),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_join_back_to_the_text() {
        for text in [
            "",
            " ",
            "  lead",
            "trail  ",
            "Hello, world!",
            "one  two\n\n three\t4.5",
            "<|im_start|>user\nhi<|im_end|>\n",
            "a <|im_end|> b",
            "<|not special",
            "<| x |>",
            "héllo wörld — ok",
            "日本語 テキスト",
        ] {
            assert_eq!(pieces(text).concat(), text, "{text:?}");
            assert!(pieces(text).iter().all(|p| !p.is_empty()), "{text:?}");
        }
    }

    #[test]
    fn words_take_one_leading_space() {
        assert_eq!(pieces("one two  three"), ["one", " two", " ", " three"]);
        assert_eq!(pieces("a\n b"), ["a", "\n", " b"]);
        assert_eq!(pieces("x, y"), ["x", ",", " y"]);
    }

    #[test]
    fn specials_are_one_piece() {
        assert_eq!(
            pieces("<|im_start|>assistant\n"),
            ["<|im_start|>", "assistant", "\n"]
        );
        assert_eq!(pieces("a <|e|>"), ["a", " ", "<|e|>"]);
    }

    #[test]
    fn ids_are_stable_and_in_range() {
        assert_eq!(token_id("a"), 97);
        assert_eq!(token_id("hello"), token_id("hello"));
        assert_ne!(token_id("hello"), token_id(" hello"));
        assert!(
            encode("some text, with words")
                .iter()
                .all(|&id| id < VOCAB_SIZE)
        );
    }
}
