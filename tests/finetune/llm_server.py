"""A local OpenAI-compatible server for the synthetic-query tests: a real HTTP process serving
`POST /v1/chat/completions` in OpenAI's response format (choices, usage), answering from
`data/llm_recorded.json` by the SHA-256 of the target passage found in the prompt (the text after
the last "Document: "). A prompt about an unrecorded passage gets HTTP 400 (an OpenAI-style
`invalid_request_error`), which the client counts as a failure of that passage: a recording never
pretends to know an answer.

For the tests, `/admin/*` sets faults (fail the next N requests with a status, add latency, make the
next N slower than a client's timeout) and
reports what the server saw: requests, the passages asked, arrival times, the most requests in
flight at once and the tokens it billed.

Run: `python tests/finetune/llm_server.py --port 8765`."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

RECORDED = Path(__file__).parent / "data" / "llm_recorded.json"

app = FastAPI()
answers: dict[str, list[str]] = {
    key: row["queries"] for key, row in json.loads(RECORDED.read_text())["answers"].items()
}


def _fresh() -> dict[str, Any]:
    return {
        "requests": 0,
        "retried": 0,  # requests carrying the openai client's x-stainless-retry-count > 0
        "in_flight": 0,
        "max_in_flight": 0,
        "times": [],  # arrival, seconds since the epoch
        "asked": [],  # target passage keys, one per request answered
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "fail_next": 0,
        "fail_status": 500,
        "fail_after": -1,  # with >= 0: answer the first N requests, then fail every one
        "latency": 0.0,
        "slow_next": 0,  # the next N requests take slow_seconds more (past a client's timeout)
        "slow_seconds": 0.0,
    }


state = _fresh()


def _tokens(text: str) -> int:
    return len(text.split())  # a stand-in tokenizer: what matters is that the counts add up


def _error(status: int, message: str, kind: str) -> JSONResponse:
    # retry-after-ms: the openai client honours it, so the tests' retries wait 20 ms, not seconds
    headers = {"retry-after-ms": "20"} if status in (429, 500, 503) else {}
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)


@app.post("/v1/chat/completions")
async def chat_completions(request: Request) -> JSONResponse:
    state["requests"] += 1
    state["times"].append(time.time())
    if request.headers.get("x-stainless-retry-count", "0") != "0":
        state["retried"] += 1
    state["in_flight"] += 1
    state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
    try:
        if state["latency"]:
            await asyncio.sleep(state["latency"])
        if state["slow_next"] > 0:
            state["slow_next"] -= 1
            await asyncio.sleep(state["slow_seconds"])
        failing = 0 <= state["fail_after"] < state["requests"]
        if state["fail_next"] > 0 or failing:
            state["fail_next"] = max(0, state["fail_next"] - 1)
            return _error(state["fail_status"], "injected fault", "server_error")
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        target = prompt.rsplit("Document: ", 1)[-1].rsplit("\nRelevant query:", 1)[0]
        key = hashlib.sha256(target.encode()).hexdigest()
        recorded = answers.get(key)
        if recorded is None:
            return _error(400, f"no recorded answer for passage {key[:12]}", "invalid_request_error")
        n = int(body.get("n") or 1)
        queries = [recorded[i % len(recorded)] for i in range(n)]
        prompt_tokens = sum(_tokens(m["content"]) for m in body["messages"])
        completion_tokens = sum(_tokens(q) for q in queries)
        state["asked"].append(key)
        state["prompt_tokens"] += prompt_tokens
        state["completion_tokens"] += completion_tokens
        return JSONResponse(
            {
                "id": f"chatcmpl-{state['requests']}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": q},
                        "finish_reason": "stop",
                    }
                    for i, q in enumerate(queries)
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )
    finally:
        state["in_flight"] -= 1


@app.post("/admin/faults")
async def faults(request: Request) -> dict[str, Any]:
    """Any of {"fail_next": N, "fail_status": 429, "fail_after": N, "latency": s, "slow_next": N,
    "slow_seconds": s}."""
    settings = await request.json()
    names = ("fail_next", "fail_status", "fail_after", "latency", "slow_next", "slow_seconds")
    for name in names:
        if name in settings:
            state[name] = settings[name]
    return {name: state[name] for name in names}


@app.post("/admin/reset")
async def reset() -> dict[str, bool]:
    state.clear()
    state.update(_fresh())
    return {"reset": True}


@app.get("/admin/stats")
async def stats() -> dict[str, Any]:
    return state


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning")
