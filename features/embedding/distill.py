"""Distil the static encoder from the installed MiniLM: the child process that
`features.embedding.encoders.StaticEncoder` starts, with the numeric libraries held to one code
path (`REPRODUCIBLE_ENV`), so that every CPU distils the same table, bit for bit.

usage: python -m features.embedding.distill TARGET_FOLDER
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, cast

# Bumped whenever the recipe (the environment or the call below) changes: a cached table of
# another recipe is distilled again.
STATIC_RECIPE = 2

# MKL, OpenBLAS, oneDNN and PyTorch's own kernels each pick the widest vector instructions the
# CPU offers, and their sums then round differently: the table distilled on an AVX-512 Intel Xeon
# differed in its last bits from the one distilled with MKL's AVX2 path (the one MKL takes on
# CPUs without AVX-512, and on many AMD CPUs), and those bits decide which of two nearly equal
# candidates a record gets. Held here to the code path every x86-64 CPU has, on one thread (a sum
# split among threads rounds by the split). Set only in the child process that distils, never in
# the caller's.
REPRODUCIBLE_ENV = {
    "MKL_CBWR": "COMPATIBLE",
    "MKL_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "OPENBLAS_CORETYPE": "Prescott",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "ATEN_CPU_CAPABILITY": "default",
}

# The sha256 of the table (`model.safetensors`) this recipe distils from the installed MiniLM at
# the versions of `constraints.txt`: measured on an Intel Xeon (AVX-512) under every variation of
# the environment above (each library's own wider code path, two threads), the same each time.
# `upt encoders prepare` says whether a machine built it.
REFERENCE_SHA256 = "cae055dc260ba59d7e5e8e13d7724f713bba6899e269ed8ab7c458f4680be15a"


def table_sha256(folder: Path) -> str:
    """The sha256 of a distilled folder's table."""
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def distill_static(target: Path, source: Path) -> None:
    """What model2vec's `distill(model_name)` does, with the model read from local files only;
    `done.json` written last (a folder without it is an interrupted build)."""
    from model2vec.distill import distill_from_model
    from transformers import AutoModel, AutoTokenizer

    network = AutoModel.from_pretrained(str(source), local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True, use_fast=True)
    model = distill_from_model(model=network, tokenizer=cast(Any, tokenizer), pca_dims=256, device="cpu")
    model.save_pretrained(str(target))
    done = {"source": str(source), "pca_dims": 256, "recipe": STATIC_RECIPE}
    (target / "done.json").write_text(json.dumps(done))


if __name__ == "__main__":
    from features.embedding.encoders import minilm_path

    distill_static(Path(sys.argv[1]), minilm_path())
