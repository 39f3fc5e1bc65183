//! Running the `vllm-rs` binary in tests: bounded in time, its output captured.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};

/// The longest any one run of the binary may take in a test.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A `vllm-rs` command with a clean environment for the server settings.
pub fn vllm_rs(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vllm-rs"));
    command
        .args(args)
        .env_remove("VLLM_BASE_URL")
        .env_remove("VLLM_API_KEY")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A `vllm-rs` command from one line of arguments separated by spaces (none may contain
/// one).
pub fn vllm_rs_line(line: &str) -> Command {
    vllm_rs(&line.split_whitespace().collect::<Vec<_>>())
}

/// Runs `command` to the end, with `stdin` as its input.
pub async fn run(mut command: Command, stdin: Option<&[u8]>) -> Output {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("vllm-rs starts");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(bytes).await.expect("stdin takes the input");
        drop(pipe);
    }
    tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("vllm-rs finishes in time")
        .expect("vllm-rs runs")
}

/// Starts `command` without waiting for it.
pub fn start(mut command: Command) -> Child {
    command.spawn().expect("vllm-rs starts")
}

/// Sends SIGINT to a running child.
pub fn interrupt(child: &Child) {
    let pid = child.id().expect("the child runs") as libc::pid_t;
    // SAFETY: `kill` only sends a signal to the process we started; no memory is shared.
    let sent = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(sent, 0, "SIGINT sent");
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A fresh directory for one test (removed by the test when it passes).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vllm-rs-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// How many whole lines `path` holds (0 if it does not exist).
pub fn line_count(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

/// The output lines by `custom_id`, each checked to be a whole JSON object, with what varies
/// between runs (ids, timestamps) taken out. Fails on a `custom_id` seen twice.
pub fn results(path: &Path) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the output ends with a whole line"
    );
    let mut by_id = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let mut value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("output line {} is not JSON ({e}): {line}", n + 1));
        let id = value["id"].as_str().expect("an id").to_owned();
        assert!(id.starts_with("vllm-rs-"), "{id}");
        let custom_id = value["custom_id"].as_str().expect("a custom_id").to_owned();
        let object = value.as_object_mut().unwrap();
        object.remove("id");
        if let Some(response) = object.get_mut("response").and_then(Value::as_object_mut) {
            response.remove("request_id");
            if let Some(body) = response.get_mut("body").and_then(Value::as_object_mut) {
                body.remove("id");
                body.remove("created");
            }
        }
        assert!(
            by_id.insert(custom_id.clone(), value).is_none(),
            "custom_id {custom_id} is in the output twice"
        );
    }
    by_id
}

/// A JSON object's members in file order.
pub fn ordered(text: &str) -> Vec<(String, Value)> {
    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<(String, Value)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut members = Vec::new();
            while let Some(member) = map.next_entry::<String, Value>()? {
                members.push(member);
            }
            Ok(members)
        }
    }
    serde_json::Deserializer::from_str(text)
        .deserialize_map(Members)
        .unwrap()
}

/// The JSON type of `value`, telling integers from floats as Python's `json` writes them.
pub fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) if n.is_f64() => "float".into(),
        Value::Number(_) => "int".into(),
        Value::String(_) => "str".into(),
        Value::Array(items) => format!("[{}]", items.first().map_or("".into(), kind)),
        Value::Object(_) => "object".into(),
    }
}

/// A capture of vLLM's own `bench serve` from `tests/fixtures/vllm-bench/`.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/vllm-bench")
            .join(name),
    )
    .expect("the fixture exists")
}

/// Asserts that a result of ours has the keys, order and JSON types of vLLM's `theirs`,
/// with vllm-rs's own object last.
pub fn assert_same_shape(ours: &str, theirs: &str, what: &str) {
    let ours = ordered(ours);
    let theirs = ordered(theirs);
    let our_keys: Vec<&str> = ours
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| *k != "vllm_rs")
        .collect();
    let their_keys: Vec<&str> = theirs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(our_keys, their_keys, "{what}: the keys");
    for ((key, ours), (_, theirs)) in ours.iter().filter(|(k, _)| k != "vllm_rs").zip(&theirs) {
        assert_eq!(kind(ours), kind(theirs), "{what}: the type of {key}");
    }
    // vllm-rs's own measurements come last, under one key.
    assert_eq!(ours.last().unwrap().0, "vllm_rs");
}
