//! `vllm-rs bench serve`: a load generator that measures the server, not itself.
//!
//! The flags are `vllm bench serve`'s where the meaning is the same, the result file has its
//! keys and types, and its table is printed the same way; vllm-rs adds its own measurements
//! of itself (CPU, send lag, wake-up lag, and the read lag of chunks a server stamped with
//! their send time) and says when the client, not the server, set the pace.

pub(crate) mod args;
mod dataset;
mod html;
mod request;
mod result;
mod run;
mod schedule;
mod scrape;
mod stats;

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use self::args::{Backend, BenchCommand, ServeArgs};
use self::request::Settings;
use self::result::{Config, Ordered};
use self::run::{Load, Outcome, Progress};
use self::schedule::Rate;
use crate::{exit, setup};

type Failure = (ExitCode, String);

fn usage(message: impl Into<String>) -> Failure {
    (exit::usage(), message.into())
}

/// Runs `vllm-rs bench …`.
pub(crate) async fn run(command: BenchCommand) -> ExitCode {
    let result = match command {
        BenchCommand::Serve(args) => serve(*args).await,
    };
    match result {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("vllm-rs bench serve: {message}");
            code
        }
    }
}

/// One point of a sweep.
#[derive(Debug, Clone, Copy)]
struct Point {
    rate: Rate,
    max_concurrency: Option<usize>,
}

/// The sweep `--request-rate` and `--max-concurrency` describe (one of them may be a list).
fn points(args: &ServeArgs) -> Result<Vec<Point>, String> {
    let rates = args
        .request_rate
        .split(',')
        .map(Rate::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let concurrencies: Vec<Option<usize>> = match &args.max_concurrency {
        None => vec![None],
        Some(list) => list
            .split(',')
            .map(|c| {
                c.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|c| *c > 0)
                    .map(Some)
                    .ok_or_else(|| format!("--max-concurrency {c:?}: want a whole number above 0"))
            })
            .collect::<Result<_, _>>()?,
    };
    if rates.len() > 1 && concurrencies.len() > 1 {
        return Err(
            "sweep --request-rate or --max-concurrency, not both (one curve at a time)".into(),
        );
    }
    Ok(rates
        .iter()
        .flat_map(|rate| {
            concurrencies.iter().map(|c| Point {
                rate: *rate,
                max_concurrency: *c,
            })
        })
        .collect())
}

/// The base URLs: `--base-url` (each with `/v1` added when it has none, as vLLM's spelling
/// is the server's root; several are replicas), or `--host`/`--port`.
fn base_urls(args: &ServeArgs) -> Vec<String> {
    let given: Vec<&str> = args
        .server
        .base_url
        .iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .collect();
    let urls = match (given.is_empty(), &args.host, args.port) {
        (false, _, _) => given.into_iter().map(str::to_owned).collect(),
        (true, None, None) => return Vec::new(),
        (true, host, port) => vec![format!(
            "http://{}:{}",
            host.as_deref().unwrap_or("127.0.0.1"),
            port.unwrap_or(8000)
        )],
    };
    urls.into_iter()
        .map(|url| {
            let url = url.trim_end_matches('/');
            if url.ends_with("/v1") {
                url.to_owned()
            } else {
                format!("{url}/v1")
            }
        })
        .collect()
}

