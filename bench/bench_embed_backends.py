"""Compare ways of running the embedding model on this CPU: speed and agreement with fp32.

Routes: fp32 PyTorch (the reference), bf16 autocast, bf16 weights, our OpenVINO backends
(LocalEmbeddings "openvino-fp32" / "openvino-bf16": cached IR, tokenizers, no torch at run time),
and with --onnx, ONNX Runtime (fp32 and dynamic int8) and OpenVINO on a plain ONNX export. Prints a table of texts/s (median
of --repeats runs), the ratio to fp32, and mean/min cosine to the fp32 vectors; then a batch size
sweep for the fastest route that stays accurate. A script that prints figures, not a test.

    python bench/bench_embed_backends.py --texts 400 --repeats 3
    python bench/bench_embed_backends.py --routes "torch fp32,ours openvino-bf16" --batches 16,32,64
    python bench/bench_embed_backends.py --bulk --size 1100 --texts 1500   # the OpenVINO bulk path
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

from embeddings import LocalEmbeddings, cpu_supports_bf16  # noqa: E402

Embed = Callable[[list[str], int], np.ndarray]
ACCURATE = 0.995  # mean cosine to fp32 a route needs to be a candidate for "auto"


@dataclass
class Result:
    route: str
    texts_per_s: float
    mean_cos: float
    min_cos: float


def load_passages(jsonl: Path, n: int, size: int = 700) -> list[str]:
    """First ``n`` passages of about ``size`` characters, cut at sentence ends, from articles."""
    passages: list[str] = []
    with jsonl.open(encoding="utf-8") as handle:
        for line in handle:
            text = json.loads(line).get("text", "")
            current = ""
            for sentence in re.split(r"(?<=[.!?])\s+", text):
                if current and len(current) + len(sentence) + 1 > size:
                    passages.append(current)
                    current = ""
                current = f"{current} {sentence}".strip()
            if current:
                passages.append(current)
            if len(passages) >= n:
                break
    return passages[:n]


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32, copy=False)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def batched(
    texts: list[str], batch_size: int, run: Callable[[list[str]], np.ndarray]
) -> np.ndarray:
    """Longest-first batches, results back in input order (as LocalEmbeddings does)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    out: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        vectors = normalise(run([texts[i] for i in idx]))
        if out is None:
            out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
        out[idx] = vectors
    assert out is not None
    return out


def measure_all(
    routes: dict[str, Embed], texts: list[str], batch: int, repeats: int, reference: np.ndarray
) -> list[Result]:
    """Time every route ``repeats`` times, round-robin, so load from other processes on the
    machine is spread over all routes instead of hitting one."""
    times: dict[str, list[float]] = {name: [] for name in routes}
    vectors: dict[str, np.ndarray] = {}
    for embed in routes.values():
        embed(texts[: min(len(texts), batch)], batch)  # warm-up: first-call allocations
    for _ in range(repeats):
        for name, embed in routes.items():
            start = time.perf_counter()
            vectors[name] = embed(texts, batch)
            times[name].append(time.perf_counter() - start)
    results = []
    for name in routes:
        cos = np.sum(vectors[name] * reference, axis=1)
        speed = len(texts) / statistics.median(times[name])
        results.append(Result(name, speed, float(cos.mean()), float(cos.min())))
    return results


# --- routes ----------------------------------------------------------------------------------


def torch_route(backend: str) -> Embed:
    """A LocalEmbeddings backend (despite the name, also the OpenVINO ones)."""
    emb = LocalEmbeddings(backend=backend)

    def embed(texts: list[str], batch: int) -> np.ndarray:
        emb._batch_size = batch  # bench only: reuse the loaded model across batch sizes
        return emb.embed(texts)

    return embed


