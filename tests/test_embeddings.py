"""Tests of embeddings/: argument checks and model lookup (fast), the real bundled model (slow)."""

from __future__ import annotations

import random
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from embeddings import (
    EmbeddingModelError,
    LocalEmbeddings,
    cpu_supports_bf16,
    default_model_path,
    ov_backend,
)
from embeddings import backends as backends_module
from embeddings.backends import BACKENDS, resolve_backend

FIXTURES = Path(__file__).parent / "fixtures"

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
    for name in ("fp32", "bf16", "openvino-fp32", "openvino-bf16"):
        assert resolve_backend(name) == name
    assert LocalEmbeddings().backend in set(BACKENDS) - {"auto"}
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("int8")


@pytest.mark.parametrize(
    ("bf16", "openvino", "expected"),
    [
        (True, True, "openvino-bf16"),
        (True, False, "bf16"),
        (False, True, "fp32"),  # emulated bf16 is slower than fp32
        (False, False, "fp32"),
    ],
)
def test_auto_picks_by_cpu_and_installed_packages(
    monkeypatch: pytest.MonkeyPatch, bf16: bool, openvino: bool, expected: str
) -> None:
    monkeypatch.setattr(backends_module, "cpu_supports_bf16", lambda: bf16)
    monkeypatch.setattr(ov_backend, "openvino_available", lambda: openvino)
    assert resolve_backend("auto") == expected
    assert LocalEmbeddings(backend="auto").backend == expected


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


@pytest.mark.usefixtures("real_model")
def test_real_model_loads_offline(fp32: LocalEmbeddings) -> None:
    assert fp32.dimension == 384
    assert fp32.model_path == default_model_path()


