//! The batch input: its lines checked, all of them, before anything is sent; then read again
//! one at a time as they are sent.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The urls a batch line may name (the OpenAI batch format's, and vLLM's scoring routes
/// with and without `/v1`, as vLLM's run-batch takes them).
pub(crate) const URLS: [&str; 7] = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/score",
    "/v1/rerank",
    "/score",
    "/rerank",
];

/// A batch line as the OpenAI batch format has it.
#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(borrow)]
    custom_id: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    url: Option<&'a RawValue>,
    #[serde(borrow)]
    body: Option<&'a RawValue>,
}

/// The members of a body the runner looks at (the rest goes to the server as it is).
#[derive(Deserialize)]
struct BodyPeek<'a> {
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    #[serde(borrow)]
    stream: Option<&'a RawValue>,
}

/// A valid batch line.
#[derive(Debug)]
pub(crate) struct Line<'a> {
    pub(crate) custom_id: String,
    pub(crate) url: &'static str,
    /// The request body, JSON as it is in the file.
    pub(crate) body: &'a str,
    /// Whether the body names its model (if not, the runner adds the default one).
    pub(crate) has_model: bool,
}

/// What is wrong with a line.
pub(crate) type Problem = String;

/// Checks one line of text.
pub(crate) fn parse(text: &str) -> Result<Line<'_>, Problem> {
    if text.trim().is_empty() {
        return Err("an empty line".into());
    }
    let raw: RawLine<'_> = serde_json::from_str(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            format!("not valid JSON ({e})")
        } else {
            format!("not a batch request object ({e})")
        }
    })?;
    let custom_id: String = match raw.custom_id {
        None => return Err("missing `custom_id`".into()),
        Some(value) => serde_json::from_str(value.get())
            .map_err(|_| format!("`custom_id` must be a string, not {}", value.get()))?,
    };
    if custom_id.is_empty() {
        return Err("`custom_id` is empty".into());
    }
    let method: String = match raw.method {
        None => return Err("missing `method`".into()),
        Some(value) => serde_json::from_str(value.get())
            .map_err(|_| format!("`method` must be a string, not {}", value.get()))?,
    };
    if method != "POST" {
        return Err(format!("unsupported method {method:?} (only POST)"));
    }
    let url: String = match raw.url {
        None => return Err("missing `url`".into()),
        Some(value) => serde_json::from_str(value.get())
            .map_err(|_| format!("`url` must be a string, not {}", value.get()))?,
    };
    let url = URLS
        .iter()
        .find(|u| **u == url)
        .copied()
        .ok_or_else(|| format!("unsupported url {url:?} (supported: {})", URLS.join(", ")))?;
    let body = raw.body.ok_or("missing `body`")?.get();
    if !body.starts_with('{') {
        return Err(format!(
            "`body` must be a JSON object, not {}",
            snippet(body)
        ));
    }
    let peek: BodyPeek<'_> =
        serde_json::from_str(body).map_err(|e| format!("`body` is not valid: {e}"))?;
    if peek.stream.is_some_and(|s| s.get() == "true") {
        return Err(
            "`body` asks for a stream (\"stream\": true); a batch answer is written whole, remove it"
                .into(),
        );
    }
    Ok(Line {
        custom_id,
        url,
        body,
        has_model: peek.model.is_some_and(|m| m.get() != "null"),
    })
}

