//! `vllm-mock`: serves the mock vLLM server until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use std::time::Duration;

use vllm_mock::{DEFAULT_MAX_MODEL_LEN, DEFAULT_MODEL, MockServer, Script, Timing};

const HELP: &str = "\
vllm-mock: a mock of vLLM's OpenAI-compatible server (a deterministic echo model)

Usage: vllm-mock [OPTIONS]

Options:
  --port <PORT>            Port to listen on (default: 8000; 0 picks a free port)
  --host <HOST>            Address to listen on (default: 127.0.0.1)
  --model <NAME>           A model to serve (repeat for several; default: echo)
  --max-model-len <N>      Context length of the models (default: 4096)
  --api-key <KEY>          Require `Authorization: Bearer <KEY>` on /v1 routes
  --replica-id <NAME>      Send `x-replica-id: NAME` with every answer (to tell replicas
                           apart behind a router)
  --script <FILE>          Behaviors from a JSON file: {\"models\": {NAME: B}, \"queue\": [B],
                           \"requests\": [{\"number\": N, ...B}]}, where B is like
                           {\"reply\": \"Hi\", \"error\": {\"status\": 503, \"message\": \"busy\"},
                           \"delay_ms\": 100, \"cut_after\": 3, \"path\": \"/v1/chat/completions\"}
                           (see the docs of vllm_mock::Script for every member)

Simulated engine (all off by default: answers at once, without limit):
  --ttft-ms <MS>           Time to first token (prefill), once a request has a slot
  --itl-ms <MS>            Time per output token after the first
  --max-num-seqs <N>       At most N requests generate at once; the others wait in line
  --decode-slowdown <F>    Time per token grows by F x itl for each other running request
  --max-tokens-per-s <R>   At most R output tokens per second over all requests
  --engine-steps           Tokens go out at engine steps every --itl-ms, every running
                           request's at the same instant, as vLLM's engine makes them
  --stamp-events           Every generated stream event carries \"mock_sent_ns\": the
                           machine's monotonic clock (ns) when the mock sent it, so that
                           a client here can tell its own read delay from the server's
  -h, --help               Print this help
";

/// The parsed command line.
#[derive(Debug)]
struct Args {
    host: IpAddr,
    port: u16,
    models: Vec<String>,
    max_model_len: u32,
    api_key: Option<String>,
    replica_id: Option<String>,
    script: Option<String>,
    timing: Timing,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        host: IpAddr::from([127, 0, 0, 1]),
        port: 8000,
        models: Vec::new(),
        max_model_len: DEFAULT_MAX_MODEL_LEN,
        api_key: None,
        replica_id: None,
        script: None,
        timing: Timing::default(),
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--port" => {
                let v = value()?;
                parsed.port = v.parse().map_err(|_| format!("invalid port `{v}`"))?;
            }
            "--host" => {
                let v = value()?;
                parsed.host = match v.as_str() {
                    "localhost" => IpAddr::from([127, 0, 0, 1]),
                    other => other.parse().map_err(|_| format!("invalid host `{v}`"))?,
                };
            }
            "--model" => parsed.models.push(value()?),
            "--max-model-len" => {
                let v = value()?;
                parsed.max_model_len = v.parse().map_err(|_| format!("invalid length `{v}`"))?;
            }
            "--api-key" => parsed.api_key = Some(value()?),
            "--replica-id" => parsed.replica_id = Some(value()?),
            "--script" => parsed.script = Some(value()?),
            "--ttft-ms" => {
                let ms = number(&flag, &value()?)?;
                parsed.timing = parsed.timing.ttft(Duration::from_secs_f64(ms / 1000.0));
            }
            "--itl-ms" => {
                let ms = number(&flag, &value()?)?;
                parsed.timing = parsed.timing.itl(Duration::from_secs_f64(ms / 1000.0));
            }
            "--max-num-seqs" => {
                let v = value()?;
                let n: usize = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("invalid --max-num-seqs `{v}` (a count of 1 or more)")
                })?;
                parsed.timing = parsed.timing.max_num_seqs(n);
            }
            "--decode-slowdown" => {
                let f = number(&flag, &value()?)?;
                parsed.timing = parsed.timing.decode_slowdown(f);
            }
            "--engine-steps" => parsed.timing = parsed.timing.engine_steps(true),
            "--stamp-events" => parsed.timing = parsed.timing.stamp_events(true),
            "--max-tokens-per-s" => {
                let r = number(&flag, &value()?)?;
                parsed.timing = parsed.timing.max_tokens_per_second(r);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Some(parsed))
}

