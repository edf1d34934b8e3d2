"""One typed settings object for the whole of UPT.

Values come, in order of precedence, from keyword arguments, `UPT_*` environment variables, an
optional YAML config file (`UPT_CONFIG`, else `$UPT_HOME/config.yaml` when it exists) and the
defaults below. Nothing else in UPT reads `os.environ`.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from profiles.errors import ConfigError

DOMAIN_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the optional YAML config file named by UPT_CONFIG or found in UPT_HOME."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        explicit = os.environ.get("UPT_CONFIG")
        home = Path(os.environ.get("UPT_HOME", ".upt"))
        path = Path(explicit) if explicit else home / "config.yaml"
        if not path.exists():
            if explicit:
                raise ConfigError(
                    f"UPT_CONFIG names {path}, which does not exist; create it or unset UPT_CONFIG"
                )
            return {}
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of setting names to values")
        return data


class Settings(BaseSettings):
    """Every knob of UPT, typed and documented in one place."""

    model_config = SettingsConfigDict(env_prefix="UPT_", extra="forbid", validate_default=True)

    home: Path = Field(Path(".upt"), description="Folder holding all local state (store, index, caches).")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the store; default is a SQLite file in `home`."
    )
    domain: str = Field("default", description="Profile domain (tenant) every read and write belongs to.")
    max_line_bytes: int = Field(
        2_000_000, ge=1024, description="Longest accepted JSON Lines line; longer ones are rejected whole."
    )
    max_kept_line_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Rejected lines are stored whole up to this size; longer ones keep only their start.",
    )
    ingest_batch_size: int = Field(
        1000, ge=1, description="Objects committed per transaction when ingesting."
    )
    default_region: str | None = Field(
        None, description="ISO country used to read national phone numbers when nothing better is known."
    )
    source_regions: dict[str, str] = Field(
        default_factory=dict, description="Per-source default phone region, e.g. {'opera-pms-emea': 'GB'}."
    )
    encoder: str = Field(
        "static",
        description="Embedding backend for blocking: static, onnx-int8 or minilm (see BENCHMARKS.md).",
    )
    text_template: str = Field("full", description="Record-to-text template fed to the encoder.")
    model_cache: Path | None = Field(
        None, description="Folder caching distilled/exported encoders; default ~/.cache/upt/models."
    )
    knn: int = Field(5, ge=1, description="Embedding neighbours asked for per mention.")
    knn_floor: float = Field(0.75, ge=-1, le=1, description="Cosine below which a neighbour is no candidate.")
    index_exact_max: int = Field(
        50_000, ge=1, description="Above this many vectors the index becomes approximate."
    )
    index_approximate: Literal["ivf", "hnsw"] = Field(
        "ivf", description="The approximate index: an inverted file (ivf) or a graph (hnsw)."
    )
    ivf_nprobe: int = Field(16, ge=1, description="IVF lists searched per query (recall against speed).")
    hnsw_ef_search: int = Field(128, ge=8, description="HNSW search breadth (recall against speed).")
    max_block: int = Field(
        50, ge=2, description="An identifier key shared by more mentions is skipped as generic."
    )
    max_name_block: int = Field(30, ge=2, description="The same guard for name-derived keys (common names).")
    string_k: int = Field(
        3, ge=1, description="Jaro-Winkler neighbours per mention and block in the string pass."
    )
    merge_threshold: float | None = Field(
        None, ge=0, le=1, description="Override the champion model's auto-merge threshold."
    )
    review_threshold: float | None = Field(
        None, ge=0, le=1, description="Override the champion model's review threshold."
    )
    keep_candidate_features: bool = Field(
        True,
        description="Keep the candidate pairs' comparison vectors between `label`, `train` and "
        "`resolve` (home/cache/DOMAIN; about 200 MB per million candidate pairs).",
    )
    mlflow_tracking_uri: str = Field("mlruns", description="MLflow tracking and registry store.")
    write_wait_seconds: float = Field(
        30.0,
        gt=0,
        description="How long a writer waits for the store (SQLite's single write lock, a PostgreSQL "
        "domain or profile lock) before giving up with store_busy.",
    )
    rules_file: Path | None = Field(
        None,
        description="Deterministic rule levels (YAML); default: the versioned rules shipped with UPT.",
    )
    survivorship: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Golden-record rule per field (most_frequent | most_recent | most_complete | "
            "source_priority); fields not named use most_frequent."
        ),
    )
    source_priority: list[str] = Field(
        default_factory=list,
        description="Sources in order of trust, for fields whose survivorship is source_priority.",
    )

    @field_validator("domain")
    @classmethod
    def _check_domain(cls, value: str) -> str:
        if not DOMAIN_PATTERN.match(value):
            raise ValueError("must be 1-64 characters of letters, digits, '.', '_' or '-'")
        return value

    @field_validator("default_region")
    @classmethod
    def _upper_region(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlFileSource(settings_cls)

    @property
    def store_url(self) -> str:
        """The database URL actually used: the configured one or SQLite under `home`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'upt.db').resolve()}"

    @property
    def model_cache_dir(self) -> Path:
        return self.model_cache or Path.home() / ".cache" / "upt" / "models"

    def index_path(self, domain: str | None = None, encoder: str | None = None) -> Path:
        """Where the FAISS index of a domain and encoder is kept."""
        return self.home / "index" / (domain or self.domain) / f"{encoder or self.encoder}.faiss"

    def reach_path(self, domain: str | None = None, encoder: str | None = None) -> Path:
        """Where each mention's embedding-list reach is kept, beside the index (`features.
        embedding.index.list_reach`)."""
        return self.index_path(domain, encoder).with_suffix(".reach.npz")

    def frame_cache_path(self, domain: str | None = None) -> Path:
        """Where the parsed mentions of a domain are kept between commands (see `load_mentions`);
        it holds personal data, so erasure removes it."""
        return self.home / "cache" / (domain or self.domain) / "mentions.parquet"

    def candidate_features_path(self, domain: str | None = None) -> Path | None:
        """Where the comparison vectors of a domain's candidate pairs are kept between commands
        (`features.pool_cache`), beside the parsed mentions; None when keeping them is off."""
        if not self.keep_candidate_features:
            return None
        return self.home / "cache" / (domain or self.domain) / "candidate_features.npz"

    def region_for_source(self, source: str) -> str | None:
        """Default phone region of a source, falling back to the global default."""
        return self.source_regions.get(source, self.default_region)


def load_settings(**overrides: Any) -> Settings:
    """Settings from keyword overrides, the environment and the config file, or one ConfigError
    naming every bad setting at once."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"invalid settings: {problems} (UPT_* variables or the config file)") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built once on first use (never at import time)."""
    return load_settings()