/// `body` (a JSON object) with `"model": model` added first.
pub(crate) fn with_model(body: &str, model: &str) -> Vec<u8> {
    let rest = &body[1..];
    let name = serde_json::to_string(model).unwrap_or_else(|_| "\"\"".to_owned());
    let mut out = Vec::with_capacity(body.len() + name.len() + 10);
    out.extend_from_slice(b"{\"model\":");
    out.extend_from_slice(name.as_bytes());
    if !rest.trim_start().starts_with('}') {
        out.push(b',');
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

fn snippet(text: &str) -> String {
    let mut end = text.len().min(40);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < text.len() {
        format!("{}…", &text[..end])
    } else {
        text.to_owned()
    }
}

/// A 128-bit hash of a `custom_id`, to keep a compact set of ids (two SipHash keys; a
/// collision between two ids of one batch is not a practical concern).
pub(crate) fn id_hash(custom_id: &str) -> u128 {
    let half = |salt: u8| {
        let mut hasher = DefaultHasher::new();
        salt.hash(&mut hasher);
        custom_id.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// The shard of a `custom_id` among `n`: FNV-1a of its bytes, the same on every machine and
/// every version.
pub(crate) fn shard_of(custom_id: &str, n: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in custom_id.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % n
}

/// The input file (stdin is copied to a temporary file first, to be read twice).
#[derive(Debug)]
pub(crate) struct Input {
    /// The name errors give (`<stdin>` for stdin).
    pub(crate) name: String,
    path: PathBuf,
    /// Removed when the input is dropped.
    spooled: bool,
}

impl Drop for Input {
    fn drop(&mut self) {
        if self.spooled {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Input {
    /// The input named `name` (`-`: stdin).
    pub(crate) fn open(name: &str) -> io::Result<Input> {
        if name != "-" {
            File::open(name)?;
            return Ok(Input {
                name: name.to_owned(),
                path: PathBuf::from(name),
                spooled: false,
            });
        }
        let path = std::env::temp_dir().join(format!(
            "vllm-rs-batch-{}-{}.jsonl",
            std::process::id(),
            id_hash(&format!("{:?}", std::time::SystemTime::now())) as u64
        ));
        let mut file = File::create(&path)?;
        io::copy(&mut io::stdin().lock(), &mut file)?;
        file.flush()?;
        Ok(Input {
            name: "<stdin>".to_owned(),
            path,
            spooled: true,
        })
    }

    /// Reads the lines, calling `each(number, text)` for each (numbers from 1). A line that is
    /// not UTF-8 is given as an error.
    pub(crate) fn for_each_line(
        &self,
        mut each: impl FnMut(usize, Result<&str, Problem>) -> bool,
    ) -> io::Result<()> {
        let mut reader = BufReader::with_capacity(1 << 16, File::open(&self.path)?);
        let mut buf = Vec::new();
        let mut number = 0;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            number += 1;
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8 ({e})"));
            if !each(number, text) {
                return Ok(());
            }
        }
    }
}

/// What checking the whole input found.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// Every problem, as `file:line: problem`.
    pub(crate) problems: Vec<String>,
    /// The lines to skip (invalid ones, and second uses of a `custom_id`), by number.
    pub(crate) skip: std::collections::HashSet<usize>,
    /// How many valid lines there are.
    pub(crate) valid: usize,
    /// How many valid lines `wanted` keeps (the ones to run).
    pub(crate) to_run: usize,
    /// Whether a line to run has no `model` in its body.
    pub(crate) needs_model: bool,
}

/// Checks every line of `input`: JSON, the members, the url, duplicate `custom_id`s; counts
/// the valid lines `wanted` keeps.
pub(crate) fn check(input: &Input, wanted: impl Fn(&Line<'_>) -> bool) -> io::Result<Checked> {
    let mut checked = Checked::default();
    let mut first_use: HashMap<u128, usize> = HashMap::new();
    input.for_each_line(|number, text| {
        // Blank lines are left out, as vLLM's run-batch leaves them out (the reader's
        // `parse` refuses them).
        if text.as_ref().is_ok_and(|t| t.trim().is_empty()) {
            return true;
        }
        let problem = match text.and_then(parse) {
            Ok(line) => match first_use.entry(id_hash(&line.custom_id)) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(number);
                    if wanted(&line) {
                        checked.to_run += 1;
                        checked.needs_model |= !line.has_model;
                    }
                    None
                }
                std::collections::hash_map::Entry::Occupied(first) => Some(format!(
                    "duplicate custom_id {:?} (first at line {})",
                    line.custom_id,
                    first.get()
                )),
            },
            Err(problem) => Some(problem),
        };
        match problem {
            Some(problem) => {
                checked
                    .problems
                    .push(format!("{}:{number}: {problem}", input.name));
                checked.skip.insert(number);
            }
            None => checked.valid += 1,
        }
        true
    })?;
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_line_keeps_its_body_as_it_is() {
        let line = parse(
            r#"{"custom_id": "req-1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [ ]}}"#,
        )
        .unwrap();
        assert_eq!(line.custom_id, "req-1");
        assert_eq!(line.url, "/v1/chat/completions");
        assert_eq!(line.body, r#"{"model": "m", "messages": [ ]}"#);
    }

    #[test]
    fn every_problem_is_named() {
        for (text, says) in [
            ("", "an empty line"),
            ("{nope", "not valid JSON"),
            ("[1]", "not a batch request object"),
            (
                r#"{"method":"POST","url":"/v1/embeddings","body":{}}"#,
                "missing `custom_id`",
            ),
            (
                r#"{"custom_id":5,"method":"POST","url":"/v1/embeddings","body":{}}"#,
                "`custom_id` must be a string",
            ),
            (
                r#"{"custom_id":"","method":"POST","url":"/v1/embeddings","body":{}}"#,
                "`custom_id` is empty",
            ),
            (
                r#"{"custom_id":"a","method":"GET","url":"/v1/embeddings","body":{}}"#,
                "unsupported method \"GET\"",
            ),
            (
                r#"{"custom_id":"a","method":"POST","url":"/v1/responses","body":{}}"#,
                "unsupported url \"/v1/responses\" (supported: /v1/chat/completions",
            ),
            (
                r#"{"custom_id":"a","method":"POST","url":"/v1/embeddings"}"#,
                "missing `body`",
            ),
            (
                r#"{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":[1]}"#,
                "`body` must be a JSON object",
            ),
            (
                r#"{"custom_id":"a","method":"POST","url":"/v1/completions","body":{"prompt":"x","stream":true}}"#,
                "asks for a stream",
            ),
        ] {
            let problem = parse(text).unwrap_err();
            assert!(problem.contains(says), "{text}: {problem}");
        }
    }

    #[test]
    fn the_default_model_goes_first() {
        assert_eq!(
            String::from_utf8(with_model(r#"{"prompt": "x"}"#, "m")).unwrap(),
            r#"{"model":"m","prompt": "x"}"#
        );
        assert_eq!(
            String::from_utf8(with_model("{ }", "a\"b")).unwrap(),
            r#"{"model":"a\"b" }"#
        );
        let line = parse(r#"{"custom_id":"a","method":"POST","url":"/v1/completions","body":{"prompt":"x","model":null}}"#).unwrap();
        assert!(!line.has_model);
        let line = parse(r#"{"custom_id":"a","method":"POST","url":"/v1/completions","body":{"prompt":"x","model":"m","stream":false}}"#).unwrap();
        assert!(line.has_model);
    }

    #[test]
    fn duplicates_name_the_first_line_and_only_wanted_lines_count() {
        let dir = std::env::temp_dir().join(format!("vllm-rs-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.jsonl");
        let line = |id: &str| {
            format!(
                r#"{{"custom_id":"{id}","method":"POST","url":"/v1/completions","body":{{"prompt":"x"}}}}"#
            )
        };
        std::fs::write(
            &path,
            [
                line("a"),
                line("b"),
                "oops".into(),
                line("a"),
                " ".into(),
                line("c"),
            ]
            .join("\n"),
        )
        .unwrap();
        let input = Input::open(path.to_str().unwrap()).unwrap();
        let checked = check(&input, |l| l.custom_id != "b").unwrap();
        let name = path.display();
        assert_eq!(
            checked.problems,
            [
                format!("{name}:3: not valid JSON (expected value at line 1 column 1)"),
                format!("{name}:4: duplicate custom_id \"a\" (first at line 1)"),
            ]
        );
        assert_eq!(
            (checked.valid, checked.to_run, checked.needs_model),
            (3, 2, true)
        );
        assert_eq!(checked.skip, [3, 4].into_iter().collect());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // FNV-1a: fixed forever, whatever the platform or version.
        assert_eq!(shard_of("req-1", 1_000_000), 870_097);
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[shard_of(&format!("req-{i}"), 4) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    }
}
