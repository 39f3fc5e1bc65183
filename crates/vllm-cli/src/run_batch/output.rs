//! The batch output: what an earlier run left in it (to resume), and appending to it, a
//! whole line at a time, synced in batches.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::input::id_hash;

/// An output line, as far as resuming reads it.
#[derive(Deserialize)]
struct OutputLine<'a> {
    custom_id: String,
    #[serde(borrow)]
    response: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Status {
    status_code: u16,
}

/// What an existing output file holds.
#[derive(Debug, Default)]
pub(crate) struct Existing {
    /// The requests with a line (the failed ones too, unless they are to be retried).
    pub(crate) done: HashSet<u128>,
    /// Lines kept that are errors.
    pub(crate) failed: usize,
    /// Lines kept.
    pub(crate) lines: usize,
    /// Where the last whole line ends, when a torn line follows it (a crash mid-write).
    torn_at: Option<u64>,
    /// The failed requests' line numbers, to drop with `--retry-failed`.
    drop_lines: Vec<usize>,
}

/// Whether an output line is a failure: an `error`, or a status outside `2xx`.
fn is_failure(line: &OutputLine<'_>) -> bool {
    if line.error.is_some_and(|e| e.get() != "null") {
        return true;
    }
    match line.response {
        Some(response) if response.get() != "null" => {
            serde_json::from_str::<Status>(response.get())
                .map_or(true, |s| !(200..300).contains(&s.status_code))
        }
        _ => true,
    }
}

/// Reads the output an earlier run left at `path` (nothing when there is none). Changes
/// nothing: [`Existing::repair`] does, once the input is known to be valid.
pub(crate) fn scan(path: &Path, retry_failed: bool) -> Result<Existing, String> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut existing = Existing::default();
    let (mut buf, mut offset, mut number) = (Vec::new(), 0u64, 0usize);
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if read == 0 {
            return Ok(existing);
        }
        number += 1;
        let whole = buf.ends_with(b"\n");
        let parsed = std::str::from_utf8(&buf)
            .ok()
            .and_then(|text| serde_json::from_str::<OutputLine<'_>>(text.trim_end()).ok());
        match parsed {
            Some(line) if whole => {
                let failed = is_failure(&line);
                if failed && retry_failed {
                    existing.drop_lines.push(number);
                } else {
                    existing.done.insert(id_hash(&line.custom_id));
                    existing.lines += 1;
                    existing.failed += usize::from(failed);
                }
            }
            // A line cut off by a crash: the last one, without its line end.
            _ if !whole => {
                existing.torn_at = Some(offset);
                return Ok(existing);
            }
            _ => {
                return Err(format!(
                    "{}:{number}: not an output line of vllm-rs run-batch; refusing to append to this file",
                    path.display()
                ));
            }
        }
        offset += read as u64;
    }
}

impl Existing {
    /// Cuts off a torn last line and, with `--retry-failed`, removes the failed lines;
    /// returns what it did, for the user.
    pub(crate) fn repair(&self, path: &Path) -> Result<Vec<String>, String> {
        let mut notes = Vec::new();
        let fail = |e: io::Error| format!("{}: {e}", path.display());
        if let Some(at) = self.torn_at {
            let file = OpenOptions::new().write(true).open(path).map_err(fail)?;
            file.set_len(at).map_err(fail)?;
            file.sync_all().map_err(fail)?;
            notes.push(
                "removed a torn last line (an earlier run stopped in the middle of writing it)"
                    .to_owned(),
            );
        }
        if !self.drop_lines.is_empty() {
            rewrite_without(path, &self.drop_lines).map_err(fail)?;
            notes.push(format!(
                "removed {}, to run them again",
                super::plural(self.drop_lines.len(), "failed line")
            ));
        }
        Ok(notes)
    }
}

/// Rewrites `path` without the lines numbered in `drop` (sorted), through a temporary file
/// renamed over it, so that a crash leaves the old file or the new one.
fn rewrite_without(path: &Path, drop: &[usize]) -> io::Result<()> {
    let tmp = sibling(path, ".rewrite");
    {
        let mut reader = BufReader::new(File::open(path)?);
        let mut writer = BufWriter::new(File::create(&tmp)?);
        let (mut buf, mut number, mut next) = (Vec::new(), 0usize, 0usize);
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            number += 1;
            if drop.get(next) == Some(&number) {
                next += 1;
                continue;
            }
            writer.write_all(&buf)?;
        }
        writer.flush()?;
        writer.get_ref().sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Where the lines go.
#[derive(Debug)]
enum Target {
    File(File),
    Stdout(io::Stdout),
}

/// The output, appended to a whole line at a time. Shared with the Ctrl-C handler, which
/// takes the lock before exiting so that no line is left half-written.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    inner: Arc<Mutex<Sink>>,
}

