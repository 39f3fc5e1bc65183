//! `vllm-rs run-batch`: the OpenAI batch format, every line once.
//!
//! 1. The output an earlier run left is read (nothing is changed yet): the `custom_id`s it
//!    holds are done.
//! 2. The whole input is checked; a problem stops the run before anything is sent (not even a
//!    connection), unless `--skip-invalid`.
//! 3. The output is repaired (a torn last line cut off; with `--retry-failed`, error lines
//!    removed), the server is reached, and the lines still to run are read again, one at a
//!    time, and sent, at most `--max-concurrency` at once. Each answer is appended as a whole
//!    line as soon as it comes (so the output is in the order answers come, not the input's),
//!    and synced every `--sync-every` lines.
//!
//! Memory: the requests in flight, and 16 bytes per `custom_id` (the hashes of the finished
//! ones, and of all while checking for duplicates), whatever the size of the input.

mod input;
mod output;
mod progress;
mod record;

use std::cell::Cell;
use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::RunBatchArgs;
use crate::exit;
use crate::setup;

use self::input::{Input, id_hash, shard_of};
use self::output::Output;
use self::progress::{Counts, Progress};

/// How many problems are printed before the rest are only counted.
const MAX_PROBLEMS_SHOWN: usize = 50;

/// A request to send.
struct Job {
    custom_id: String,
    url: &'static str,
    body: Bytes,
}

/// Runs the batch; prints what went wrong, if anything, and returns the exit code.
pub(crate) async fn run(args: RunBatchArgs) -> ExitCode {
    match run_batch(args).await {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("vllm-rs run-batch: {message}");
            code
        }
    }
}

type Failure = (ExitCode, String);

fn usage(message: impl Into<String>) -> Failure {
    (exit::usage(), message.into())
}

/// Checks the flags that clap cannot.
fn check_flags(args: &RunBatchArgs) -> Result<(), Failure> {
    if args.max_concurrency == 0 {
        return Err(usage("--max-concurrency must be at least 1"));
    }
    if let Some(rate) = args.request_rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(usage(format!(
                "--request-rate must be a number of requests per second above 0, not {rate}"
            )));
        }
    }
    if args.input != "-" && args.output != "-" {
        let same = std::fs::canonicalize(&args.input)
            .ok()
            .zip(std::fs::canonicalize(&args.output).ok())
            .is_some_and(|(a, b)| a == b);
        if same {
            return Err(usage(format!(
                "the input and the output are the same file ({})",
                args.output
            )));
        }
    }
    Ok(())
}

