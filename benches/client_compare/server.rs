//! The loopback server (`serve` role): a minimal HTTP/1.1 server on 127.0.0.1, one thread per
//! connection, keep-alive, answering `POST /v1/chat/completions` like vLLM (uvicorn) does.
//!
//! - `stream: true`: `200` with `transfer-encoding: chunked`, one HTTP chunk per SSE event
//!   (uvicorn's framing), written through a 64 KiB buffer as fast as the socket takes it.
//!   `max_tokens` is the number of content chunks. For the probe model every event is cut
//!   into HTTP chunks of [`PROBE_HTTP_CHUNK`] bytes instead.
//! - otherwise: a small JSON chat completion with `content-length`.
//!
//! It prints `PORT <port>` on stdout and exits when its stdin is closed.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use super::workload::{self, PROBE_HTTP_CHUNK, PROBE_MODEL};

/// Connections accepted, reported on exit (keep-alive working means few).
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

const DATE: &str = "date: Tue, 21 Jan 2025 10:00:00 GMT\r\nserver: uvicorn\r\n";

/// Runs the server until stdin closes.
pub(crate) fn serve() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    {
        let mut out = io::stdout().lock();
        writeln!(out, "PORT {port}")?;
        out.flush()?;
    }
    thread::spawn(|| {
        // The parent keeps our stdin open while it needs us.
        let mut sink = Vec::new();
        let _ = io::stdin().read_to_end(&mut sink);
        eprintln!(
            "server: {} connections accepted in all",
            ACCEPTED.load(Ordering::Relaxed)
        );
        std::process::exit(0);
    });
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        ACCEPTED.fetch_add(1, Ordering::Relaxed);
        thread::spawn(move || {
            let _ = handle(conn);
        });
    }
    Ok(())
}

/// Serves the requests of one connection.
fn handle(conn: TcpStream) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut writer = BufWriter::with_capacity(64 * 1024, conn);
    let reply = workload::reply_body();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let request_line = line.trim_end().to_owned();
        let mut content_length = 0usize;
        let mut chunked = false;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = true;
                }
            }
        }
        if chunked {
            // Neither client sends chunked request bodies; refuse rather than misread.
            return respond(&mut writer, "411 Length Required", "{}", true);
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body)?;
        let mut parts = request_line.split(' ');
        let (method, path) = (parts.next(), parts.next().unwrap_or(""));
        if method != Some("POST") || !path.ends_with("/chat/completions") {
            respond(
                &mut writer,
                "404 Not Found",
                r#"{"detail":"Not Found"}"#,
                false,
            )?;
            continue;
        }
        let request: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return respond(&mut writer, "400 Bad Request", "{}", true),
        };
        if request["stream"].as_bool().unwrap_or(false) {
            let model = request["model"].as_str().unwrap_or(workload::MODEL);
            // Chat clients send `max_completion_tokens` (vLLM's benchmark, vllm-rs bench),
            // older ones `max_tokens`.
            let n = request["max_completion_tokens"]
                .as_u64()
                .or_else(|| request["max_tokens"].as_u64())
                .unwrap_or(16);
            write_stream(&mut writer, model, n)?;
        } else {
            respond(&mut writer, "200 OK", &reply, false)?;
        }
    }
}

fn respond(w: &mut BufWriter<TcpStream>, status: &str, body: &str, close: bool) -> io::Result<()> {
    write!(
        w,
        "HTTP/1.1 {status}\r\n{DATE}content-length: {}\r\ncontent-type: application/json\r\n{}\r\n{body}",
        body.len(),
        if close { "connection: close\r\n" } else { "" },
    )?;
    w.flush()
}

fn write_stream(w: &mut BufWriter<TcpStream>, model: &str, n: u64) -> io::Result<()> {
    write!(
        w,
        "HTTP/1.1 200 OK\r\n{DATE}content-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"
    )?;
    let piece = if model == PROBE_MODEL {
        PROBE_HTTP_CHUNK
    } else {
        usize::MAX
    };
    let mut result = Ok(());
    workload::stream_events(model, n, |event| {
        if result.is_err() {
            return;
        }
        for part in event.chunks(piece.min(event.len())) {
            result = write!(w, "{:x}\r\n", part.len())
                .and_then(|()| w.write_all(part))
                .and_then(|()| w.write_all(b"\r\n"));
            if result.is_err() {
                return;
            }
        }
    });
    result?;
    w.write_all(b"0\r\n\r\n")?;
    w.flush()
}
