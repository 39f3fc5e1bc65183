//! Configuration from the environment. One test in its own binary: it sets process-wide
//! variables, which must not race with other tests.

use vllm_client::VllmClient;

fn set(name: &str, value: Option<&str>) {
    // SAFETY: this binary runs this single test, so no other thread reads the environment.
    unsafe {
        match value {
            Some(v) => std::env::set_var(name, v),
            None => std::env::remove_var(name),
        }
    }
}

#[test]
fn vllm_variables_win_over_openai_ones_and_empty_ones_are_ignored() {
    for name in [
        "VLLM_BASE_URL",
        "VLLM_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
    ] {
        set(name, None);
    }
    let client = VllmClient::from_env();
    assert_eq!(
        (client.base_url(), client.api_key()),
        ("http://localhost:8000/v1", None)
    );

    set("OPENAI_BASE_URL", Some("http://openai-compatible:9000/v1/"));
    set("OPENAI_API_KEY", Some("sk-openai"));
    let client = VllmClient::from_env();
    assert_eq!(
        (client.base_url(), client.api_key()),
        ("http://openai-compatible:9000/v1", Some("sk-openai"))
    );

    set("VLLM_BASE_URL", Some("http://vllm:8000/v1"));
    set("VLLM_API_KEY", Some("sk-vllm"));
    let client = VllmClient::builder().from_env().build();
    assert_eq!(
        (client.base_url(), client.api_key()),
        ("http://vllm:8000/v1", Some("sk-vllm"))
    );

    set("VLLM_API_KEY", Some("  "));
    assert_eq!(VllmClient::from_env().api_key(), Some("sk-openai"));
}
