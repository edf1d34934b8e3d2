"""Models-from-code file MLflow runs to load a registered UPT matcher (UPT itself never imports it).

Input: comparison vectors (one row per pair); output: probability and decision per pair.
"""

from pathlib import Path
from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel

from models.bundle import Bundle


class MatcherPyfunc(PythonModel):
    def load_context(self, context: Any) -> None:
        self.bundle = Bundle.load(Path(context.artifacts["bundle"]))

    # No annotations: MLflow infers a schema from predict's type hints and warns on DataFrame/Any;
    # the signature logged with the model describes input and output instead.
    def predict(self, context, model_input, params=None):
        return self.bundle.score(model_input)


mlflow.models.set_model(MatcherPyfunc())
