"""Synthetic training queries from an LLM through any OpenAI-compatible endpoint (InPars,
Promptagator): for each passage a few-shot prompt of real (passage, query) pairs, then the passage;
the model's answer is a query that the passage answers.

A whole corpus is one resumable job. Every answer goes into a SQLite cache keyed by the SHA-256 of
the model, prompt and sampling parameters, committed as it arrives, so the cache is the job's
journal: a re-run after Ctrl-C or a crash asks only for the passages it lacks, and a finished job
re-runs for free. Requests are bounded in number in flight and paced by a rate limit; the openai
client retries 429s, 5xx and timeouts with exponential back-off, and every attempt is counted."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vectorforge.errors import InvalidParameter
from vectorforge.finetune.examples import TrainingExample

__all__ = ["GenerationReport", "LLMConfig", "build_messages", "generate_queries"]

logger = logging.getLogger(__name__)

SYSTEM = (
    "You write search queries. Given a document, write one query that a researcher would type to "
    "find it and that the document answers. Answer with the query only."
)
TARGET_CHARS = 1500  # of the passage asked about: SciFact abstracts fit, and long ones cost less
SHOT_CHARS = 500  # of each example passage: the examples teach the query's style, not the content


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to ask. `from_env()` fills the endpoint from `VECTORFORGE_LLM_BASE_URL` (or
    `OPENAI_BASE_URL`), `VECTORFORGE_LLM_MODEL` and `VECTORFORGE_LLM_API_KEY` (or `OPENAI_API_KEY`).
    Prices are per million tokens, in any currency, for the report's cost."""

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    temperature: float = 0.7
    max_tokens: int = 64
    input_price: float = 0.0
    output_price: float = 0.0
    concurrency: int = 8  # requests in flight at most
    requests_per_minute: float = 500.0  # every HTTP attempt, retries included
    max_retries: int = 6  # per request, on 429, 5xx, timeouts and dropped connections
    timeout: float = 60.0  # seconds per attempt

    @classmethod
    def from_env(cls, **given: Any) -> LLMConfig:
        """The environment's endpoint, model and key; `given` values (those not None) win."""
        env = {
            "base_url": os.environ.get("VECTORFORGE_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL"),
            "model": os.environ.get("VECTORFORGE_LLM_MODEL"),
            "api_key": os.environ.get("VECTORFORGE_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY"),
        }
        return cls(**{**env, **{k: v for k, v in given.items() if v is not None}})

    def checked(self) -> LLMConfig:
        """This config, or InvalidParameter naming what is missing or out of range."""
        if not self.base_url:
            raise InvalidParameter(
                "no LLM endpoint: set VECTORFORGE_LLM_BASE_URL (or OPENAI_BASE_URL), e.g. "
                "https://api.openai.com/v1 or http://localhost:8000/v1, or give it (base_url=, --base-url); "
                "with no LLM at all, use the offline queries (--offline, vectorforge.finetune.offline)"
            )
        if not self.base_url.startswith(("http://", "https://")):
            raise InvalidParameter(f"base_url {self.base_url!r} is not an http:// or https:// URL")
        if not self.model:
            raise InvalidParameter("no LLM model: set VECTORFORGE_LLM_MODEL or give it (model=, --model)")
        if self.concurrency < 1 or self.requests_per_minute <= 0 or self.max_tokens < 1:
            raise InvalidParameter(
                "LLMConfig needs concurrency >= 1, requests_per_minute > 0, max_tokens >= 1"
            )
        if self.max_retries < 0 or self.timeout <= 0 or not 0 <= self.temperature <= 2:
            raise InvalidParameter("LLMConfig needs max_retries >= 0, timeout > 0 and 0 <= temperature <= 2")
        if self.input_price < 0 or self.output_price < 0:
            raise InvalidParameter("prices per million tokens are >= 0")
        return self

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_price + completion_tokens * self.output_price) / 1e6


