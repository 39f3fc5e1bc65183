//! `vllm-mock`: serves the mock vLLM server until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use vllm_mock::{DEFAULT_MAX_MODEL_LEN, DEFAULT_MODEL, MockServer};

const HELP: &str = "\
vllm-mock: a mock of vLLM's OpenAI-compatible server (a deterministic echo model)

Usage: vllm-mock [OPTIONS]

Options:
  --port <PORT>            Port to listen on (default: 8000; 0 picks a free port)
  --host <HOST>            Address to listen on (default: 127.0.0.1)
  --model <NAME>           A model to serve (repeat for several; default: echo)
  --max-model-len <N>      Context length of the models (default: 4096)
  --api-key <KEY>          Require `Authorization: Bearer <KEY>` on /v1 routes
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
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        host: IpAddr::from([127, 0, 0, 1]),
        port: 8000,
        models: Vec::new(),
        max_model_len: DEFAULT_MAX_MODEL_LEN,
        api_key: None,
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
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Some(parsed))
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
        let mut builder = MockServer::builder()
            .addr(SocketAddr::new(args.host, args.port))
            .max_model_len(args.max_model_len);
        if !args.models.is_empty() {
            builder = builder.models(args.models);
        }
        if let Some(key) = args.api_key {
            builder = builder.api_key(key);
        }
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