@pytest.mark.usefixtures("real_model")
def test_vectors_are_float32_unit_norm(fp32: LocalEmbeddings) -> None:
    vectors = fp32.embed(SENTENCES[:10] + [""])
    assert vectors.shape == (11, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.usefixtures("real_model")
def test_empty_input(fp32: LocalEmbeddings) -> None:
    vectors = fp32.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32
    assert fp32.embed_documents([]) == []


@pytest.mark.usefixtures("real_model")
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


@pytest.mark.usefixtures("real_model")
def test_progress_reports_every_batch(fp32: LocalEmbeddings) -> None:
    counts: list[int] = []
    fp32.embed(SENTENCES[:11], progress=counts.append)
    assert sum(counts) == 11
    assert len(counts) == 3  # batch_size 4
    assert all(1 <= c <= fp32.batch_size for c in counts)


@pytest.mark.usefixtures("real_model")
def test_similar_sentences_are_closer_than_unrelated(fp32: LocalEmbeddings) -> None:
    a, b, c = fp32.embed(
        [
            "The central bank put up interest rates.",
            "Interest rates were raised by the bank.",
            "The striker scored a late goal in the final.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2


@pytest.mark.usefixtures("real_model")
def test_bf16_agrees_with_fp32(fp32: LocalEmbeddings, bf16: LocalEmbeddings) -> None:
    assert bf16.backend == "bf16"
    reference = fp32.embed(SENTENCES)
    lowered = bf16.embed(SENTENCES)
    assert lowered.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(lowered, axis=1), 1.0, atol=1e-5)
    cosines = _cosines(reference, lowered)
    assert cosines.mean() >= 0.995
    assert cosines.min() >= 0.98


@pytest.mark.usefixtures("real_model")
def test_langchain_interface(fp32: LocalEmbeddings) -> None:
    assert isinstance(fp32, Embeddings)
    documents = fp32.embed_documents(SENTENCES[:3])
    assert len(documents) == 3
    assert all(len(row) == 384 and all(isinstance(x, float) for x in row) for row in documents)
    query = fp32.embed_query(SENTENCES[1])
    assert isinstance(query, list) and len(query) == 384
    assert isinstance(query[0], float)
    np.testing.assert_allclose(query, documents[1], atol=1e-5)


@pytest.mark.usefixtures("real_model")
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


@pytest.mark.usefixtures("real_model")
def test_broken_weights_raise_model_error(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    src = default_model_path()
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(EmbeddingModelError, match="could not load the embedding model") as info:
        LocalEmbeddings(model=str(folder)).embed(["hello"])
    assert "\n" not in str(info.value)


# --- slow: other backends against fp32 on real-looking text ----------------------------------


def _fixture_passages(n: int = 200, size: int = 700) -> list[str]:
    """``n`` distinct passages of consecutive whole sentences, 250 to ``size`` characters, from the
    fixture articles and the news sentences above (seeded random windows, so there are enough)."""
    sentences: list[str] = []
    for path in sorted(FIXTURES.rglob("*")):
        if path.suffix in {".txt", ".md"} and not path.name.endswith(".expected.txt"):
            text = " ".join(path.read_text(encoding="utf-8").split())
            sentences += [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s) > 20]
    sentences += SENTENCES
    rng = random.Random(7)
    passages: list[str] = []
    while len(passages) < n:
        start, limit = rng.randrange(len(sentences)), rng.randint(250, size)
        current = ""
        for sentence in sentences[start:] + sentences[:start]:
            if current and len(current) + len(sentence) + 1 > limit:
                break
            current = f"{current} {sentence}".strip()
        if current[:size] not in passages:
            passages.append(current[:size])
    return passages


@pytest.fixture(scope="module")
def passages() -> list[str]:
    return _fixture_passages()


@pytest.fixture(scope="module")
def reference(fp32: LocalEmbeddings, passages: list[str]) -> np.ndarray:
    return fp32.embed(passages)


@pytest.fixture(scope="module")
def ov_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("openvino")
    return tmp_path_factory.mktemp("ov-cache")


@pytest.fixture(scope="module")
def ov_bf16(ov_cache: Path) -> LocalEmbeddings:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        emb = LocalEmbeddings(backend="openvino-bf16", batch_size=16, cache_dir=ov_cache)
        assert emb.dimension == 384  # converts the model into ov_cache
        return emb


def test_fixture_passages_look_like_ingested_ones() -> None:
    passages = _fixture_passages()
    assert len(passages) == 200
    assert len(set(passages)) == 200
    assert 300 < np.mean([len(p) for p in passages]) <= 700
    assert max(len(p) for p in passages) <= 700


@pytest.mark.usefixtures("real_model")
@pytest.mark.parametrize("backend", ["bf16", "openvino-fp32", "openvino-bf16"])
def test_backend_agrees_with_fp32_on_passages(
    backend: str, passages: list[str], reference: np.ndarray, request: pytest.FixtureRequest
) -> None:
    ov_cache = request.getfixturevalue("ov_cache") if backend.startswith("openvino") else None
    emb = LocalEmbeddings(backend=backend, batch_size=32, cache_dir=ov_cache)
    assert emb.model_id == LocalEmbeddings(backend="fp32").model_id  # same vector space
    vectors = emb.embed(passages)
    assert vectors.dtype == np.float32
    assert vectors.shape == reference.shape
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = _cosines(reference, vectors)
    assert cosines.mean() >= 0.995
    assert cosines.min() >= 0.98
    # Retrieval is what matters: each passage's nearest fp32 neighbours are found again.
    same_top = (vectors @ reference.T).argmax(axis=1) == np.arange(len(passages))
    assert same_top.mean() >= 0.99


@pytest.mark.usefixtures("real_model")
def test_openvino_tokeniser_matches_sentence_transformers(passages: list[str]) -> None:
    pytest.importorskip("openvino")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)
    prepare = getattr(model, "preprocess", None) or model.tokenize
    texts = passages[:20] + ["", "  padded with spaces  ", "word " * 400, "Ünïcödé café naïve"]
    tokeniser = ov_backend._Tokeniser(default_model_path())
    for batch in (texts, texts[:3], ["Ünïcödé café naïve"]):
        expected = {
            k: prepare(batch)[k].numpy() for k in ("input_ids", "attention_mask", "token_type_ids")
        }
        got = tokeniser(batch)
        width = expected["input_ids"].shape[1]
        assert (
            got["input_ids"].shape[1] % 16 == 0 and width <= got["input_ids"].shape[1] < width + 16
        )
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            np.testing.assert_array_equal(got[name][:, :width], expected[name])
        # The extra columns are padding, masked out of attention and pooling.
        assert not got["attention_mask"][:, width:].any()
        assert (got["input_ids"][:, width:] == tokeniser.pad_id).all()


@pytest.mark.usefixtures("real_model")
def test_openvino_model_is_cached_once_and_reused(ov_bf16: LocalEmbeddings, ov_cache: Path) -> None:
    folders = [p for p in ov_cache.iterdir() if p.is_dir()]
    assert len(folders) == 1  # no temporary conversion folder left behind
    folder = folders[0]
    assert folder.name.startswith(ov_bf16.model_id)
    assert {"model.xml", "model.bin", "meta.json"} <= {p.name for p in folder.iterdir()}
    stamp = (folder / "model.bin").stat().st_mtime_ns
    again = LocalEmbeddings(backend="openvino-fp32", cache_dir=ov_cache)
    vectors = again.embed(SENTENCES[:4])
    assert (folder / "model.bin").stat().st_mtime_ns == stamp  # loaded, not converted again
    assert [p for p in ov_cache.iterdir() if p.is_dir()] == folders
    assert _cosines(vectors, ov_bf16.embed(SENTENCES[:4])).min() > 0.999


@pytest.mark.usefixtures("real_model")
def test_openvino_keeps_order_progress_and_query_interface(
    ov_bf16: LocalEmbeddings, fp32: LocalEmbeddings
) -> None:
    texts = [SENTENCES[3], "Short one.", " ".join(SENTENCES[10:16]), "", SENTENCES[20]]
    counts: list[int] = []
    batched = ov_bf16.embed(texts * 5, progress=counts.append)
    assert sum(counts) == 25 and len(counts) == 2  # batch_size 16
    alone = np.stack([ov_bf16.embed([t])[0] for t in texts])
    assert _cosines(batched[:5], alone).min() > 0.999
    query = ov_bf16.embed_query("Who raised interest rates?")
    assert len(query) == 384 and isinstance(query[0], float)
    # A query from one backend finds the passage a query from another finds: one vector space.
    index = fp32.embed(SENTENCES)
    q32 = np.asarray(fp32.embed_query("Who raised interest rates?"))
    assert int(np.argmax(index @ np.asarray(query))) == int(np.argmax(index @ q32))


@pytest.mark.usefixtures("real_model")
def test_openvino_bulk_path_batches_by_tokens_and_matches_one_by_one(
    ov_bf16: LocalEmbeddings,
) -> None:
    # Lengths from one word to past the model's 256-token limit, shuffled: several batches of
    # different widths, more batches than streams, results back in input order.
    rng = np.random.default_rng(3)
    texts = [" ".join(SENTENCES[: 1 + i % len(SENTENCES)] * (1 + i // 12)) for i in range(60)]
    texts = [texts[i] for i in rng.permutation(len(texts))] + ["Short one.", ""]
    calls: list[tuple[int, str]] = []
    vectors = ov_bf16.embed(
        texts, progress=lambda n: calls.append((n, threading.current_thread().name))
    )
    assert sum(n for n, _ in calls) == len(texts)
    assert len(calls) > 2  # batched by tokens: long texts come 16 to a batch at most
    assert {name for _, name in calls} == {threading.current_thread().name}
    alone = np.stack([ov_bf16.embed([t])[0] for t in texts])
    assert _cosines(vectors, alone).min() > 0.999
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.usefixtures("real_model")
def test_openvino_broken_cache_says_what_to_do(
    ov_bf16: LocalEmbeddings, ov_cache: Path, tmp_path: Path
) -> None:
    cached = next(p for p in ov_cache.iterdir() if p.is_dir())
    broken = tmp_path / "cache" / cached.name
    shutil.copytree(cached, broken)
    (broken / "model.bin").write_bytes(b"\0" * 16)
    with pytest.raises(EmbeddingModelError, match="delete that folder") as info:
        LocalEmbeddings(backend="openvino-bf16", cache_dir=broken.parent).embed(["hello"])
    assert "\n" not in str(info.value).strip()
