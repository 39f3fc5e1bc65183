//! `vllm-rs run-batch` on a large batch against the zero-delay mock: what the client costs
//! per request.
//!
//! `cargo bench -p vllm-benches --bench batch_run` writes a 1,000,000-line batch of greedy
//! chat requests, serves them from an in-process vllm-mock (no pacing, no record), and runs
//! `vllm-rs run-batch` on it in a child process (this binary again, calling
//! `vllm_cli::run`). It prints the wall time, the child's CPU time (user + system, from
//! `wait4`) per request, and its peak RSS (`ru_maxrss`), and checks that the output holds
//! every line once. Without `--bench` (as `cargo test --benches` runs it) the batch has
//! 10,000 lines. `BATCH_LINES=N` and `BATCH_CONCURRENCY=N` change the size and
//! `--max-concurrency` (64).
//!
//! `BATCH_PYTHON=/path/to/python` (a Python with the `openai` package) runs, in the same run,
//! the same batch through `benches/python/batch_openai.py`, the script a Python user writes
//! today (`AsyncOpenAI` and a semaphore), against the same mock, and prints the same figures;
//! `BATCH_PYTHON_LINES=N` (default: the batch's size) runs it on the first N lines only.

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "cli") {
        // The child: `vllm-rs` itself, with the arguments after `cli`.
        let mut cli = vec![std::ffi::OsString::from("vllm-rs")];
        cli.extend(args.into_iter().skip(2));
        return vllm_cli::run(cli);
    }
    let full = args.iter().any(|a| a == "--bench");
    match run(full) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("batch_run: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env_number(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .map_err(|_| format!("{name}={text} is not a whole number")),
        Err(_) => Ok(default),
    }
}

/// Writes `lines` greedy chat requests, each with its own prompt.
fn write_batch(path: &Path, lines: usize) -> std::io::Result<u64> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for i in 0..lines {
        writeln!(
            out,
            r#"{{"custom_id":"request-{i}","method":"POST","url":"/v1/chat/completions","body":{{"model":"echo","messages":[{{"role":"system","content":"You are a helpful assistant."}},{{"role":"user","content":"Summarize item {i} of the batch in a few words."}}],"temperature":0,"max_tokens":16}}}}"#
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The child's exit status, CPU time (user + system) and peak RSS in KiB, from `wait4`.
fn wait4(pid: u32) -> Result<(i32, Duration, u64), String> {
    let mut status = 0;
    // SAFETY: both out-parameters live for the call; an all-zero `rusage` is a valid value
    // of that plain C struct. `pid` is our own child, not yet waited for.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let waited = libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage);
        if waited < 0 {
            return Err(format!("wait4: {}", std::io::Error::last_os_error()));
        }
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((
        code,
        tv(usage.ru_utime) + tv(usage.ru_stime),
        usage.ru_maxrss as u64,
    ))
}

/// Checks that `path` holds one successful line per request, each `custom_id` once.
fn check_output(path: &Path, lines: usize) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut seen = HashSet::with_capacity(lines);
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("an output line is not JSON: {e}"))?;
        if value["response"]["status_code"] != 200 {
            return Err(format!("a request failed: {line}"));
        }
        let id = value["custom_id"].as_str().unwrap_or_default().to_owned();
        if !seen.insert(id) {
            return Err(format!("a custom_id is in the output twice: {line}"));
        }
    }
    if seen.len() != lines {
        return Err(format!("{} output lines for {lines} requests", seen.len()));
    }
    Ok(())
}

fn run(full: bool) -> Result<(), String> {
    let lines = env_number("BATCH_LINES", if full { 1_000_000 } else { 10_000 })?;
    let concurrency = env_number("BATCH_CONCURRENCY", 64)?;
    let dir = std::env::temp_dir().join(format!("vllm-rs-batch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (input, output) = (dir.join("in.jsonl"), dir.join("out.jsonl"));
    let bytes = write_batch(&input, lines).map_err(|e| format!("writing the batch: {e}"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mock = runtime
        .block_on(
            vllm_mock::MockServer::builder()
                .record_requests(false)
                .start(),
        )
        .map_err(|e| format!("the mock: {e}"))?;

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command
        .arg("cli")
        .args(["run-batch", "-i"])
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .args(["--base-url", &mock.base_url()])
        .args(["--max-concurrency", &concurrency.to_string()]);
    let ours = measure(command, &output, lines)?;
    let output_bytes = std::fs::metadata(&output).map_or(0, |m| m.len());
    println!(
        "batch_run: {lines} lines ({:.1} MiB in, {:.1} MiB out), concurrency {concurrency}, zero-delay mock in the parent process",
        bytes as f64 / 1048576.0,
        output_bytes as f64 / 1048576.0
    );
    ours.print("vllm-rs run-batch");
    println!("  goals (issue 17): at most 50 µs CPU per request, peak RSS under 200 MiB");

    if let Some(python) = std::env::var_os("BATCH_PYTHON") {
        let python_lines = env_number("BATCH_PYTHON_LINES", lines)?.min(lines);
        let python_input = dir.join("in-python.jsonl");
        write_batch(&python_input, python_lines).map_err(|e| e.to_string())?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/batch_openai.py");
        let python_output = dir.join("out-python.jsonl");
        let mut command = Command::new(python);
        command
            .arg(script)
            .arg(&python_input)
            .arg(&python_output)
            .arg(mock.base_url())
            .arg(concurrency.to_string());
        let theirs = measure(command, &python_output, python_lines)?;
        theirs.print("Python AsyncOpenAI");
        println!(
            "  CPU per request: vllm-rs {:.1} µs vs Python {:.1} µs ({:.1}x less)",
            ours.cpu_per_request_us(),
            theirs.cpu_per_request_us(),
            theirs.cpu_per_request_us() / ours.cpu_per_request_us()
        );
    }
    drop(mock);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// What one run of a batch tool cost.
struct Measured {
    lines: usize,
    wall: Duration,
    cpu: Duration,
    max_rss_kib: u64,
}

impl Measured {
    fn cpu_per_request_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.lines as f64
    }

    fn print(&self, who: &str) {
        println!(
            "  {who}: {} lines, wall {:.2} s ({:.0} requests/s); CPU {:.2} s = {:.1} µs per request; peak RSS {:.1} MiB",
            self.lines,
            self.wall.as_secs_f64(),
            self.lines as f64 / self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.cpu_per_request_us(),
            self.max_rss_kib as f64 / 1024.0
        );
    }
}

/// Runs `command` (which writes `lines` results to `output`) to the end and measures it.
fn measure(mut command: Command, output: &Path, lines: usize) -> Result<Measured, String> {
    let started = Instant::now();
    let child = command
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("{command:?}: {e}"))?;
    let (code, cpu, max_rss_kib) = wait4(child.id())?;
    let wall = started.elapsed();
    if code != 0 {
        return Err(format!("{command:?} exited with {code}"));
    }
    check_output(output, lines)?;
    Ok(Measured {
        lines,
        wall,
        cpu,
        max_rss_kib,
    })
}
