"""Tests of embeddings/: argument checks and model lookup (fast), the real bundled model (slow)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from embeddings import EmbeddingModelError, LocalEmbeddings, cpu_supports_bf16, default_model_path
from embeddings.backends import resolve_backend

SENTENCES = [
    "The central bank raised interest rates by a quarter of a percentage point on Thursday.",
    "Shares in the carmaker fell sharply after it warned that profits would miss forecasts.",
    "Unemployment dropped to its lowest level in four years, according to official figures.",
    "The striker scored twice in the second half to send his side into the cup final.",
    "Rain delayed the start of the third test match by nearly two hours.",
    "The coach said the team had learned a lot from their defeat in Madrid.",
    "Ministers will publish their plans for reforming the pension system next month.",
    "The opposition leader accused the government of breaking its promise on taxes.",
    "Voters in the northern constituency go to the polls in a by-election on Friday.",
    "The new smartphone has a larger screen and a battery that lasts two days.",
    "Hackers stole the personal details of millions of customers from the retailer.",
    "Broadband use has doubled in the past year as prices have fallen.",
    "The film won three awards, including best director, at the ceremony in London.",
    "Critics praised the singer's new album as her most personal work so far.",
    "Tickets for the band's reunion tour sold out within minutes.",
    "Oil prices climbed above fifty dollars a barrel amid fears over supply.",
    "The airline plans to cut two thousand jobs to reduce costs.",
    "House prices in the capital rose by eight percent over the last twelve months.",
    "Scientists have found a gene that may raise the risk of heart disease.",
    "Doctors warned that the flu season could be worse than usual this winter.",
    "The hospital has cut waiting times for routine operations to under six months.",
    "Police arrested three men after a raid on a warehouse in the east of the city.",
    "The court ruled that the company had acted unlawfully in dismissing the workers.",
    "Flooding forced hundreds of families to leave their homes overnight.",
    "The school will open a new science building paid for by a local charity.",
    "Exports of whisky reached a record high, the industry body said.",
    "The games console maker reported strong sales over the Christmas period.",
    "A spokesman for the club declined to comment on reports of a takeover bid.",
    "The museum is returning a collection of ancient coins to its country of origin.",
    "Engineers expect the new railway line to cut journey times by a third.",
]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _copy_model(dest: Path) -> Path:
    """Copy the bundled model folder, linking the large weights file instead of copying it."""
    src = default_model_path()
    for path in src.rglob("*"):
        if not path.is_file():
            continue
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.stat().st_size > (4 << 20):
            target.symlink_to(path)
        else:
            shutil.copy2(path, target)
    return dest


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def fp32() -> Iterator[LocalEmbeddings]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        emb = LocalEmbeddings(backend="fp32", batch_size=4)
        assert emb.dimension == 384  # loads the model while offline
        yield emb


@pytest.fixture(scope="module")
def bf16() -> Iterator[LocalEmbeddings]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        emb = LocalEmbeddings(backend="bf16", batch_size=8)
        assert emb.dimension == 384
        yield emb


# --- fast: arguments, cpu detection, model lookup and identity -------------------------------


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"backend": "gpu"}, "backend"),
        ({"backend": ""}, "backend"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -3}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"model": None}, "model"),
        ({"model": 42}, "model"),
        ({"model": "   "}, "model"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_parameter(
    kwargs: dict[str, object], parameter: str
) -> None:
    with pytest.raises(ValueError, match=parameter):
        LocalEmbeddings(**kwargs)  # type: ignore[arg-type]


def test_constructor_loads_nothing_even_for_a_missing_model(tmp_path: Path) -> None:
    emb = LocalEmbeddings(model=str(tmp_path / "nowhere"), backend="fp32", batch_size=3)
    assert emb.batch_size == 3
    assert emb.backend == "fp32"


def test_bundled_model_folder_is_found_by_import() -> None:
    folder = default_model_path()
    assert folder.is_dir()
    assert (folder / "modules.json").is_file()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu vme sse avx2 avx512f amx_bf16 amx_tile", True),
        ("fpu vme sse avx2 avx512f avx512_bf16", True),
        ("fpu vme sse avx2 avx512f avx512_vnni", False),
    ],
)
def test_cpu_supports_bf16_reads_cpu_flags(tmp_path: Path, flags: str, expected: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    block = f"processor\t: 0\nflags\t\t: {flags}\n\n"
    cpuinfo.write_text(block + block.replace(": 0", ": 1"))
    assert cpu_supports_bf16(cpuinfo) is expected


def test_cpu_supports_bf16_is_false_when_unknown(tmp_path: Path) -> None:
    assert cpu_supports_bf16(tmp_path / "no-cpuinfo") is False


def test_backend_resolution() -> None:
    assert resolve_backend("fp32") == "fp32"
    assert resolve_backend("bf16") == "bf16"
    assert resolve_backend("auto") == ("bf16" if cpu_supports_bf16() else "fp32")
    assert LocalEmbeddings().backend in {"fp32", "bf16"}
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("int8")


def test_missing_model_folder_raises_helpful_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    emb = LocalEmbeddings(model=str(missing))
    with pytest.raises(EmbeddingModelError) as info:
        emb.embed(["hello"])
    message = str(info.value)
    assert "\n" not in message
    assert str(missing) in message
    assert "does not exist" in message
    assert "bundled" in message  # says what to do instead
    with pytest.raises(EmbeddingModelError):
        _ = emb.model_id


def test_folder_that_is_not_a_model_raises(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(EmbeddingModelError, match="not a sentence-transformers model folder"):
        _ = LocalEmbeddings(model=str(tmp_path)).model_id


def test_unknown_name_is_not_downloaded(tmp_path: Path) -> None:
    emb = LocalEmbeddings(model="no-such-org-7f3a/no-such-model-91c2")
    with pytest.raises(EmbeddingModelError, match="local Hugging Face cache"):
        emb.embed(["hello"])


def test_model_id_is_stable_and_location_independent(tmp_path: Path) -> None:
    first, second = LocalEmbeddings(), LocalEmbeddings(backend="fp32")
    assert first.model_id == second.model_id
    assert first.model_id.startswith("all-MiniLM-L6-v2-")
    # The same files elsewhere, under the same folder name: the same id.
    elsewhere = _copy_model(tmp_path / "a" / "all-MiniLM-L6-v2")
    assert LocalEmbeddings(model=str(elsewhere)).model_id == first.model_id


def test_model_id_depends_on_folder_contents(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path / "mini")
    before = LocalEmbeddings(model=str(folder)).model_id
    # Documentation is not the model: editing it keeps the id.
    (folder / "README.md").write_text("edited")
    assert LocalEmbeddings(model=str(folder)).model_id == before
    # Pooling decides the vectors: changing it changes the id.
    pooling = folder / "1_Pooling" / "config.json"
    pooling.write_text(
        pooling.read_text()
        .replace('"pooling_mode_cls_token": false', '"pooling_mode_cls_token": true')
        .replace('"pooling_mode_mean_tokens": true', '"pooling_mode_mean_tokens": false')
    )
    after = LocalEmbeddings(model=str(folder)).model_id
    assert after != before
    assert after.startswith("mini-")


# --- slow: the real bundled model ------------------------------------------------------------


@pytest.mark.slow
def test_real_model_loads_offline(fp32: LocalEmbeddings) -> None:
    assert fp32.dimension == 384
    assert fp32.model_path == default_model_path()


@pytest.mark.slow
def test_vectors_are_float32_unit_norm(fp32: LocalEmbeddings) -> None:
    vectors = fp32.embed(SENTENCES[:10] + [""])
    assert vectors.shape == (11, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_empty_input(fp32: LocalEmbeddings) -> None:
    vectors = fp32.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32
    assert fp32.embed_documents([]) == []


@pytest.mark.slow
def test_order_is_kept_despite_length_sorting(fp32: LocalEmbeddings) -> None:
    # Lengths deliberately out of order, so sorted batches differ from input order.
    texts = [
        SENTENCES[3],
        "Short one.",
        " ".join(SENTENCES[10:14]),
        SENTENCES[0] + " " + SENTENCES[1],
        "Rates rose.",
        SENTENCES[20],
        " ".join(SENTENCES[5:8]),
    ]
    batched = fp32.embed(texts)
    alone = np.stack([fp32.embed([text])[0] for text in texts])
    assert _cosines(batched, alone).min() > 0.9999
    # And each row really is its own text, not a neighbour's.
    similarity = batched @ alone.T
    assert (similarity.argmax(axis=1) == np.arange(len(texts))).all()


@pytest.mark.slow
def test_progress_reports_every_batch(fp32: LocalEmbeddings) -> None:
    counts: list[int] = []
    fp32.embed(SENTENCES[:11], progress=counts.append)
    assert sum(counts) == 11
    assert len(counts) == 3  # batch_size 4
    assert all(1 <= c <= fp32.batch_size for c in counts)


@pytest.mark.slow
def test_similar_sentences_are_closer_than_unrelated(fp32: LocalEmbeddings) -> None:
    a, b, c = fp32.embed(
        [
            "The central bank put up interest rates.",
            "Interest rates were raised by the bank.",
            "The striker scored a late goal in the final.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2


@pytest.mark.slow
def test_bf16_agrees_with_fp32(fp32: LocalEmbeddings, bf16: LocalEmbeddings) -> None:
    assert bf16.backend == "bf16"
    reference = fp32.embed(SENTENCES)
    lowered = bf16.embed(SENTENCES)
    assert lowered.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(lowered, axis=1), 1.0, atol=1e-5)
    cosines = _cosines(reference, lowered)
    assert cosines.mean() >= 0.995
    assert cosines.min() >= 0.98


@pytest.mark.slow
def test_langchain_interface(fp32: LocalEmbeddings) -> None:
    assert isinstance(fp32, Embeddings)
    documents = fp32.embed_documents(SENTENCES[:3])
    assert len(documents) == 3
    assert all(len(row) == 384 and all(isinstance(x, float) for x in row) for row in documents)
    query = fp32.embed_query(SENTENCES[1])
    assert isinstance(query, list) and len(query) == 384
    assert isinstance(query[0], float)
    np.testing.assert_allclose(query, documents[1], atol=1e-5)


@pytest.mark.slow
def test_first_use_from_many_threads_loads_once() -> None:
    emb = LocalEmbeddings(backend="fp32")
    results: list[list[float]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(emb.embed_query("The airline plans to cut jobs."))
        except BaseException as exc:  # collected and re-checked below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 4
    for row in results[1:]:
        np.testing.assert_allclose(row, results[0], atol=1e-5)


@pytest.mark.slow
def test_broken_weights_raise_model_error(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    src = default_model_path()
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(EmbeddingModelError, match="could not load the embedding model") as info:
        LocalEmbeddings(model=str(folder)).embed(["hello"])
    assert "\n" not in str(info.value)