async fn run_batch(args: RunBatchArgs) -> Result<ExitCode, Failure> {
    check_flags(&args)?;
    let writes_file = args.output != "-";

    // 1. What an earlier run finished.
    let existing = if writes_file {
        output::scan(args.output.as_ref(), args.retry_failed).map_err(usage)?
    } else {
        output::Existing::default()
    };

    // 2. The whole input, before anything is sent.
    let input =
        Input::open(&args.input).map_err(|e| usage(format!("cannot read {}: {e}", args.input)))?;
    let shard = args.shard;
    let already = Cell::new(0usize);
    let checked = input::check(&input, |line| {
        if shard.is_some_and(|(i, n)| shard_of(&line.custom_id, n) != i) {
            return false;
        }
        if existing.done.contains(&id_hash(&line.custom_id)) {
            already.set(already.get() + 1);
            return false;
        }
        true
    })
    .map_err(|e| usage(format!("cannot read {}: {e}", input.name)))?;
    for problem in checked.problems.iter().take(MAX_PROBLEMS_SHOWN) {
        eprintln!("{problem}");
    }
    if checked.problems.len() > MAX_PROBLEMS_SHOWN {
        eprintln!(
            "… and {} more",
            plural(checked.problems.len() - MAX_PROBLEMS_SHOWN, "problem")
        );
    }
    if !checked.problems.is_empty() {
        if !args.skip_invalid {
            return Err(usage(format!(
                "{} in {}; nothing was sent (fix them, or pass --skip-invalid to run the valid lines)",
                plural(checked.problems.len(), "invalid line"),
                input.name
            )));
        }
        eprintln!(
            "vllm-rs run-batch: skipping {} (--skip-invalid)",
            plural(checked.problems.len(), "invalid line")
        );
    }

    // 3. Repair the output, reach the server, and run what is left.
    if writes_file {
        for note in existing.repair(args.output.as_ref()).map_err(usage)? {
            eprintln!("vllm-rs run-batch: {}: {note}", args.output);
        }
    }
    let already = already.get();
    let earlier_failures = existing.failed;
    let some_invalid = !checked.problems.is_empty();
    if checked.to_run == 0 {
        eprintln!(
            "vllm-rs run-batch: nothing to run: {} done by an earlier run{}",
            plural(already, "line"),
            if writes_file {
                format!(" (in {})", args.output)
            } else {
                String::new()
            }
        );
        return Ok(exit_code(false, earlier_failures > 0 || some_invalid));
    }
    let server = setup::connect(&args.server).await.map_err(usage)?;
    let model = if checked.needs_model {
        Some(
            server
                .model(args.server.model.as_deref())
                .await
                .map_err(|e| (exit::partial(), e))?,
        )
    } else {
        None
    };
    let output = Output::open(&args.output, args.sync_every)
        .map_err(|e| usage(format!("cannot write {}: {e}", args.output)))?;

    let counts = Arc::new(Counts::default());
    let progress = Arc::new(Mutex::new(Progress::new(
        counts.clone(),
        checked.to_run as u64,
    )));
    let (stop_tx, stop) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let interrupted = Arc::new(AtomicBool::new(false));
    let ctrl_c = tokio::spawn(on_ctrl_c(
        stop_tx.clone(),
        interrupted.clone(),
        output.clone(),
        progress.clone(),
    ));
    let ticker = tokio::spawn({
        let progress = progress.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_millis(200));
            loop {
                every.tick().await;
                lock(&progress).tick();
            }
        }
    });

    // The reader: the lines to run, read again one at a time.
    let (jobs_tx, jobs) = mpsc::channel::<Job>(args.max_concurrency.clamp(16, 1024));
    let reader = {
        let skip = checked.skip;
        let done = existing.done;
        let model = model.clone();
        std::thread::spawn(move || read_jobs(&input, &skip, &done, shard, model, jobs_tx))
    };

    let write_error = Arc::new(Mutex::new(None::<String>));
    dispatch(
        &args,
        server.client.clone(),
        jobs,
        stop,
        &output,
        &counts,
        &write_error,
        &stop_tx,
    )
    .await;
    // The reader stops once its channel is gone; it only ever waits on that channel.
    let read = reader
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the input reader stopped")));
    ticker.abort();
    ctrl_c.abort();
    let synced = output.sync();

    let interrupted = interrupted.load(Ordering::SeqCst);
    let write_error = lock(&write_error).take();
    let how = if interrupted {
        "interrupted"
    } else if write_error.is_some() {
        "stopped"
    } else {
        "done"
    };
    lock(&progress).finish(how, already, &args.output);
    if let Some(error) = write_error {
        return Err((
            exit::partial(),
            format!("cannot write {}: {error}; a rerun resumes", args.output),
        ));
    }
    if let Err(e) = synced {
        return Err((exit::partial(), format!("cannot sync {}: {e}", args.output)));
    }
    if let Err(e) = read {
        return Err((exit::partial(), format!("cannot read {}: {e}", args.input)));
    }
    if interrupted {
        return Ok(exit::interrupted());
    }
    let failed = counts.failed.load(Ordering::Relaxed) > 0;
    Ok(exit_code(
        false,
        failed || earlier_failures > 0 || some_invalid,
    ))
}

