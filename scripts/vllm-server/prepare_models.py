"""Build the two model directories the conformance server uses.

Usage: prepare_models.py GGUF BASE_OUT CHAT_OUT CHAT_TEMPLATE

BASE_OUT: the GGUF checkpoint (SmolLM2-135M-Instruct, Q4_1) dequantized into a plain
          Hugging Face safetensors directory (bf16). Served as the embedding model.
CHAT_OUT: BASE_OUT plus single added tokens for <think>, </think>, <tool_call>,
          </tool_call>, <tool_response>, </tool_response> and the chat template
          CHAT_TEMPLATE, so that vLLM's `qwen3` reasoning parser and `hermes` tool-call
          parser (both look these markers up as vocabulary tokens) can run against it.

The model is tiny and its text is meaningless; only vLLM's protocol behaviour matters.
"""

import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

MARKERS = {
    # added token -> an ordinary word whose embedding it borrows, so the model keeps
    # producing text after the marker instead of degenerating.
    "<think>": "Let",
    "</think>": "Answer",
    "<tool_call>": "{",
    "</tool_call>": "}",
    "<tool_response>": "Result",
    "</tool_response>": ".",
}


def dequantize(gguf_path: str, out_dir: str) -> None:
    folder, name = os.path.split(os.path.abspath(gguf_path))
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    # The GGUF loader records how the weights were stored; the saved copy is plain bf16.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.architectures = ["LlamaForCausalLM"]
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(loaded.state_dict())
    plain.to(torch.bfloat16).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    print(f"dequantized {gguf_path} -> {out_dir}")


def add_markers(base_dir: str, out_dir: str, template_path: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.bfloat16)
    added = tokenizer.add_tokens(list(MARKERS), special_tokens=False)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    table = model.get_input_embeddings().weight
    with torch.no_grad():
        for marker, word in MARKERS.items():
            word_id = tokenizer.encode(word, add_special_tokens=False)[0]
            table[tokenizer.convert_tokens_to_ids(marker)] = table[word_id]
    with open(template_path, encoding="utf-8") as f:
        tokenizer.chat_template = f.read()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    ids = {m: tokenizer.convert_tokens_to_ids(m) for m in MARKERS}
    print(f"added {added} marker tokens (vocab {len(tokenizer)}): {ids} -> {out_dir}")


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    gguf_path, base_out, chat_out, template = sys.argv[1:]
    dequantize(gguf_path, base_out)
    add_markers(base_out, chat_out, template)
    return 0


if __name__ == "__main__":
    sys.exit(main())
