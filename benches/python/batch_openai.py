"""The batch a Python user writes today: the `openai` package's AsyncOpenAI client, a
semaphore for the concurrency, one output line per request in vLLM's batch output format.

    python batch_openai.py IN.jsonl OUT.jsonl BASE_URL CONCURRENCY

Used by `benches/batch_run.rs` (BATCH_PYTHON=/path/to/python) as the point of comparison for
`vllm-rs run-batch`: same input, same mock, same concurrency.
"""

import asyncio
import json
import sys
import uuid

from openai import AsyncOpenAI


async def main(input_path, output_path, base_url, concurrency):
    client = AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=2)
    slots = asyncio.Semaphore(concurrency)
    with open(input_path) as f:
        requests = [json.loads(line) for line in f if line.strip()]
    out = open(output_path, "w")

    async def one(request):
        async with slots:
            try:
                body = request["body"]
                url = request["url"]
                if url.endswith("/chat/completions"):
                    answer = await client.chat.completions.create(**body)
                elif url.endswith("/completions"):
                    answer = await client.completions.create(**body)
                elif url.endswith("/embeddings"):
                    answer = await client.embeddings.create(**body)
                else:
                    raise ValueError(f"unsupported url {url}")
                line = {
                    "id": f"vllm-{uuid.uuid4().hex}",
                    "custom_id": request["custom_id"],
                    "response": {
                        "status_code": 200,
                        "request_id": f"vllm-batch-{uuid.uuid4().hex}",
                        "body": answer.model_dump(),
                    },
                    "error": None,
                }
            except Exception as e:  # every failure becomes an error line
                line = {
                    "id": f"vllm-{uuid.uuid4().hex}",
                    "custom_id": request["custom_id"],
                    "response": None,
                    "error": str(e),
                }
            out.write(json.dumps(line) + "\n")

    await asyncio.gather(*(one(r) for r in requests))
    out.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
