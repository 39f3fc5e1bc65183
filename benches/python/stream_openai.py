#!/usr/bin/env python3
"""A plain openai-python streaming load: N chat streams through AsyncOpenAI, at most C at
once, every chunk's arrival timed with time.perf_counter().

    python benches/python/stream_openai.py --base-url http://127.0.0.1:8000/v1 \\
        --model echo --num-prompts 1024 --concurrency 256 --input-len 32 \\
        --output-len 256 --out result.json

The requests are the ones `vllm bench serve --backend openai-chat --ignore-eos` sends: the
prompt as a text content part, `max_completion_tokens`, `stream_options.include_usage`,
`ignore_eos` through `extra_body`. Timing follows vLLM's definition: TTFT to the first chunk
with choices, then one gap per further chunk with choices (`itls`).

Writes one JSON object: per-request `ttfts`, `itls`, `chunks` (every chunk the stream
yielded, the usage chunk included), `output_lens`, `errors`, and the run's wall time and the
process's CPU time (user + system, os.times) over the run, measured from the first request
to the last answer (prompt generation and imports excluded). Against `vllm-mock
--stamp-events`, also `read_lag_ms`: how long after the mock sent each chunk the loop got it
(the chunk's `mock_sent_ns` against time.perf_counter(), both CLOCK_MONOTONIC on Linux).
"""

import argparse
import asyncio
import json
import os
import random
import time

import httpx
from openai import AsyncOpenAI, DefaultAsyncHttpxClient

WORDS = (
    "time year people way day man thing woman life child world school state family "
    "student group country problem hand part place case week company system program "
    "question work government number night point home water room mother area money "
    "story fact month lot right study book eye job word business issue side kind head "
    "house service friend father power hour game line end member law car city name"
).split()


def make_prompts(n, input_len, seed):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(input_len)) for _ in range(n)]


async def one(client, sem, model, prompt, output_len, out, read_lags):
    async with sem:
        ttft = None
        itls = []
        chunks = 0
        output_len_reported = 0
        error = None
        start = time.perf_counter()
        last = start
        try:
            stream = await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": [{"type": "text", "text": prompt}]}],
                max_completion_tokens=output_len,
                stream=True,
                stream_options={"include_usage": True},
                extra_body={"ignore_eos": True},
            )
            async for chunk in stream:
                now = time.perf_counter()
                chunks += 1
                # vllm-mock --stamp-events: the chunk's send time on this machine's
                # monotonic clock (perf_counter reads the same clock on Linux).
                sent_ns = (chunk.model_extra or {}).get("mock_sent_ns")
                if sent_ns is not None:
                    read_lags.append(now - sent_ns / 1e9)
                if chunk.choices:
                    if ttft is None:
                        ttft = now - start
                    else:
                        itls.append(now - last)
                    last = now
                elif chunk.usage is not None:
                    output_len_reported = chunk.usage.completion_tokens
        except Exception as e:  # noqa: BLE001 - every failure is a failed request
            error = f"{type(e).__name__}: {e}"
        ok = error is None and ttft is not None
        out.append(
            {
                "success": ok,
                "start": start,
                "ttft": ttft if ok else 0.0,
                "itls": itls if ok else [],
                "chunks": chunks,
                "output_len": output_len_reported if ok else 0,
                "latency": (last - start) if ok else 0.0,
                "error": error or ("" if ok else "no chunk with choices"),
            }
        )


async def run(args):
    limits = httpx.Limits(
        max_connections=max(args.concurrency, 1) + 16,
        max_keepalive_connections=max(args.concurrency, 1) + 16,
    )
    client = AsyncOpenAI(
        base_url=args.base_url,
        api_key=os.environ.get("OPENAI_API_KEY", "EMPTY"),
        max_retries=0,
        timeout=httpx.Timeout(6 * 3600.0),
        http_client=DefaultAsyncHttpxClient(limits=limits),
    )
    prompts = make_prompts(args.num_prompts, args.input_len, args.seed)
    sem = asyncio.Semaphore(args.concurrency)
    out = []
    read_lags = []
    cpu0 = os.times()
    t0 = time.perf_counter()
    await asyncio.gather(
        *(one(client, sem, args.model, p, args.output_len, out, read_lags) for p in prompts)
    )
    t1 = time.perf_counter()
    cpu1 = os.times()
    await client.close()
    out.sort(key=lambda r: r["start"])
    return {
        "tool": "openai-python",
        "num_prompts": args.num_prompts,
        "max_concurrency": args.concurrency,
        "completed": sum(r["success"] for r in out),
        "failed": sum(not r["success"] for r in out),
        "duration": t1 - t0,
        "window_start": t0,
        "window_end": t1,
        "cpu_user_s": cpu1.user - cpu0.user,
        "cpu_sys_s": cpu1.system - cpu0.system,
        "total_chunks": sum(r["chunks"] for r in out),
        "ttfts": [r["ttft"] for r in out],
        "itls": [r["itls"] for r in out],
        "chunks": [r["chunks"] for r in out],
        "output_lens": [r["output_len"] for r in out],
        "start_times": [r["start"] for r in out],
        "errors": [r["error"] for r in out],
        "read_lag_ms": read_lag_summary(read_lags),
    }


def read_lag_summary(lags):
    """p50 / p99 / max of the stamped chunks' wait, in ms (None without stamps)."""
    if not lags:
        return None
    lags = sorted(lags)

    def at(p):
        return lags[min(len(lags) - 1, int(round((len(lags) - 1) * p / 100.0)))] * 1e3

    return {"chunks": len(lags), "p50": at(50), "p99": at(99), "max": lags[-1] * 1e3}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", required=True, help="with its /v1")
    p.add_argument("--model", default="echo")
    p.add_argument("--num-prompts", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--input-len", type=int, default=32, help="words per prompt")
    p.add_argument("--output-len", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    result = asyncio.run(run(args))
    with open(args.out, "w") as f:
        json.dump(result, f)
    print(
        f"openai-python: {result['completed']} ok, {result['failed']} failed, "
        f"{result['total_chunks']} chunks in {result['duration']:.2f} s, "
        f"CPU {result['cpu_user_s'] + result['cpu_sys_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
