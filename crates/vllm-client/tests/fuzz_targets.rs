//! The fuzz targets of `fuzz/` (`vllm_client::fuzzing`), bounded, on stable: the chat stream
//! accumulator on every captured stream (cut several ways) and on random streams, and error
//! bodies on every captured error and on random bytes.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use proptest::prelude::*;
use vllm_client::fuzzing;

/// The files of the project's fixtures (real server captures) whose name matches.
fn fixtures(matches: impl Fn(&str) -> bool) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vllm-types/tests/fixtures");
    let mut files = Vec::new();
    for server in std::fs::read_dir(&root).unwrap() {
        let server = server.unwrap().path();
        if !server.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&server).unwrap() {
            let path = file.unwrap().path();
            if matches(path.file_name().unwrap().to_str().unwrap()) {
                files.push(std::fs::read(&path).unwrap());
            }
        }
    }
    assert!(!files.is_empty());
    files
}

fn with_cuts(cuts: &[u8], data: &[u8]) -> Vec<u8> {
    let mut input = vec![cuts.len() as u8];
    input.extend(cuts.iter().map(|c| c.wrapping_sub(1)));
    input.extend_from_slice(data);
    input
}

#[test]
fn chat_streams_as_captured() {
    // The chat streams (completions streams have another chunk shape: they end in a
    // decoding error here, which the target allows).
    for body in fixtures(|name| name.ends_with(".sse")) {
        for cuts in [&[][..], &[1], &[3, 1, 7], &[200, 5]] {
            fuzzing::chat_stream(&with_cuts(cuts, &body));
        }
    }
}

#[test]
fn error_bodies_as_captured() {
    for response in fixtures(|name| name.starts_with("err_") && name.ends_with(".http")) {
        let text = String::from_utf8_lossy(&response);
        let body = text
            .split_once("\r\n\r\n")
            .or_else(|| text.split_once("\n\n"))
            .map_or("", |(_, body)| body);
        let mut input = vec![0, 0];
        input.extend_from_slice(body.as_bytes());
        fuzzing::error_body(&input);
    }
}

/// A chunk of a chat stream, some valid, some not quite.
fn chunk() -> impl Strategy<Value = String> {
    let choice = (0u32..3, prop_oneof![
        Just(r#""delta":{"role":"assistant","content":""}"#.to_owned()),
        "[a-z ]{0,8}".prop_map(|t| format!(r#""delta":{{"content":"{t}"}}"#)),
        "[a-z ]{0,8}".prop_map(|t| format!(r#""delta":{{"reasoning":"{t}"}}"#)),
        (0u32..2, "[a-z]{0,5}", r#"[{}"a:1 ]{0,6}"#).prop_map(|(i, name, args)| format!(
            r#""delta":{{"tool_calls":[{{"index":{i},"id":"call_{i}","type":"function","function":{{"name":"{name}","arguments":"{}"}}}}]}}"#,
            args.replace('"', "\\\"")
        )),
        Just(r#""delta":{},"finish_reason":"stop""#.to_owned()),
        Just(r#""delta":{},"finish_reason":"tool_calls""#.to_owned()),
    ])
        .prop_map(|(index, body)| format!(r#"{{"index":{index},{body}}}"#));
    prop_oneof![
        8 => prop::collection::vec(choice, 0..3).prop_map(|choices| format!(
            "data: {{\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{}]}}\n\n",
            choices.join(",")
        )),
        1 => Just("data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n".to_owned()),
        1 => Just("data: {\"error\":{\"message\":\"boom\",\"type\":\"InternalServerError\",\"code\":500}}\n\n".to_owned()),
        1 => Just(": keep-alive\n\n".to_owned()),
        1 => Just("data: {\"choices\": 5}\n\n".to_owned()),
        1 => "[ -~]{0,20}".prop_map(|junk| format!("data: {junk}\n\n")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn chat_streams_made_up(
        cuts in prop::collection::vec(1u8..=255, 0..7),
        chunks in prop::collection::vec(chunk(), 0..12),
        done in any::<bool>(),
    ) {
        let mut body = chunks.concat();
        if done {
            body.push_str("data: [DONE]\n\n");
        }
        fuzzing::chat_stream(&with_cuts(&cuts, body.as_bytes()));
    }

    #[test]
    fn chat_streams_of_random_bytes(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        fuzzing::chat_stream(&data);
    }

    #[test]
    fn error_bodies_of_random_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzzing::error_body(&data);
    }

    #[test]
    fn error_bodies_made_up(
        message in "[ -~]{0,30}",
        shape in 0usize..4,
    ) {
        let quoted = serde_json::to_string(&message).unwrap();
        let body = match shape {
            0 => format!(r#"{{"error":{{"message":{quoted},"type":"BadRequestError","code":400}}}}"#),
            1 => format!(r#"{{"error":{quoted}}}"#),
            2 => format!(r#"{{"object":"error","message":{quoted},"type":"x","code":400}}"#),
            _ => format!(r#"{{"detail":{quoted}}}"#),
        };
        let mut input = vec![0, 0];
        input.extend_from_slice(body.as_bytes());
        fuzzing::error_body(&input);
    }
}