@dataclass
class GenerationReport:
    """What a run asked and spent. `requests` counts HTTP attempts (retries included); tokens and
    cost are this run's, so a re-run from the cache costs 0."""

    passages: int = 0
    answered: int = 0  # passages answered by the endpoint in this run
    cached: int = 0  # passages already in the cache: no request
    failures: int = 0  # passages still unanswered after the retries (a re-run asks them again)
    requests: int = 0
    retries: int = 0
    queries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    seconds: float = 0.0
    interrupted: bool = False
    errors: dict[str, int] = field(default_factory=dict)  # failure kind -> passages
    model: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def build_messages(
    passage: str, shots: Sequence[TrainingExample] = (), *, target_chars: int = TARGET_CHARS
) -> list[dict[str, str]]:
    """The chat messages that ask for a query about `passage`, InPars style: the examples as
    (document, relevant query) pairs, then the document with its query left blank."""
    lines = []
    for i, ex in enumerate(shots, 1):
        lines += [
            f"Example {i}:",
            f"Document: {_clip(ex.positive, SHOT_CHARS)}",
            f"Relevant query: {ex.query}",
            "",
        ]
    lines += [f"Document: {_clip(passage, target_chars)}", "Relevant query:"]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def generate_queries(
    corpus: Mapping[str, str],
    config: LLMConfig,
    *,
    few_shot: Sequence[TrainingExample] = (),
    shots: int = 3,
    per_doc: int = 1,
    cache: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[TrainingExample], GenerationReport]:
    """Up to `per_doc` queries for each passage of `corpus` (`doc id -> text`), each prompt showing
    `shots` real examples drawn (seeded, per passage) from `few_shot`. Answers are cached in the
    SQLite file `cache` (in memory if None: nothing to resume from). Ctrl-C stops the job and
    returns what is cached, with `report.interrupted`; the same call continues it. Each example's
    `positive_id` is its passage's id, so hard negatives can be mined for it."""
    config = config.checked()
    if per_doc < 1 or shots < 0:
        raise InvalidParameter("per_doc >= 1 and shots >= 0")
    pool = list({ex.query: ex for ex in few_shot}.values())
    if not pool:
        logger.warning("no few-shot examples: zero-shot prompts give queries less like your users'")
    started = time.monotonic()
    report = GenerationReport(passages=len(corpus), model=str(config.model))

    def ask_about(doc: str) -> list[dict[str, str]]:
        # Made again when asked rather than kept: a million prompts would not fit in memory.
        return build_messages(corpus[doc], _draw(pool, shots, doc, corpus[doc], seed))

    keys = {doc: _cache_key(config, ask_about(doc), per_doc) for doc in corpus}
    with _Cache(cache) as store:
        todo = [doc for doc in corpus if store.get(keys[doc]) is None]
        report.cached = len(corpus) - len(todo)
        try:
            asyncio.run(_ask_all(todo, ask_about, keys, config, per_doc, store, report, progress))
        except KeyboardInterrupt:
            report.interrupted = True
        examples = []
        for doc, text in corpus.items():
            for i, query in enumerate(store.get(keys[doc]) or ()):
                examples.append(
                    TrainingExample(query, text, f"synthetic:{doc}:{i}", doc, judged=frozenset({doc}))
                )
    report.queries = len(examples)
    report.cost = config.cost(report.prompt_tokens, report.completion_tokens)
    report.seconds = time.monotonic() - started
    return examples, report


