//! The `tracing` feature: one `vllm.request` span per request, with its method, path,
//! status, attempts, retries and time to the response head. Run with
//! `cargo test -p vllm-transport --features tracing --test tracing_spans`.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use support::{Server, response};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The fields of a span, as text.
type Fields = BTreeMap<String, String>;

/// A subscriber that keeps every span's name and fields, and every event's fields.
#[derive(Clone, Default)]
struct Capture(Arc<Captured>);

#[derive(Default)]
struct Captured {
    spans: Mutex<Vec<(String, Fields)>>,
    events: Mutex<Vec<Fields>>,
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut fields = Fields::new();
        attrs.record(&mut Collect(&mut fields));
        let mut spans = self.0.spans.lock().unwrap();
        spans.push((attrs.metadata().name().to_owned(), fields));
        Id::from_u64(spans.len() as u64)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.0.spans.lock().unwrap();
        let (_, fields) = &mut spans[span.into_u64() as usize - 1];
        values.record(&mut Collect(fields));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::new();
        event.record(&mut Collect(&mut fields));
        self.0.events.lock().unwrap().push(fields);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[test]
fn a_request_is_one_span_with_its_status_attempts_and_time_to_first_byte() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = Server::start(|mut conn| async move {
            while let Some(req) = conn.read_request().await {
                let reply = match req.number {
                    1 => response("503 Service Unavailable", &[("retry-after", "0")], b"busy"),
                    2 => response("200 OK", &[], b"done"),
                    _ => response("400 Bad Request", &[], b"no"),
                };
                if conn.write(&reply).await.is_err() {
                    return;
                }
            }
        })
        .await;
        let transport = support::builder().build().unwrap();
        let ok = transport
            .post(server.url("/v1/chat/completions?secret=1"))
            .json(&b"{}"[..])
            .send()
            .await
            .unwrap();
        assert_eq!(ok.bytes().await.unwrap(), &b"done"[..]);
        let err = transport
            .get(server.url("/v1/models"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_status());
    });

    let spans = capture.0.spans.lock().unwrap();
    let requests: Vec<&Fields> = spans
        .iter()
        .filter(|(name, _)| name == "vllm.request")
        .map(|(_, fields)| fields)
        .collect();
    assert_eq!(requests.len(), 2, "one span per request: {spans:?}");
    let first = requests[0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/v1/chat/completions", "no query: {first:?}");
    assert_eq!(first["status"], "200");
    assert_eq!(first["attempts"], "2");
    assert_eq!(first["retries"], "1");
    assert!(first["ttfb_ms"].parse::<f64>().unwrap() >= 0.0, "{first:?}");
    assert!(!first.contains_key("error"));
    let second = requests[1];
    assert_eq!(
        (second["method"].as_str(), second["path"].as_str()),
        ("GET", "/v1/models")
    );
    assert_eq!(second["status"], "400");
    assert_eq!(second["attempts"], "1");
    assert!(second["error"].contains("400"), "{second:?}");
    assert!(!second.contains_key("ttfb_ms"));
    // The retry was an event too.
    let events = capture.0.events.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.get("message").is_some_and(|m| m == "retrying request")),
        "{events:?}"
    );
}
