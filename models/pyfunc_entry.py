"""Models-from-code file MLflow runs to load a registered UPT matcher (UPT itself never imports it).

Input: comparison vectors (one row per pair); output: probability and decision per pair.
"""

import warnings
from pathlib import Path
from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel

from models.bundle import Bundle

# MLflow nags about the missing hints on every save and load; the logged signature is the contract.
warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method.*")


class MatcherPyfunc(PythonModel):
    def load_context(self, context: Any) -> None:
        self.bundle = Bundle.load(Path(context.artifacts["bundle"]))

    # No annotations: MLflow infers a schema from predict's type hints and warns on DataFrame/Any;
    # the signature logged with the model describes input and output instead.
    def predict(self, context, model_input, params=None):
        return self.bundle.score(model_input)


mlflow.models.set_model(MatcherPyfunc())