async def _ask_all(
    todo: Sequence[str],
    ask_about: Callable[[str], list[dict[str, str]]],
    keys: Mapping[str, str],
    config: LLMConfig,
    per_doc: int,
    store: _Cache,
    report: GenerationReport,
    progress: bool,
) -> None:
    import httpx2
    import openai
    from aiolimiter import AsyncLimiter
    from tqdm.auto import tqdm

    # Capacity 1: requests are spaced evenly, never a burst of a minute's worth at the start.
    limiter = AsyncLimiter(1, 60.0 / config.requests_per_minute)
    in_flight = asyncio.Semaphore(config.concurrency)
    fatal: list[BaseException] = []

    async def before_send(request: httpx2.Request) -> None:
        # Every attempt, the client's own retries included, waits for the rate limit here.
        await limiter.acquire()
        report.requests += 1
        if request.headers.get("x-stainless-retry-count", "0") != "0":
            report.retries += 1

    async def ask(client: openai.AsyncOpenAI, doc: str) -> None:
        try:
            response = await client.chat.completions.create(
                model=str(config.model),
                messages=ask_about(doc),  # type: ignore[arg-type]
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                n=per_doc,
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            fatal.append(
                InvalidParameter(
                    f"{config.base_url} refused the API key ({exc.status_code}): set OPENAI_API_KEY"
                )
            )
            return
        except openai.NotFoundError as exc:
            fatal.append(
                InvalidParameter(
                    f"{config.base_url} has no chat completions for model {config.model!r} (404): "
                    f"check the base URL (it usually ends in /v1) and the model name; {exc.message}"
                )
            )
            return
        except openai.APIError as exc:  # still failing after the retries, or not retryable (400 ...)
            kind = type(exc).__name__
            report.failures += 1
            report.errors[kind] = report.errors.get(kind, 0) + 1
            logger.warning("no query for passage %s: %s: %s", doc, kind, exc.message)
            return
        queries = list(dict.fromkeys(q for c in response.choices if (q := _query_of(c.message.content))))
        usage = response.usage
        prompt, completion = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
        report.prompt_tokens += prompt
        report.completion_tokens += completion
        if not queries:
            report.failures += 1
            report.errors["empty answer"] = report.errors.get("empty answer", 0) + 1
            return
        store.put(keys[doc], doc, queries, prompt, completion)
        report.answered += 1

    pending = iter(todo)

    async def worker(client: openai.AsyncOpenAI, bar: tqdm[Any]) -> None:
        # A fixed set of workers, not a task per passage: memory stays flat for any corpus.
        for doc in pending:
            if fatal:
                return
            async with in_flight:
                await ask(client, doc)
            bar.update(1)

    bar = tqdm(
        total=report.passages,
        initial=report.cached,
        desc="generating queries",
        unit="passage",
        disable=not progress,
    )
    http = httpx2.AsyncClient(timeout=config.timeout, event_hooks={"request": [before_send]})
    client = openai.AsyncOpenAI(
        base_url=config.base_url,
        api_key=config.api_key or "unused",  # local servers need none; a real one answers 401
        max_retries=config.max_retries,
        timeout=config.timeout,
        http_client=http,
    )
    try:
        async with client:
            await asyncio.gather(*(worker(client, bar) for _ in range(min(config.concurrency, len(todo)))))
    finally:
        bar.close()
    if fatal:
        raise fatal[0]


def _draw(
    pool: Sequence[TrainingExample], shots: int, doc: str, text: str, seed: int
) -> list[TrainingExample]:
    """`shots` examples for passage `doc`, seeded by it (so its prompt, and so its cache key, is the
    same on every run), never one about the passage itself (that would hand the model the answer)."""
    if not pool or not shots:
        return []
    rng = random.Random(f"{seed}:{doc}")
    picked = rng.sample(pool, min(len(pool), shots + 1))
    return [ex for ex in picked if ex.positive_id != doc and ex.positive != text][:shots]


def _clip(text: str, chars: int) -> str:
    text = " ".join(text.split())
    if len(text) <= chars:
        return text
    return text[:chars].rsplit(" ", 1)[0]


def _query_of(content: str | None) -> str:
    """The query in an answer: its first line, without a "Relevant query:" label or quotes."""
    for line in (content or "").splitlines():
        line = line.strip()
        for label in ("relevant query:", "query:"):
            if line.lower().startswith(label):
                line = line[len(label) :].strip()
        line = line.strip("\"'` ")
        if line:
            return line
    return ""


def _cache_key(config: LLMConfig, messages: list[dict[str, str]], per_doc: int) -> str:
    asked = {
        "model": config.model,
        "messages": messages,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "n": per_doc,
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


class _Cache:
    """Answers by cache key in SQLite, each committed as it arrives (the job's journal)."""

    def __init__(self, path: str | Path | None) -> None:
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(":memory:" if path is None else str(path))
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, doc TEXT, queries TEXT, "
            "prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)"
        )
        self._db.commit()

    def __enter__(self) -> _Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self._db.close()

    def get(self, key: str) -> list[str] | None:
        row = self._db.execute("SELECT queries FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else list(json.loads(row[0]))

    def put(self, key: str, doc: str, queries: list[str], prompt: int, completion: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
            (key, doc, json.dumps(queries), prompt, completion, time.time()),
        )
        self._db.commit()