def bf16_autocast_route() -> Embed:
    """fp32 weights under bf16 autocast (what the "bf16" backend did before it cast weights)."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        str(LocalEmbeddings().model_path), device="cpu", local_files_only=True
    ).eval()
    prepare = getattr(model, "preprocess", None) or model.tokenize

    def run(batch_texts: list[str]) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return model(prepare(batch_texts))["sentence_embedding"].float().numpy()

    return lambda texts, batch: batched(texts, batch, run)


class _Tokenise:
    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(
            str(LocalEmbeddings().model_path), device="cpu", local_files_only=True
        )
        self.model = model
        self.tokenizer = model.tokenizer
        self.max_len = int(model.max_seq_length)

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_len, return_tensors="np"
        )
        return {
            k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")
        }


def export_onnx(tok: _Tokenise, folder: Path) -> Path:
    """BERT -> mean pooling -> normalise, exported as one ONNX graph with dynamic batch/length."""
    import torch

    bert = tok.model[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    sample = tok(["an example sentence", "another, somewhat longer example sentence"])
    args = tuple(
        torch.from_numpy(sample[k]) for k in ("input_ids", "attention_mask", "token_type_ids")
    )
    path = folder / "model.onnx"
    axes = {"batch": 0, "seq": 1}
    torch.onnx.export(
        Pooled().eval(),
        args,
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["embedding"],
        dynamic_axes={
            "input_ids": {v: k for k, v in axes.items()},
            "attention_mask": {v: k for k, v in axes.items()},
            "token_type_ids": {v: k for k, v in axes.items()},
            "embedding": {0: "batch"},
        },
    )
    return path


def ort_route(tok: _Tokenise, path: Path) -> Embed:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Threads that spin while waiting steal the CPU from the other thread on a busy 2-core box.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(batch_texts: list[str]) -> np.ndarray:
        return session.run(None, tok(batch_texts))[0]

    return lambda texts, batch: batched(texts, batch, run)


def quantize(path: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = path.with_name("model.int8.onnx")
    quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8, per_channel=True)
    return out


def openvino_route(tok: _Tokenise, path: Path, precision: str | None) -> Embed:
    import openvino as ov

    core = ov.Core()
    config = {} if precision is None else {"INFERENCE_PRECISION_HINT": precision}
    compiled = core.compile_model(str(path), "CPU", config)

    def run(batch_texts: list[str]) -> np.ndarray:
        return np.asarray(compiled(tok(batch_texts))[0])

    return lambda texts, batch: batched(texts, batch, run)


# --- main ------------------------------------------------------------------------------------


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"


def build_routes(
    tmp: Path, wanted: set[str] | None, onnx: bool
) -> tuple[dict[str, Embed], list[str]]:
    """Every route that can be built here; the others come back as "name: reason" lines."""
    routes: dict[str, Embed] = {"torch fp32": torch_route("fp32")}
    skipped: list[str] = []

    def attempt(name: str, build: Callable[[], Embed]) -> None:
        if wanted is not None and name not in wanted:
            return
        try:
            routes[name] = build()
        except Exception as exc:  # any failure: report the route as skipped, keep going
            skipped.append(f"{name}: {_why(exc)}")

    attempt("torch bf16 autocast", bf16_autocast_route)
    attempt("torch bf16 weights", lambda: torch_route("bf16"))  # our "bf16" backend
    attempt("ours openvino-fp32", lambda: torch_route("openvino-fp32"))
    attempt("ours openvino-bf16", lambda: torch_route("openvino-bf16"))
    if not onnx:
        return routes, skipped
    try:
        tok = _Tokenise()
        with warnings.catch_warnings():  # the tracer's warnings are about code paths BERT skips
            warnings.simplefilter("ignore")
            onnx_path = export_onnx(tok, tmp)
    except Exception as exc:  # no exporter or export failed: every ONNX route is skipped
        skipped.append(f"onnx routes: export failed: {_why(exc)}")
        return routes, skipped
    logging.getLogger().setLevel(logging.ERROR)  # quantizer's "consider pre-processing" note
    attempt("onnxruntime fp32", lambda: ort_route(tok, onnx_path))
    attempt("onnxruntime int8 (dynamic)", lambda: ort_route(tok, quantize(onnx_path)))
    attempt("openvino f32", lambda: openvino_route(tok, onnx_path, "f32"))
    attempt("openvino bf16", lambda: openvino_route(tok, onnx_path, "bf16"))
    return routes, skipped


def int8_model(texts: list[str]) -> LocalEmbeddings | str:
    """OpenVINO bf16 embeddings whose model is quantised to int8 by NNCF (post-training, the
    transformer preset, calibrated on 300 of ``texts``), or the reason it cannot be built.
    NNCF is not a dependency of this project: ``pip install nncf`` to include this route."""
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        return f"{exc} (pip install nncf to measure it)"
    from embeddings import ov_backend

    emb = LocalEmbeddings(backend="openvino-bf16")
    runner = emb._load().run
    assert isinstance(runner, ov_backend.OpenVINORunner)
    folder = ov_backend.cached_ir(
        emb.model_path, emb.model_id, ov_backend.default_cache_dir(), runner.tokenise
    )
    core = ov.Core()
    quantised = nncf.quantize(
        core.read_model(str(folder / "model.xml")),
        nncf.Dataset(texts[::-1][:300], lambda text: runner.tokenise([text])),
        subset_size=300,
        model_type=nncf.ModelType.TRANSFORMER,
    )
    # bench only: swap the model, compiled with the runner's own settings
    runner._compiled = core.compile_model(quantised, "CPU", runner.config)
    return emb


# --- the OpenVINO bulk path ------------------------------------------------------------------


@contextlib.contextmanager
def busy_python_thread() -> Iterator[None]:
    """Another thread doing pure-Python work (it holds the GIL while it runs) meanwhile."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(i * i for i in range(20_000))

    thread = threading.Thread(target=spin, name="bench-busy")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def bulk_section(texts: list[str], repeats: int, reference: np.ndarray) -> None:
    """OpenVINO bf16 ways of embedding many texts: the per-batch path (texts sorted by characters,
    batches of 64 at whatever length the longest has) against the bulk path (sorted by tokens,
    batches of about _BULK_TOKENS tokens padded to a multiple of _PAD_MULTIPLE, with
    _QUEUED_PER_STREAM batches per stream submitted), under both performance hints; the queue
    depth again while another Python thread keeps busy, as the ingest's writing does; then one
    short query's latency."""
    from embeddings import ov_backend

    defaults = (
        ov_backend._HINT,
        ov_backend._PAD_MULTIPLE,
        ov_backend._BULK_TOKENS,
        ov_backend._QUEUED_PER_STREAM,
    )
    models: dict[str, LocalEmbeddings] = {}
    for hint in ("LATENCY", "THROUGHPUT"):
        ov_backend._HINT = hint  # bench only: read when the model loads
        models[hint] = LocalEmbeddings(backend="openvino-bf16")
        models[hint].embed(texts[:8])
    ov_backend._HINT = defaults[0]
    tokeniser = ov_backend._Tokeniser(models["LATENCY"].model_path)
    tokens = sum(len(ids) for ids, _ in tokeniser.encode(texts))

    def per_batch(hint: str, pad: int) -> Callable[[], np.ndarray]:
        run = models[hint]._load().run

        def go() -> np.ndarray:
            ov_backend._PAD_MULTIPLE = pad
            return batched(texts, 64, run)

        return go

    def bulk(
        hint: str, pad: int, budget: int, queued: int = defaults[3], busy: bool = False
    ) -> Callable[[], np.ndarray]:
        def go() -> np.ndarray:
            ov_backend._PAD_MULTIPLE, ov_backend._BULK_TOKENS = pad, budget
            ov_backend._QUEUED_PER_STREAM = queued
            if not busy:
                return models[hint].embed(texts)
            with busy_python_thread():
                return models[hint].embed(texts)

        return go

    budget = defaults[2]
    int8 = int8_model(texts)
    variants: dict[str, Callable[[], np.ndarray]] = {
        "per batch of 64, LATENCY, pad 1": per_batch("LATENCY", 1),
        "per batch of 64, LATENCY, pad 16": per_batch("LATENCY", 16),
        f"bulk {budget} tok, LATENCY, pad 1": bulk("LATENCY", 1, budget),
        f"bulk {budget} tok, LATENCY, pad 16": bulk("LATENCY", 16, budget),
        f"bulk {budget} tok, THROUGHPUT, pad 1": bulk("THROUGHPUT", 1, budget),
    }
    for b in (1024, 2048, 3072, 4096, 8192):
        variants[f"bulk {b} tok, THROUGHPUT, pad 16"] = bulk("THROUGHPUT", 16, b)
    for queued in (1, 2):
        variants[f"same {budget}, {queued} queued/stream"] = bulk("THROUGHPUT", 16, budget, queued)
        variants[f"same, {queued} queued/stream, busy thread"] = bulk(
            "THROUGHPUT", 16, budget, queued, busy=True
        )
    if isinstance(int8, str):
        print(f"int8 route skipped: {int8}")
    else:
        models["int8"] = int8
        variants[f"bulk {budget} tok, THROUGHPUT, pad 16, int8"] = bulk("int8", 16, budget)
    times: dict[str, list[float]] = {name: [] for name in variants}
    cosines: dict[str, float] = {}
    try:
        for _ in range(repeats):
            for name, go in variants.items():
                start = time.perf_counter()
                vectors = go()
                times[name].append(time.perf_counter() - start)
                cosines[name] = float(np.sum(vectors * reference, axis=1).mean())
    finally:
        (
            ov_backend._HINT,
            ov_backend._PAD_MULTIPLE,
            ov_backend._BULK_TOKENS,
            ov_backend._QUEUED_PER_STREAM,
        ) = defaults
    print(f"\nOpenVINO bf16, {len(texts)} passages, {tokens} tokens, median of {repeats}:")
    first = statistics.median(times[next(iter(variants))])
    print(f"{'variant':<38} {'texts/s':>8} {'tokens/s':>9} {'vs first':>8} {'mean cos':>9}")
    for name in variants:
        t = statistics.median(times[name])
        print(
            f"{name:<38} {len(texts) / t:>8.1f} {tokens / t:>9.0f} {first / t:>7.2f}x "
            f"{cosines[name]:>9.6f}"
        )
    print('one query ("Who raised interest rates?"), p50 of 200:')
    for hint, emb in list(models.items())[:2]:
        samples = []
        for _ in range(220):
            start = time.perf_counter()
            emb.embed_query("Who raised interest rates?")
            samples.append(time.perf_counter() - start)
        print(f"  {hint:<11} {statistics.median(samples[20:]) * 1000:6.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000, help="passages to embed per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per route (median taken)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size of the routes")
    parser.add_argument(
        "--routes", help="comma list of route names to run (default: all); torch fp32 always runs"
    )
    parser.add_argument(
        "--onnx", action="store_true", help="also the ONNX Runtime / plain-export OpenVINO routes"
    )
    parser.add_argument("--batches", default="32,64,128", help="batch sizes of the sweep")
    parser.add_argument(
        "--bulk",
        action="store_true",
        help="only the OpenVINO bulk-path table (token batching, padding, hints) and query latency",
    )
    parser.add_argument("--size", type=int, default=700, help="passage length in characters")
    parser.add_argument(
        "--jsonl",
        type=Path,
        default=ROOT.parent / "shared/eval/bbc-news/bbc_news.jsonl",
        help="articles, one JSON object with a 'text' field per line",
    )
    args = parser.parse_args(argv)
    if args.texts < 1 or args.repeats < 1 or args.batch_size < 1:
        parser.error("--texts, --repeats and --batch-size must be positive")

    import torch

    texts = load_passages(args.jsonl, args.texts, args.size)
    mean_len = statistics.mean(len(t) for t in texts)
    print(f"{len(texts)} passages (mean {mean_len:.0f} chars) from {args.jsonl}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"cpu native bf16: {cpu_supports_bf16()}, batch {args.batch_size}, "
        f"median of {args.repeats} round-robin runs"
    )
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    wanted = {r.strip() for r in args.routes.split(",")} if args.routes else None
    if args.bulk:
        reference = torch_route("fp32")(texts, args.batch_size)
        bulk_section(texts, args.repeats, reference)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        routes, skipped = build_routes(Path(tmp), wanted, args.onnx)
        reference = routes["torch fp32"](texts, args.batch_size)
        results = measure_all(routes, texts, args.batch_size, args.repeats, reference)

        base = results[0].texts_per_s
        print(f"\n{'route':<28} {'texts/s':>8} {'vs fp32':>8} {'mean cos':>9} {'min cos':>9}")
        for r in results:
            print(
                f"{r.route:<28} {r.texts_per_s:>8.1f} {r.texts_per_s / base:>7.2f}x "
                f"{r.mean_cos:>9.6f} {r.min_cos:>9.6f}"
            )
        for line in skipped:
            print(f"skipped {line}")

        best = max((r for r in results if r.mean_cos >= ACCURATE), key=lambda r: r.texts_per_s)
        print(f"\nbatch sizes for the fastest accurate route ({best.route}), and fp32:")
        sweep = {name: routes[name] for name in dict.fromkeys(["torch fp32", best.route])}
        sweep.update((name, routes[name]) for name in routes if name.startswith("ours"))
        print(f"{'batch':>6}" + "".join(f" {name:>24}" for name in sweep))
        for batch in (int(b) for b in args.batches.split(",")):
            timed = measure_all(sweep, texts, batch, args.repeats, reference)
            print(f"{batch:>6}" + "".join(f" {r.texts_per_s:>20.1f} t/s" for r in timed))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
