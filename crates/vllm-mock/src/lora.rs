//! `POST /v1/load_lora_adapter` and `POST /v1/unload_lora_adapter`: adapters served as
//! models of their own, answered as vLLM answers (started with
//! `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`).

use crate::reply::Reply;
use crate::server::Shared;
use crate::validate::{Kind, check_types, parse_object, require};

/// vLLM's error type for the requests it refuses here.
const INVALID: &str = "InvalidUserInput";

/// `POST /v1/load_lora_adapter`: `lora_name` becomes a model (listed by `/v1/models` with
/// `root` = `lora_path` and `parent` = the first base model). vLLM's plain-text success
/// answer; `400` for an empty name or path, or a name loaded already (unless
/// `load_inplace`, which replaces its path).
pub(crate) fn load(shared: &Shared, body: &[u8]) -> Result<Reply, Reply> {
    let body = parse_object(body)?;
    require(&body, "lora_name")?;
    require(&body, "lora_path")?;
    check_types(
        &body,
        &[
            ("lora_name", Kind::Str),
            ("lora_path", Kind::Str),
            ("load_inplace", Kind::Bool),
        ],
    )?;
    let text = |key: &str| body.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    let (name, path) = (text("lora_name"), text("lora_path"));
    if name.is_empty() || path.is_empty() {
        return Err(Reply::error(
            400,
            INVALID,
            None,
            "Both 'lora_name' and 'lora_path' must be provided.",
        ));
    }
    let in_place = body.get("load_inplace").and_then(|v| v.as_bool()) == Some(true);
    if !shared.load_adapter(name, path, in_place) {
        return Err(Reply::error(
            400,
            INVALID,
            None,
            &format!(
                "The lora adapter '{name}' has already been loaded. If you want to load the \
                 adapter in place, set 'load_inplace' to True."
            ),
        ));
    }
    Ok(Reply::untyped(format!(
        "Success: LoRA adapter '{name}' added successfully."
    )))
}

/// `POST /v1/unload_lora_adapter`: the adapter is no longer a model. vLLM's plain-text
/// success answer; `400` for an empty name, `404` for a name not loaded.
pub(crate) fn unload(shared: &Shared, body: &[u8]) -> Result<Reply, Reply> {
    let body = parse_object(body)?;
    require(&body, "lora_name")?;
    check_types(
        &body,
        &[("lora_name", Kind::Str), ("lora_int_id", Kind::Int)],
    )?;
    let name = body
        .get("lora_name")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if name.is_empty() {
        return Err(Reply::error(
            400,
            INVALID,
            None,
            "'lora_name' needs to be provided to unload a LoRA adapter.",
        ));
    }
    if !shared.unload_adapter(name) {
        return Err(Reply::error(
            404,
            "NotFoundError",
            None,
            &format!("The lora adapter '{name}' cannot be found."),
        ));
    }
    Ok(Reply::untyped(format!(
        "Success: LoRA adapter '{name}' removed successfully."
    )))
}