/// A number of 0 or more, for `flag`.
fn number(flag: &str, value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("invalid {flag} `{value}` (a number of 0 or more)"))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vllm-mock: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let script = match &args.script {
        None => None,
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| Script::from_json(&text).map_err(|e| e.to_string()))
        {
            Ok(script) => Some(script),
            Err(e) => {
                eprintln!("vllm-mock: {path}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vllm-mock: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        // Nobody can ask this process for its record: keep none, so that memory stays flat
        // under millions of requests.
        let mut builder = MockServer::builder()
            .addr(SocketAddr::new(args.host, args.port))
            .max_model_len(args.max_model_len)
            .record_requests(false);
        if !args.models.is_empty() {
            builder = builder.models(args.models);
        }
        if let Some(key) = args.api_key {
            builder = builder.api_key(key);
        }
        if let Some(name) = args.replica_id {
            builder = builder.replica_id(name);
        }
        builder = builder.timing(args.timing);
        let mock = match builder.start().await {
            Ok(mock) => mock,
            Err(e) => {
                eprintln!(
                    "vllm-mock: cannot listen on {}:{}: {e}",
                    args.host, args.port
                );
                return ExitCode::FAILURE;
            }
        };
        if let Some(script) = &script {
            mock.apply_script(script);
        }
        println!(
            "vllm-mock serving {} at {}",
            mock.models().join(", "),
            mock.base_url()
        );
        if mock.models().iter().any(|m| m == DEFAULT_MODEL) {
            println!("(the `{DEFAULT_MODEL}` model repeats the last user message)");
        }
        match tokio::signal::ctrl_c().await {
            Ok(()) => {
                println!("vllm-mock: stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vllm-mock: cannot wait for Ctrl-C: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_flags_with_spaces_or_equals() {
        let args = parse(&[
            "--port",
            "9000",
            "--host=0.0.0.0",
            "--model",
            "a",
            "--model=b",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(args.port, 9000);
        assert_eq!(args.host, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(args.models, ["a", "b"]);
    }

    #[test]
    fn engine_flags_set_the_timing() {
        let args = parse(&[
            "--ttft-ms",
            "50",
            "--itl-ms=10",
            "--max-num-seqs",
            "32",
            "--decode-slowdown",
            "0.05",
            "--max-tokens-per-s",
            "1000",
            "--engine-steps",
            "--stamp-events",
            "--replica-id",
            "r1",
            "--script",
            "b.json",
        ])
        .unwrap()
        .unwrap();
        let want = Timing::default()
            .ttft(Duration::from_millis(50))
            .itl(Duration::from_millis(10))
            .max_num_seqs(32)
            .decode_slowdown(0.05)
            .max_tokens_per_second(1000.0)
            .engine_steps(true)
            .stamp_events(true);
        assert_eq!(args.timing, want);
        assert_eq!(args.replica_id.as_deref(), Some("r1"));
        assert_eq!(args.script.as_deref(), Some("b.json"));
        for bad in [
            &["--ttft-ms", "-1"][..],
            &["--itl-ms", "x"],
            &["--max-num-seqs", "0"],
        ] {
            assert!(parse(bad).unwrap_err().contains("invalid"), "{bad:?}");
        }
    }

    #[test]
    fn help_and_errors() {
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--port"]).unwrap_err().contains("needs a value"));
        assert!(
            parse(&["--port", "x"])
                .unwrap_err()
                .contains("invalid port")
        );
        assert!(
            parse(&["--bogus"])
                .unwrap_err()
                .contains("unknown argument")
        );
    }
}