#[derive(Debug)]
struct Sink {
    target: Target,
    unsynced: usize,
    sync_every: usize,
    last_sync: Instant,
}

impl Output {
    /// Appends to `path` (`-`: stdout).
    pub(crate) fn open(path: &str, sync_every: usize) -> io::Result<Output> {
        let target = if path == "-" {
            Target::Stdout(io::stdout())
        } else {
            let mut file = OpenOptions::new().create(true).append(true).open(path)?;
            file.seek(SeekFrom::End(0))?;
            Target::File(file)
        };
        Ok(Output {
            inner: Arc::new(Mutex::new(Sink {
                target,
                unsynced: 0,
                sync_every: sync_every.max(1),
                last_sync: Instant::now(),
            })),
        })
    }

    fn sink(&self) -> std::sync::MutexGuard<'_, Sink> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `line` (with its `\n`) in one piece; syncs when enough lines or time have
    /// passed since the last sync.
    pub(crate) fn write_line(&self, line: &[u8]) -> io::Result<()> {
        let mut sink = self.sink();
        match &mut sink.target {
            Target::File(file) => file.write_all(line)?,
            Target::Stdout(out) => {
                let mut out = out.lock();
                out.write_all(line)?;
                out.flush()?;
            }
        }
        sink.unsynced += 1;
        if sink.unsynced >= sink.sync_every || sink.last_sync.elapsed() >= Duration::from_secs(1) {
            sink.sync()?;
        }
        Ok(())
    }

    /// Makes everything written durable.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.sink().sync()
    }

    /// Waits for any line being written, then exits the process with `code`: the file holds
    /// whole lines only.
    pub(crate) fn exit_now(&self, code: i32) -> ! {
        let mut sink = self.sink();
        let _ = sink.sync();
        std::process::exit(code)
    }
}

impl Sink {
    fn sync(&mut self) -> io::Result<()> {
        if let Target::File(file) = &self.target {
            file.sync_data()?;
        }
        self.unsynced = 0;
        self.last_sync = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, contents: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "vllm-rs-output-{}-{name}.jsonl",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        path
    }

    const OK: &str = r#"{"id":"a","custom_id":"ok-1","response":{"status_code":200,"request_id":"r","body":{}},"error":null}"#;
    const HTTP_ERROR: &str = r#"{"id":"b","custom_id":"bad-1","response":{"status_code":400,"request_id":"r","body":null},"error":{"error":{"message":"no"}}}"#;
    const FAILURE: &str =
        r#"{"id":"c","custom_id":"down-1","response":null,"error":{"message":"refused"}}"#;

    #[test]
    fn a_torn_last_line_is_cut_off_and_the_rest_kept() {
        let path = temp(
            "torn",
            &format!("{OK}\n{HTTP_ERROR}\n{{\"id\":\"d\",\"cust"),
        );
        let existing = scan(&path, false).unwrap();
        assert_eq!((existing.lines, existing.failed), (2, 1));
        assert!(existing.done.contains(&id_hash("ok-1")));
        assert!(existing.done.contains(&id_hash("bad-1")));
        let notes = existing.repair(&path).unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{OK}\n{HTTP_ERROR}\n")
        );
        // A line cut off in the middle of a character is torn too.
        let mut cut = format!("{OK}\n{{\"").into_bytes();
        cut.push(0xc3);
        std::fs::write(&path, cut).unwrap();
        scan(&path, false).unwrap().repair(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{OK}\n"));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn failed_lines_are_removed_to_be_run_again() {
        let path = temp("retry", &format!("{OK}\n{HTTP_ERROR}\n{FAILURE}\n{OK}\n"));
        let existing = scan(&path, true).unwrap();
        assert_eq!((existing.lines, existing.failed), (2, 0));
        assert!(!existing.done.contains(&id_hash("bad-1")));
        assert!(!existing.done.contains(&id_hash("down-1")));
        existing.repair(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{OK}\n{OK}\n")
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_foreign_file_is_refused_not_overwritten() {
        for (contents, at) in [("hello\nworld\n", ":1:"), ("{OK}\n{\"a\":1}\n", ":2:")] {
            let contents = contents.replace("{OK}", OK);
            let path = temp("foreign", &contents);
            let err = scan(&path, false).unwrap_err();
            assert!(err.contains(&format!("{at} not an output line")), "{err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), contents);
            std::fs::remove_file(&path).unwrap();
        }
    }
}