async fn serve(args: ServeArgs) -> Result<ExitCode, Failure> {
    // Everything that can be wrong with the flags, before anything is sent.
    let backend = match &args.endpoint {
        Some(endpoint) => Backend::of_endpoint(endpoint).map_err(usage)?,
        None => Backend::parse(&args.backend).map_err(usage)?,
    };
    let backend_name = match Backend::parse(&args.backend) {
        Ok(named) if named == backend => args.backend.clone(),
        _ => match backend {
            Backend::Chat => "openai-chat".to_owned(),
            Backend::Completions => "openai".to_owned(),
            Backend::Embeddings => "openai-embeddings".to_owned(),
        },
    };
    if backend != Backend::Chat && args.dataset_name == args::DatasetName::MultiTurn {
        return Err(usage(
            "--dataset-name multi-turn needs the chat API (--backend openai-chat)",
        ));
    }
    let points = points(&args).map_err(usage)?;
    let metrics = result::parse_metrics(args.percentile_metrics.as_deref().unwrap_or(
        if backend == Backend::Embeddings {
            "e2el"
        } else {
            "ttft,tpot,itl"
        },
    ))
    .map_err(usage)?;
    let percentiles = result::parse_percentiles(&args.metric_percentiles).map_err(usage)?;
    let goodput = result::parse_goodput(&args.goodput).map_err(usage)?;
    let metadata = args
        .metadata
        .iter()
        .flat_map(|m| m.split_whitespace())
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| usage(format!("--metadata {item:?}: want KEY=VALUE")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(duration) = args.duration {
        if !(duration.is_finite() && duration > 0.0) {
            return Err(usage(format!(
                "--duration {duration}: want seconds above 0"
            )));
        }
    }
    if args.num_prompts == 0 {
        return Err(usage("--num-prompts must be at least 1"));
    }

    let mut server_args = args.server.clone();
    server_args.base_url = base_urls(&args);
    // No retries: a retried request would be timed twice as one. A long timeout, as vLLM's
    // (a benchmark's streams may queue for minutes), and no idle timer reset at every chunk.
    let server = setup::connect_with(&server_args, |builder| {
        builder
            .max_retries(0)
            .timeout(Duration::from_secs(6 * 3600))
            .stream_idle_timeout(None)
    })
    .await
    .map_err(usage)?;
    let client = server.client.clone();
    let served = match (&args.served_model_name, &args.server.model) {
        (Some(name), _) => name.clone(),
        (None, asked) => server
            .model(asked.as_deref())
            .await
            .map_err(|e| (exit::partial(), e))?,
    };
    let model_id = args.server.model.clone().unwrap_or_else(|| served.clone());

    eprintln!(
        "vllm-rs bench serve: making {} prompts ({:?})…",
        args.num_prompts, args.dataset_name
    );
    let dataset = dataset::build(&args, &client, &served, args.num_prompts)
        .await
        .map_err(|e| (exit::partial(), e))?;
    let dataset = Arc::new(dataset);
    let settings = Settings {
        backend,
        model: served.clone(),
        ignore_eos: args.ignore_eos || dataset.forces_ignore_eos,
        temperature: args.temperature,
        keep_text: args.save_detailed || args.dataset_name == args::DatasetName::MultiTurn,
        per_chunk_usage: metrics.iter().any(|m| m == "itl_token"),
    };

    // Ctrl-C: the first stops the run and reports what finished; the second exits.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\nvllm-rs bench serve: interrupted: reporting what finished (Ctrl-C again to quit at once)"
            );
            stop_tx.send_replace(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });

    let mut interrupted = false;
    let mut any_success = false;
    let mut runs: Vec<(Config, Outcome, Ordered)> = Vec::new();
    for (n, point) in points.iter().enumerate() {
        if points.len() > 1 {
            eprintln!(
                "vllm-rs bench serve: sweep point {} of {}: request rate {}, max concurrency {}",
                n + 1,
                points.len(),
                point.rate.label(),
                point
                    .max_concurrency
                    .map_or("none".to_owned(), |c| c.to_string())
            );
        }
        let load = Load {
            rate: point.rate,
            burstiness: args.burstiness,
            max_concurrency: point.max_concurrency,
            num_prompts: args.num_prompts,
            duration: args.duration,
            warmups: args.num_warmups,
            seed: args.seed,
        };
        let progress = Arc::new(Progress::default());
        let bar = progress_bar(&args, &progress);
        let scraper = if args.scrape_metrics {
            Some(scrape::start(&client).await)
        } else {
            None
        };
        let outcome = run::run(&client, &settings, &dataset, &load, &progress, &stop)
            .await
            .map_err(usage)?;
        let server_view = match scraper {
            Some(scraper) => Some(scraper.finish().await),
            None => None,
        };
        if let Some((bar, ticker)) = bar {
            ticker.abort();
            bar.finish_and_clear();
        }
        let config = Config {
            backend_name: backend_name.clone(),
            backend,
            label: args.label.clone(),
            model_id: model_id.clone(),
            tokenizer_id: args.tokenizer.clone().unwrap_or_else(|| model_id.clone()),
            num_prompts: args.num_prompts,
            metadata: metadata.clone(),
            rate: point.rate,
            burstiness: args.burstiness,
            max_concurrency: point.max_concurrency,
            metrics: metrics.clone(),
            percentiles: percentiles.clone(),
            goodput: goodput.clone(),
            save_detailed: args.save_detailed,
            date: result::local_date(),
        };
        let report = result::report(&config, &outcome, &dataset.notes, server_view.as_ref());
        println!("{}", report.table);
        for warning in &report.warnings {
            eprintln!("vllm-rs bench serve: WARNING: {warning}");
        }
        any_success |= outcome.results.iter().any(|m| m.success);
        if args.save_result || args.append_result {
            let path = result_path(&args, &config, n, points.len());
            save(&path, &report.json, args.append_result).map_err(|e| {
                (
                    exit::partial(),
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
            eprintln!("vllm-rs bench serve: result in {}", path.display());
        }
        if let Some(path) = &args.per_request {
            write_per_request(path, n, &config, &outcome, n > 0).map_err(|e| {
                (
                    exit::partial(),
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
        }
        interrupted = outcome.interrupted;
        runs.push((config, outcome, report.json));
        if interrupted {
            break;
        }
    }
    ctrl_c.abort();
    if let Some(path) = &args.html_report {
        let views: Vec<html::RunView<'_>> = runs
            .iter()
            .map(|(config, outcome, json)| html::RunView {
                config,
                outcome,
                json,
            })
            .collect();
        html::write(path, &views).map_err(|e| {
            (
                exit::partial(),
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
        eprintln!("vllm-rs bench serve: report in {}", path.display());
    }
    if interrupted {
        return Ok(exit::interrupted());
    }
    if !any_success {
        return Err((
            exit::partial(),
            "no request succeeded (the errors are counted above)".into(),
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on a terminal (unless --disable-tqdm), ticking from `progress`.
fn progress_bar(
    args: &ServeArgs,
    progress: &Arc<Progress>,
) -> Option<(ProgressBar, tokio::task::JoinHandle<()>)> {
    if args.disable_tqdm || !std::io::stderr().is_terminal() {
        return None;
    }
    let total = if args.duration.is_some() {
        None
    } else {
        Some(args.num_prompts as u64)
    };
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(5));
    let template = if total.is_some() {
        "{bar:30} {pos}/{len} {msg} {elapsed} eta {eta}"
    } else {
        "{spinner} {pos} requests {msg} {elapsed}"
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let ticker = tokio::spawn({
        let (bar, progress) = (bar.clone(), progress.clone());
        async move {
            let mut every = tokio::time::interval(Duration::from_millis(200));
            loop {
                every.tick().await;
                bar.set_position(progress.done.load(Ordering::Relaxed));
                let failed = progress.failed.load(Ordering::Relaxed);
                if failed > 0 {
                    bar.set_message(format!("({failed} failed)"));
                }
            }
        }
    });
    Some((bar, ticker))
}

/// Where the result of point `n` of `of` goes.
fn result_path(args: &ServeArgs, config: &Config, n: usize, of: usize) -> PathBuf {
    let name = match &args.result_filename {
        None => result::default_filename(config),
        Some(name) if of == 1 => name.clone(),
        // A sweep with one name: a file per point.
        Some(name) => {
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name.as_str(), "json"));
            format!("{stem}-{}.{ext}", n + 1)
        }
    };
    match &args.result_dir {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    }
}

/// Writes the result as vLLM does: one JSON object, no line end; appended after a line end
/// with `append`.
fn save(path: &std::path::Path, json: &Ordered, append: bool) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string(json).map_err(std::io::Error::other)?;
    if append {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        if file.metadata()?.len() > 0 {
            file.write_all(b"\n")?;
        }
        file.write_all(text.as_bytes())
    } else {
        std::fs::write(path, text)
    }
}

/// Writes each request's measurements as a JSON line.
fn write_per_request(
    path: &std::path::Path,
    run: usize,
    config: &Config,
    outcome: &Outcome,
    append: bool,
) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)?;
    let mut out = std::io::BufWriter::new(file);
    for (index, m) in outcome.results.iter().enumerate() {
        let line = json!({
            "run": run,
            "request_rate": config.rate.label(),
            "max_concurrency": config.max_concurrency,
            "index": index,
            "success": m.success,
            "error_kind": m.error.as_ref().map(|(k, _)| k),
            "error": m.error.as_ref().map(|(_, e)| e),
            "input_len": m.input_len,
            "output_len": m.output_len,
            "sent_s": m.sent.map(|s| s.saturating_duration_since(outcome.started).as_secs_f64()),
            "queue_time_s": m.queue_time,
            "send_lag_s": m.schedule_lag,
            "ttft_s": m.ttft,
            "ttfr_s": m.ttfr,
            "ttfc_s": m.ttfc,
            "e2el_s": m.latency,
            "chunks": m.chunks,
            "itls_s": m.itls,
            "itl_token_s": m.token_itls,
            // Against a server that stamps its chunks: each chunk's wait for the client.
            "read_lags_s": (!m.read_lags.is_empty()).then_some(&m.read_lags),
        });
        serde_json::to_writer(&mut out, &line).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
