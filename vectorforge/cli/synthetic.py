"""`vectorforge synthesize ...`: training queries for a collection that has no labelled ones, from an
LLM or, with --offline, from the passages themselves; JSONL that `vectorforge finetune
--train jsonl --jsonl FILE` reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from vectorforge.cli.common import (
    DEFAULT_DATA,
    INTERRUPTED,
    CliError,
    CollectionOpt,
    DataOpt,
    console,
    err,
    open_collection,
    open_db,
)

__all__ = ["synthesize"]


def synthesize(
    collection: CollectionOpt,
    out: Annotated[
        Path, typer.Option(help='the JSONL to write: {"query", "positive", "positive_id"} a line')
    ],
    data: DataOpt = DEFAULT_DATA,
    beir: Annotated[
        Path | None, typer.Option(help="take the passages from this BEIR corpus, not the collection's texts")
    ] = None,
    offline: Annotated[
        str | None,
        typer.Option(help="no LLM: ict (a sentence as the query), titles, or ictitle (both); weaker"),
    ] = None,
    few_shot_beir: Annotated[
        Path | None, typer.Option(help="real queries for the prompts: a BEIR folder's qrels/SPLIT.tsv")
    ] = None,
    few_shot_jsonl: Annotated[
        Path | None, typer.Option(help='real queries for the prompts: {"query", "positive"} a line')
    ] = None,
    split: Annotated[
        str, typer.Option(help="the --few-shot-beir split (never the one you report)")
    ] = "train",
    shots: Annotated[int, typer.Option(help="real examples in each prompt")] = 3,
    per_doc: Annotated[int, typer.Option(help="queries asked for each passage")] = 1,
    limit: Annotated[int, typer.Option(help="only the first N passages (0: all)")] = 0,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint (default: $VECTORFORGE_LLM_BASE_URL)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="LLM model (default: $VECTORFORGE_LLM_MODEL)")] = None,
    concurrency: Annotated[int, typer.Option(help="requests in flight at most")] = 8,
    rpm: Annotated[float, typer.Option(help="requests per minute at most, retries included")] = 500.0,
    price_in: Annotated[float, typer.Option(help="price per million prompt tokens, for the cost")] = 0.0,
    price_out: Annotated[float, typer.Option(help="price per million completion tokens")] = 0.0,
    cache: Annotated[
        Path | None,
        typer.Option(help="the answer cache, which is also the job's journal (default: beside --out)"),
    ] = None,
    filter: Annotated[
        bool,
        typer.Option("--filter/--no-filter", help="keep a query only if it finds its passage in the top k"),
    ] = True,
    k: Annotated[int, typer.Option(help="the round-trip filter's depth")] = 3,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Write training queries for a collection's passages: from an LLM through any OpenAI-compatible
    API (few-shot from real queries; cached, so Ctrl-C and a re-run continue where it stopped), or
    with --offline from the passages alone. The round-trip filter keeps a query only if the
    collection's dense search or BM25 finds its passage in the top k."""
    from vectorforge.datasets import load_beir
    from vectorforge.finetune import (
        LLMConfig,
        consistency_filter,
        examples_from_beir,
        examples_from_jsonl,
        generate_queries,
        offline_queries,
    )
    from vectorforge.finetune.examples import payload_texts

    report: dict[str, Any] = {}
    with open_db(data) as db:
        col = open_collection(db, collection, data)
        if beir is not None:
            ds = load_beir(beir, split=None)
            passages = {d: ds.doc_text(d) for d in ds.corpus}
            titles = {d: doc.get("title", "") for d, doc in ds.corpus.items()}
        else:
            found = payload_texts(col, "text", "title")
            passages, titles = found["text"], found["title"]
            if not passages:
                raise CliError(
                    f"collection {collection!r} keeps no passage texts (payload 'text')",
                    "give the corpus with --beir FOLDER",
                )
        if limit:
            passages = dict(list(passages.items())[:limit])
        if offline is not None:
            examples, made = offline_queries(passages, titles, method=offline, seed=seed)
            report["offline"] = made.to_json()
            err.print(f"[yellow]{made.note}[/yellow]")
        else:
            few: list[Any] = []
            if few_shot_beir is not None:
                few, _ = examples_from_beir(few_shot_beir, split)
            elif few_shot_jsonl is not None:
                few = examples_from_jsonl(few_shot_jsonl)
            config = LLMConfig.from_env(
                base_url=base_url,
                model=model,
                concurrency=concurrency,
                requests_per_minute=rpm,
                input_price=price_in,
                output_price=price_out,
            )
            journal = cache or out.with_name(out.name + ".cache.sqlite")
            examples, generated = generate_queries(
                passages, config, few_shot=few, shots=shots, per_doc=per_doc, cache=journal, seed=seed
            )
            report["generation"] = generated.to_json()
            if generated.interrupted:
                err.print(
                    f"[yellow]interrupted[/yellow]: {generated.cached + generated.answered} of "
                    f"{generated.passages} passages are answered in {journal}; re-run the same command "
                    "to continue (answered passages cost nothing)"
                )
                raise typer.Exit(INTERRUPTED)
            if generated.failures:
                err.print(
                    f"[yellow]{generated.failures} passages got no query[/yellow] ({generated.errors}); "
                    "a re-run asks them again"
                )
        if filter and examples:
            examples, kept = consistency_filter(col, examples, k=k, progress=True)
            report["filter"] = kept.to_json()
    if not examples:
        raise CliError("no training query was made", "see the messages above")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        for ex in examples:
            row = {"query": ex.query, "positive": ex.positive, "positive_id": ex.positive_id}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = out.with_name(out.name + ".report.json")
    summary.write_text(json.dumps(report, indent=1))
    console.print(f"wrote {len(examples)} training queries to {out}; {_line(report)}; report: {summary}")


def _line(report: dict[str, Any]) -> str:
    parts = []
    if "generation" in report:
        g = report["generation"]
        parts.append(
            f"{g['requests']} requests ({g['retries']} retries, {g['cached']} passages from the cache), "
            f"{g['prompt_tokens']}+{g['completion_tokens']} tokens, cost {g['cost']:.4f}"
        )
    if "offline" in report:
        parts.append(f"offline {report['offline']['method']} (the weaker path)")
    if "filter" in report:
        f = report["filter"]
        by = f"dense {f['kept_by_dense']}, bm25 {f['kept_by_bm25']}"
        parts.append(f"the round-trip filter kept {f['kept']} of {f['examples']} ({by})")
    return "; ".join(parts)
