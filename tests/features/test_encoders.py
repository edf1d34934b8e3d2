"""The three real encoder backends, loaded offline from the installed MiniLM (cached artifacts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.embedding.distill import REFERENCE_SHA256, STATIC_RECIPE, table_sha256
from features.embedding.encoders import BACKENDS, StaticEncoder, _distilled, load_encoder
from features.embedding.text import TEMPLATES, record_texts
from profiles.errors import ConfigError
from profiles.settings import Settings
from tests.features.people import frame_of

TEXTS = ["ana garcia 1984-07-19 madrid", "anna garcia 1984-07-19 madrid", "john smith 1950-01-01 leeds"]


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    return Settings().model_cache_dir


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_gives_unit_vectors_that_rank_the_duplicate_first(backend: str, cache_dir: Path) -> None:
    encoder = load_encoder(backend, cache_dir)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (3, encoder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert encoder.encode([]).shape == (0, encoder.dim)
    # One online record gets the vector it gets in a batch; int8 activations are quantized per batch,
    # so that backend agrees in direction only.
    alone = encoder.encode(TEXTS[:1])[0]
    assert float(alone @ vectors[0]) > (0.99 if backend == "onnx-int8" else 0.9999)


def test_the_installed_static_table_is_the_reference_table(cache_dir: Path) -> None:
    """`make install` distils the static table with the numeric libraries held to one code path:
    on any CPU it is the same table, bit for bit (its last bits decide near ties between
    candidates, and with them which pairs a run proposes and asks about)."""
    encoder = load_encoder("static", cache_dir)
    assert isinstance(encoder, StaticEncoder) and _distilled(encoder.folder)
    assert table_sha256(encoder.folder) == REFERENCE_SHA256


def test_a_table_of_another_recipe_is_distilled_again(tmp_path: Path) -> None:
    assert not _distilled(tmp_path)
    (tmp_path / "done.json").write_text('{"source": "x", "pca_dims": 256}')  # before recipes
    assert not _distilled(tmp_path)
    (tmp_path / "done.json").write_text(f'{{"recipe": {STATIC_RECIPE}}}')
    assert _distilled(tmp_path)
    (tmp_path / "done.json").write_text("{not json")
    assert not _distilled(tmp_path)


def test_unknown_backend_is_refused(cache_dir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown backend"):
        load_encoder("word2vec", cache_dir)


def test_record_texts_follow_the_template() -> None:
    frame = frame_of(
        {
            "first_name": "Ana",
            "last_name": "García",
            "date_of_birth": "1984-07-19",
            "emails": [{"address": "a@x.com"}],
            "addresses": [{"city": "Madrid"}],
        },
        {"last_name": "Lee"},
    )
    assert record_texts(frame, "name") == ["ana garcia", "lee"]
    assert record_texts(frame, "full") == ["ana garcia 1984-07-19 a@x.com madrid", "lee"]
    assert set(TEMPLATES) >= {"name", "full"}
    with pytest.raises(ConfigError):
        record_texts(pd.DataFrame(), "nope")


def test_loading_an_encoder_leaves_the_process_environment_alone(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server's other threads and libraries must not see settings an encoder load made for itself."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    for backend in BACKENDS:
        load_encoder(backend, cache_dir).encode(TEXTS[:1])
    import os

    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ
