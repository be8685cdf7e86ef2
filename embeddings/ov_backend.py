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
from pathlib import Path
from typing import Any, Final

import numpy as np

from embeddings.errors import EmbeddingModelError

_CACHE_FORMAT: Final = 1  # bump when the cached layout or the conversion changes
_XML: Final = "model.xml"
_BIN: Final = "model.bin"
_META: Final = "meta.json"
_INPUTS: Final = ("input_ids", "attention_mask", "token_type_ids")


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


class _Tokeniser:
    """Texts -> padded numpy inputs, exactly as the sentence-transformers Transformer module does."""

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
        tok.enable_padding(
            pad_id=int(pad.get("pad_id", pad_id if pad_id is not None else 0)),
            pad_token=str(pad.get("pad_token", pad_token)),
        )
        self._tok = tok
        self._lock = threading.Lock()  # truncation/padding state lives on the shared object

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        items = [t.strip() for t in texts]  # sentence-transformers strips before tokenising
        if self.lower:
            items = [t.lower() for t in items]
        with self._lock:
            encodings = self._tok.encode_batch(items)
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }


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
        config = {
            "INFERENCE_PRECISION_HINT": precision,
            "INFERENCE_NUM_THREADS": cpu_count(),
            "PERFORMANCE_HINT": "LATENCY",  # one stream using every core: batches come one by one
        }
        try:
            self._compiled = core.compile_model(core.read_model(str(ir / _XML)), "CPU", config)
        except Exception as exc:
            raise EmbeddingModelError(
                f"OpenVINO could not load the converted model in {ir} ({_one_line(exc)}): delete that "
                "folder to convert again, or use the fp32 or bf16 backend"
            ) from exc
        self._names = [next(iter(port.get_names())) for port in self._compiled.inputs]
        self.dimension = int(self._compiled.outputs[0].get_partial_shape()[1].get_length())
        # One infer request per thread: a request is not safe to share between threads.
        self._local = threading.local()

    def __call__(self, texts: list[str]) -> np.ndarray:
        features = self.tokenise(texts)
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        result = request.infer({name: features[name] for name in self._names})
        return np.array(result[0], dtype=np.float32)  # copy: the request reuses its buffer