/// `1 line`, `2 lines`.
pub(crate) fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn exit_code(interrupted: bool, some_failed: bool) -> ExitCode {
    if interrupted {
        exit::interrupted()
    } else if some_failed {
        exit::partial()
    } else {
        ExitCode::SUCCESS
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads the input again and sends the lines to run, until the end or until the dispatcher
/// is gone.
fn read_jobs(
    input: &Input,
    skip: &HashSet<usize>,
    done: &HashSet<u128>,
    shard: Option<(u64, u64)>,
    model: Option<String>,
    jobs: mpsc::Sender<Job>,
) -> std::io::Result<()> {
    input.for_each_line(|number, text| {
        if skip.contains(&number) {
            return true;
        }
        // Checked already: a line that fails now was changed since, and is left out.
        let Some(line) = text.ok().and_then(|t| input::parse(t).ok()) else {
            return true;
        };
        if shard.is_some_and(|(i, n)| shard_of(&line.custom_id, n) != i)
            || done.contains(&id_hash(&line.custom_id))
        {
            return true;
        }
        let body = match (&model, line.has_model) {
            (Some(model), false) => Bytes::from(input::with_model(line.body, model)),
            _ => Bytes::copy_from_slice(line.body.as_bytes()),
        };
        jobs.blocking_send(Job {
            custom_id: line.custom_id,
            url: line.url,
            body,
        })
        .is_ok()
    })
}

/// Sends the jobs, at most `--max-concurrency` at once and at most `--request-rate` a
/// second, until they run out or `stop` says so; then waits for the ones in flight.
#[allow(clippy::too_many_arguments)]
async fn dispatch(
    args: &RunBatchArgs,
    client: vllm_client::VllmClient,
    mut jobs: mpsc::Receiver<Job>,
    mut stop: watch::Receiver<bool>,
    output: &Output,
    counts: &Arc<Counts>,
    write_error: &Arc<Mutex<Option<String>>>,
    stop_tx: &Arc<watch::Sender<bool>>,
) {
    let slots = Arc::new(Semaphore::new(args.max_concurrency));
    let gap = args
        .request_rate
        .map(|rate| Duration::from_secs_f64(1.0 / rate));
    let mut next_at = Instant::now();
    let mut tasks = JoinSet::new();
    loop {
        let job = tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => break,
            job = jobs.recv() => job,
        };
        let Some(job) = job else { break };
        if let Some(gap) = gap {
            tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => break,
                () = tokio::time::sleep_until(next_at) => {}
            }
            next_at = (next_at + gap).max(Instant::now());
        }
        let slot = tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => break,
            slot = slots.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let (client, output, counts) = (client.clone(), output.clone(), counts.clone());
        let (write_error, stop_tx) = (write_error.clone(), stop_tx.clone());
        tasks.spawn(async move {
            let result = client.post_raw(job.url, job.body).await;
            let record = record::record(&job.custom_id, result);
            match output.write_line(&record.line) {
                Ok(()) => counts.add(record.failed, record.output_tokens),
                Err(e) => {
                    lock(&write_error).get_or_insert_with(|| e.to_string());
                    stop_tx.send_replace(true);
                }
            }
            drop(slot);
        });
        while tasks.try_join_next().is_some() {}
    }
    drop(jobs);
    while tasks.join_next().await.is_some() {}
}

/// The first Ctrl-C stops dispatching and lets the requests in flight finish; the second
/// exits at once, once no line is half-written.
async fn on_ctrl_c(
    stop: Arc<watch::Sender<bool>>,
    interrupted: Arc<AtomicBool>,
    output: Output,
    progress: Arc<Mutex<Progress>>,
) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    interrupted.store(true, Ordering::SeqCst);
    stop.send_replace(true);
    lock(&progress).say(
        "vllm-rs run-batch: interrupted: sending nothing more, waiting for the requests in flight \
         (Ctrl-C again to stop at once; a rerun with the same output runs the rest)",
    );
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!("vllm-rs run-batch: stopped at once; a rerun with the same output runs the rest");
        output.exit_now(130);
    }
}
