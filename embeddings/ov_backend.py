"""The model on OpenVINO: converted once to IR, cached on disk, then run without PyTorch.

The converted graph is the whole sentence-transformers pipeline (transformer, pooling,
normalisation), so its vectors are the same model's vectors: an index built with this backend
can be queried with the PyTorch ones and the other way round. Tokenisation uses the model's own
``tokenizer.json`` with the ``tokenizers`` library, so once the IR is cached neither torch nor
sentence-transformers is imported (that import is most of a cold start).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from embeddings.errors import EmbeddingModelError

_CACHE_FORMAT: Final = 1  # bump when the cached layout or the conversion changes
_XML: Final = "model.xml"
_BIN: Final = "model.bin"
_META: Final = "meta.json"
_INPUTS: Final = ("input_ids", "attention_mask", "token_type_ids")
_PAD_MULTIPLE = 16
# Tokens per batch on the bulk path (8 full-length passages, more short ones): 1k-4k measured
# alike, 8k slower (bench/bench_embed_backends.py --bulk).
_BULK_TOKENS = 2048
_HINT = "THROUGHPUT"  # OpenVINO performance hint (bench/bench_embed_backends.py --bulk)
# Batches queued per stream on the bulk path. With two, a stream that finishes a batch starts
# the next one at once instead of idling until this thread, which shares the GIL with the
# ingest's writing, wakes to hand it one.
_QUEUED_PER_STREAM = 2


def openvino_available() -> bool:
    """True when the ``openvino`` package can be imported (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def default_cache_dir() -> Path:
    """Where converted models are kept unless told otherwise: ~/.cache/rag-articles/openvino."""
    return Path.home() / ".cache" / "rag-articles" / "openvino"


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory; the rename still happened
        pass
    finally:
        os.close(fd)


def _padded_width(tokens: int) -> int:
    """Row width of a batch whose longest text has ``tokens`` tokens: the next multiple of
    _PAD_MULTIPLE (at least one)."""
    return -(-max(tokens, 1) // _PAD_MULTIPLE) * _PAD_MULTIPLE


class _Tokeniser:
    """Texts -> numpy inputs, exactly as the sentence-transformers Transformer module tokenises.

    Rows are padded to a multiple of ``_PAD_MULTIPLE`` tokens: the padding is masked out of
    attention and pooling (the vectors do not change), and OpenVINO's bf16 kernels run a length
    that is a multiple of 16 faster than a shorter odd one (bench/bench_embed_backends.py).
    """

    def __init__(self, folder: Path) -> None:
        config = _read_json(folder / "sentence_bert_config.json")
        self.max_length = int(config.get("max_seq_length") or 512)
        self.lower = bool(config.get("do_lower_case", False))
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise EmbeddingModelError(
                f"{folder} has no tokenizer.json, which the OpenVINO backend needs: use the fp32 "
                "or bf16 backend for this model"
            )
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(path))
        tok.enable_truncation(max_length=self.max_length)
        pad = tok.padding or {}
        special = _read_json(folder / "special_tokens_map.json").get("pad_token", "[PAD]")
        pad_token = special.get("content", "[PAD]") if isinstance(special, dict) else str(special)
        pad_id = tok.token_to_id(pad_token)
        self.pad_id = int(pad.get("pad_id", pad_id if pad_id is not None else 0))
        tok.no_padding()  # rows are padded here, per batch, once their lengths are known
        self._tok = tok

    def encode(self, texts: list[str]) -> list[tuple[list[int], list[int]]]:
        """(token ids, token type ids) of each text, truncated to the model's maximum length."""
        items = [t.strip() for t in texts]  # sentence-transformers strips before tokenising
        if self.lower:
            items = [t.lower() for t in items]
        return [(e.ids, e.type_ids) for e in self._tok.encode_batch(items)]

    def pad(self, encoded: Sequence[tuple[list[int], list[int]]]) -> dict[str, np.ndarray]:
        """One batch of encodings -> input arrays, padded to a multiple of _PAD_MULTIPLE."""
        width = _padded_width(max((len(ids) for ids, _ in encoded), default=1))
        ids = np.full((len(encoded), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        types = np.zeros((len(encoded), width), dtype=np.int64)
        for row, (tokens, type_ids) in enumerate(encoded):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
            types[row, : len(type_ids)] = type_ids
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        return self.pad(self.encode(texts))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _convert(folder: Path, tokeniser: _Tokeniser, dest: Path) -> None:
    """Trace the sentence-transformers model (all modules) and save it as IR with fp32 weights."""
    import openvino as ov
    import torch

    from embeddings.local import _load_model  # its errors say what is wrong with the folder

    model = _load_model(folder)
    sample = tokeniser(["an example sentence", "another, somewhat longer example sentence here"])
    names = list(_INPUTS)

    class Whole(torch.nn.Module):
        """Tensors in, sentence embedding out. The Transformer module drops inputs its model
        does not take (e.g. token_type_ids), so all three are always passed."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            features = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            return self.inner(features)["sentence_embedding"]

    example = tuple(torch.from_numpy(sample[n]) for n in names)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about branches BERT never takes
        ov_model = ov.convert_model(
            Whole().eval(),
            example_input=example,
            input=[(ov.PartialShape([-1, -1]), ov.Type.i64) for _ in names],
        )
    if len(ov_model.inputs) != len(names):  # an input the traced graph never used is dropped
        raise EmbeddingModelError(f"unexpected inputs after conversion: {ov_model.inputs}")
    for port, name in zip(ov_model.inputs, names, strict=True):
        port.get_tensor().set_names({name})
    ov_model.outputs[0].get_tensor().set_names({"sentence_embedding"})
    # compress_to_fp16=False: keep the fp32 weights; precision is chosen when compiling.
    ov.save_model(ov_model, str(dest / _XML), compress_to_fp16=False)


def cached_ir(folder: Path, model_id: str, cache_dir: Path, tokeniser: _Tokeniser) -> Path:
    """Folder holding the IR of ``model_id`` for this OpenVINO version, converting it if absent.

    Written to a temporary folder next to the final one and renamed into place, so a crash or a
    concurrent conversion never leaves a half-written model where a reader would find it.
    """
    import openvino as ov

    version = ov.get_version().split("-", 1)[0]
    final = cache_dir / f"{model_id}-ov{version}-v{_CACHE_FORMAT}"
    if (final / _META).is_file():
        return final
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=cache_dir))
    except OSError as exc:
        raise EmbeddingModelError(
            f"cannot write the OpenVINO model cache in {cache_dir} ({_one_line(exc)}): make it writable or "
            "use the fp32 or bf16 backend"
        ) from exc
    try:
        _convert(folder, tokeniser, tmp)
        meta = {"model_id": model_id, "openvino": ov.get_version(), "format": _CACHE_FORMAT}
        (tmp / _META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        for name in (_XML, _BIN, _META):
            _fsync_file(tmp / name)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / _META).is_file():  # not a lost race with another converter
                raise
        _fsync_dir(cache_dir)
    except EmbeddingModelError:
        raise
    except Exception as exc:
        raise EmbeddingModelError(
            f"could not convert the embedding model in {folder} to OpenVINO ({_one_line(exc)}): "
            "use the "
            "fp32 or bf16 backend"
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


class OpenVINORunner:
    """A compiled OpenVINO model plus its tokeniser: list of texts -> float32 vectors."""

    def __init__(
        self, folder: Path, model_id: str, precision: str, cache_dir: Path | None = None
    ) -> None:
        if precision not in ("bf16", "f32"):
            raise ValueError(f"precision must be 'bf16' or 'f32', got {precision!r}")
        try:
            import openvino as ov
        except ImportError as exc:
            raise EmbeddingModelError(
                "openvino is not installed: run 'pip install openvino' or use the fp32 or bf16 "
                "backend"
            ) from exc
        self.tokenise = _Tokeniser(folder)
        ir = cached_ir(folder, model_id, cache_dir or default_cache_dir(), self.tokenise)
        core = ov.Core()
        # THROUGHPUT: several streams, each on its own cores, so the bulk path keeps every
        # stream fed (faster than LATENCY's one stream over every core); a single query then
        # runs on one stream, a little slower. See bench_embed_backends.py --bulk.
        self.config = {  # what the model is compiled with
            "INFERENCE_PRECISION_HINT": precision,
            "INFERENCE_NUM_THREADS": cpu_count(),
            "PERFORMANCE_HINT": _HINT,
        }
        try:
            self._compiled = core.compile_model(core.read_model(str(ir / _XML)), "CPU", self.config)
        except Exception as exc:
            raise EmbeddingModelError(
                f"OpenVINO could not load the converted model in {ir} ({_one_line(exc)}): delete that "
                "folder to convert again, or use the fp32 or bf16 backend"
            ) from exc
        self._names = [next(iter(port.get_names())) for port in self._compiled.inputs]
        self.dimension = int(self._compiled.outputs[0].get_partial_shape()[1].get_length())
        self._jobs = max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        # One infer request per thread: a request is not safe to share between threads.
        self._local = threading.local()

    def __call__(self, texts: list[str]) -> np.ndarray:
        features = self.tokenise(texts)
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        result = request.infer({name: features[name] for name in self._names})
        return np.array(result[0], dtype=np.float32)  # copy: the request reuses its buffer

    def embed_many(
        self, texts: list[str], max_batch: int, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Vectors of many texts (not yet renormalised), in input order.

        All texts are tokenised first and batched by token count, longest first, so a batch
        pads its rows by a few tokens at most; a batch holds up to ``max_batch`` texts and about
        _BULK_TOKENS tokens. _QUEUED_PER_STREAM batches per stream are submitted at a time, so
        every core stays busy while this thread pads the next batch. ``progress`` gets the
        number of texts finished after each batch, called from this thread.
        """
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encoded = self.tokenise.encode(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i][0]), reverse=True)
        queued = self._jobs * _QUEUED_PER_STREAM
        requests = [self._compiled.create_infer_request() for _ in range(queued)]
        in_flight: deque[tuple[Any, list[int]]] = deque()

        def finish() -> Any:
            request, idx = in_flight.popleft()
            request.wait()
            out[idx] = request.get_output_tensor(0).data  # copied out before the request is reused
            if progress is not None:
                progress(len(idx))
            return request

        start = 0
        try:
            while start < len(order):
                # Sized by the padded width, so batches repeat a few shapes (OpenVINO reuses
                # the kernels it prepared for a shape it has seen).
                width = _padded_width(len(encoded[order[start]][0]))
                size = max(1, min(max_batch, _BULK_TOKENS // width))
                idx = order[start : start + size]
                start += size
                features = self.tokenise.pad([encoded[i] for i in idx])
                request = finish() if len(in_flight) == len(requests) else requests[len(in_flight)]
                request.start_async({name: features[name] for name in self._names})
                in_flight.append((request, idx))
            while in_flight:
                finish()
        finally:  # after an error (or an exception from progress): no request left running
            for request, _ in in_flight:
                request.wait()
        return out
