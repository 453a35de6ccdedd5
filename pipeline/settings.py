"""Settings from the environment (``NEWSWIRE_*``) with documented defaults.

Contract: :func:`get_settings` returns one validated :class:`Settings`; every field can be
set by an environment variable named ``NEWSWIRE_<FIELD>`` (upper case). Nothing here
reads files other than the environment, so importing it is cheap.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def config_dir() -> Path:
    """The folder of the default config files: ``config/`` of a checkout, else the installed package data.

    A wheel carries ``config/`` as ``pipeline/config_data`` (pyproject.toml), so a plain ``pip install``
    outside a checkout finds the same actors, gazetteer and sample files.
    """
    checkout = PROJECT_ROOT / "config"
    if (checkout / "actors.yaml").is_file():
        return checkout
    return Path(str(files("pipeline") / "config_data"))


CONFIG_DIR = config_dir()

#: The one place the Elasticsearch version is recorded (tests, `newswire es`, compose).
ELASTICSEARCH_VERSION = "9.5.4"


#: The Airflow-only fields of :class:`Settings`: an empty variable means their default.
AIRFLOW_FIELDS = (
    "schedule",
    "groups",
    "es_conn_id",
    "index_pool",
    "task_retries",
    "retry_delay_seconds",
    "max_retry_delay_seconds",
    "task_timeout_minutes",
    "staging_retention_days",
    "index_retention_months",
    "maintenance_schedule",
)


def _default_store() -> str:
    return f"sqlite:///{Path(user_data_dir('newswire')) / 'newswire.db'}"


class Settings(BaseSettings):
    """Runtime settings; see the README's Configuration table."""

    model_config = SettingsConfigDict(env_prefix="NEWSWIRE_", extra="ignore")

    store: str = Field(
        default_factory=_default_store, description="store URL: sqlite:///path or http(s)://host:port"
    )
    feeds_file: Path = Field(default=CONFIG_DIR / "feeds.yaml", description="feed list")
    actors_file: Path = Field(default=CONFIG_DIR / "actors.yaml", description="curated actors gazetteer")
    staging_dir: str = Field(
        default_factory=lambda: str(Path(user_data_dir("newswire")) / "staging"),
        description="staging area between pipeline tasks (a local folder or an object-storage URL)",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path(user_cache_dir("newswire")),
        description="downloads (Elasticsearch distribution) and other caches",
    )
    user_agent: str = Field(
        default="newswire/0.1 (+https://github.com/newswire/newswire; news ingestion bot)",
        description="User-Agent sent with every request",
    )
    connect_timeout: float = Field(default=10.0, description="seconds to open a connection")
    read_timeout: float = Field(default=20.0, description="seconds between bytes")
    total_timeout: float = Field(default=60.0, description="seconds for a whole response")
    max_body_bytes: int = Field(default=5 * 1024 * 1024, description="largest feed or page body accepted")
    max_retries: int = Field(default=3, description="retries on connection errors, 429 and 5xx")
    max_redirects: int = Field(default=5, description="redirects followed")
    concurrency: int = Field(default=16, description="requests in flight overall")
    per_host_concurrency: int = Field(default=2, description="requests in flight per host")
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="hosts/networks allowed although private or loopback (e.g. 127.0.0.1)",
    )
    respect_robots: bool = Field(default=True, description="honour robots.txt for article pages")
    fetch_full_text: bool = Field(
        default=True, description="fetch article pages when a feed has summaries only"
    )
    spacy_model: str = Field(default="en_core_web_sm", description="spaCy model name ('' disables NER)")
    workers: int = Field(
        default=1,
        ge=0,
        description=(
            "where clean and tag (CPU-bound) run: 0 = in the run's own process; 1 = cleaning in one worker"
            " process while the run's own process tags; N >= 2 = N worker processes, each cleaning and"
            " tagging with its own tagger (N times its memory)"
        ),
    )
    poll_interval: int = Field(default=900, description="seconds between polls of a feed in watch mode")
    es_username: str | None = Field(default=None, description="Elasticsearch user")
    es_password: str | None = Field(default=None, description="Elasticsearch password")
    index_prefix: str = Field(default="news", description="Elasticsearch index/alias prefix")
    max_entries_per_feed: int = Field(
        default=5000,
        gt=0,
        description="entries read from one feed document (the rest are skipped with a warning)",
    )
    search_timeout: float = Field(
        default=10.0, gt=0, description="seconds one search may run before it is stopped"
    )

    # --- Airflow (dags/, pipeline.tasks); an empty variable means the default -------------------
    schedule: str = Field(default="*/15 * * * *", description="news_ingest schedule ('none': triggers only)")
    groups: int = Field(
        default=4, ge=1, description="feed groups mapped in parallel (a feed keeps its group)"
    )
    es_conn_id: str = Field(
        default="newswire_es", description="Airflow connection of the Elasticsearch store"
    )
    index_pool: str = Field(default="newswire_es", description="Airflow pool of the index tasks")
    task_retries: int = Field(default=3, ge=0, description="retries of a failed task")
    retry_delay_seconds: int = Field(default=60, ge=0, description="first retry delay (then doubled)")
    max_retry_delay_seconds: int = Field(default=1800, ge=0, description="longest retry delay")
    task_timeout_minutes: int = Field(default=30, gt=0, description="execution timeout of one task")
    staging_retention_days: int = Field(default=7, ge=0, description="staging run folders kept this long")
    index_retention_months: int = Field(default=0, ge=0, description="monthly indices kept (0 keeps all)")
    maintenance_schedule: str = Field(default="@daily", description="news_maintenance schedule")

    @field_validator(*AIRFLOW_FIELDS, mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        """``NEWSWIRE_GROUPS=`` (set but empty, as compose leaves unset variables) keeps the default."""
        if isinstance(value, str) and not value.strip():
            return cls.model_fields[str(info.field_name)].default
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    return Settings()
