"""The feeds configuration: schema, loading with line-numbered errors, and grouping.

Contract
--------
- A feeds file is YAML with one top-level key, ``feeds``: a list of :class:`FeedConfig`
  mappings (``name``, ``url``, ``language``, ``tags``, ``full_text``, ``enabled``,
  ``interval``). Unknown keys are errors, feed names must be unique.
- ``url`` is an ``http``/``https`` URL with a host, or a ``file:`` URL, or a filesystem
  path. A relative path (or ``file:relative/path``) is resolved against the folder of the
  YAML file that names it, so a feeds file can travel with its sample feeds; the
  stored value is then an absolute ``file:///...`` URL.
- :func:`load_feeds` returns the *enabled* feeds of a file. Every problem (missing file,
  invalid YAML, schema violation, duplicate key, duplicate name) raises
  :class:`ConfigError`, whose message names the file, the line and the field, e.g.
  ``config/feeds.yaml:14: feeds[3].url: unsupported URL scheme 'ftp' ...``; all
  problems of a file are reported at once, one per line. YAML aliases (``*name``) are
  refused at their line before anything is built (an alias bomb cannot expand).
- :func:`group_feeds` splits feeds into ``n`` groups for parallel work (one Airflow mapped
  task per group). A feed's group depends only on its URL and ``n``.

Why the line numbers are done here: pydantic validates plain Python data and knows
nothing about YAML positions, and PyYAML's constructed objects drop their marks. So the
file is *composed* first (PyYAML, libyaml when present, keeps every node's start mark), the node tree
is indexed by path (``("feeds", 3, "url") -> line``), the same tree is constructed into
data for pydantic, and each pydantic error ``loc`` is mapped back to the deepest node that
exists. No maintained library does this mapping for pydantic v2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pycountry
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "FeedConfig",
    "FeedsFile",
    "group_feeds",
    "group_of",
    "load_feeds",
    "load_feeds_file",
]

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file: where it is and what is wrong."""

    path: Path
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ConfigError(Exception):
    """A configuration file is missing, not valid YAML, or does not follow the schema.

    ``str(error)`` lists every problem as ``FILE:LINE: FIELD: MESSAGE``, one per line;
    ``error.problems`` holds them as :class:`ConfigProblem`; ``error.path`` is the file and
    ``error.line`` the line of the first problem (None when unknown).
    """

    def __init__(self, path: Path, problems: Sequence[ConfigProblem]) -> None:
        self.path = path
        self.problems = list(problems)
        self.line = self.problems[0].line if self.problems else None
        super().__init__("\n".join(str(p) for p in self.problems) or f"{path}: invalid configuration")


def _resolve_url(value: str, base_dir: Path | None) -> str:
    """Validate a feed URL; turn a path or relative file URL into an absolute file URL."""
    value = value.strip()
    if not value:
        raise PydanticCustomError("feed_url", "must not be empty")
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter ("C:\\feeds\\x.xml"), not a URL scheme
        scheme = ""
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise PydanticCustomError(
                "feed_url", "{scheme} URL '{url}' has no host", {"scheme": scheme, "url": value}
            )
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError as exc:
            raise PydanticCustomError("feed_url", "invalid port in '{url}'", {"url": value}) from exc
        if any(c.isspace() for c in value):
            raise PydanticCustomError("feed_url", "URL '{url}' contains whitespace", {"url": value})
        return value
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise PydanticCustomError(
                "feed_url", "file URL '{url}' names a remote host; use file:///absolute/path", {"url": value}
            )
        raw_path = unquote(parts.path)
    elif scheme == "":
        raw_path = value
    else:
        raise PydanticCustomError(
            "feed_url",
            "unsupported URL scheme '{scheme}' in '{url}' (use http, https, file or a path)",
            {"scheme": scheme, "url": value},
        )
    if not raw_path:
        raise PydanticCustomError("feed_url", "file URL '{url}' has no path", {"url": value})
    path = Path(raw_path).expanduser()
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    return path.resolve().as_uri()


class FeedConfig(BaseModel):
    """One feed of the feeds file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str = Field(
        min_length=1, description="unique display name of the feed (used in reports and records)"
    )
    url: str = Field(description="http(s) URL, file URL or path (relative to the YAML file's folder)")
    language: str = Field(default="en", description="ISO 639-1 code of the feed's language")
    tags: list[str] = Field(
        default_factory=list, description="free labels copied to every article (feed_tags)"
    )
    full_text: bool | None = Field(
        default=None,
        description="fetch article pages: true always, false never, null = when entries carry only short "
        "summaries",
    )
    enabled: bool = Field(default=True, description="false keeps the feed in the file but out of runs")
    interval: int | None = Field(
        default=None, gt=0, description="seconds between polls; null = settings.poll_interval"
    )

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value  # the str type check reports it
        base = (info.context or {}).get("base_dir")
        return _resolve_url(value, Path(base) if base is not None else None)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        code = value.lower()
        if len(code) != 2 or pycountry.languages.get(alpha_2=code) is None:
            raise PydanticCustomError(
                "language", "'{value}' is not an ISO 639-1 language code (e.g. en, fr, ar)", {"value": value}
            )
        return code

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for i, tag in enumerate(value):
            tag = tag.strip()
            if not tag:
                raise PydanticCustomError("tag", "tag {index} is empty", {"index": i})
            if tag not in out:
                out.append(tag)
        return out

    @property
    def is_file(self) -> bool:
        """True for a local feed (``file:`` URL)."""
        return self.url.startswith("file:")

    def poll_interval(self, default: int | None = None) -> int:
        """Seconds between polls: the feed's ``interval``, else ``default``, else the settings' value."""
        if self.interval is not None:
            return self.interval
        if default is not None:
            return default
        from pipeline.settings import get_settings

        return get_settings().poll_interval


class FeedsFile(BaseModel):
    """The whole feeds file: ``{feeds: [FeedConfig, ...]}`` with unique names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feeds: list[FeedConfig]

    @model_validator(mode="after")
    def _unique_names(self) -> FeedsFile:
        seen: dict[str, int] = {}
        for i, feed in enumerate(self.feeds):
            key = feed.name.casefold()
            if key in seen:
                raise PydanticCustomError(
                    "duplicate_name",
                    "duplicate feed name '{name}' (already used by feeds[{first}])",
                    {"name": feed.name, "index": i, "first": seen[key]},
                )
            seen[key] = i
        return self


# --------------------------------------------------------------------------- loading

#: libyaml's loader when PyYAML was built with it (about 10x faster; node marks are the same)
_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Lines:
    """Index of a composed YAML tree: path -> 1-based line of the node (and of its key)."""

    def __init__(self) -> None:
        self.value_line: dict[Loc, int] = {}
        self.key_line: dict[Loc, int] = {}
        self.duplicates: list[tuple[Loc, int]] = []

    def walk(self, node: yaml.Node, loc: Loc = ()) -> None:
        self.value_line[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else repr(key_node.value)
                child = (*loc, key)
                if key in seen:
                    self.duplicates.append((child, key_node.start_mark.line + 1))
                seen.add(key)
                self.key_line[child] = key_node.start_mark.line + 1
                self.walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.walk(item, (*loc, i))

    def line_of(self, loc: Loc) -> int | None:
        """Line of the deepest node on ``loc``; a key's own line for unknown/missing keys."""
        for end in range(len(loc), -1, -1):
            prefix = loc[:end]
            if prefix in self.key_line:
                return self.key_line[prefix]
            if prefix in self.value_line:
                return self.value_line[prefix]
        return None


def _field_name(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _problems_from(exc: ValidationError, path: Path, lines: _Lines) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        if err["type"] == "duplicate_name":
            loc = ("feeds", int(ctx["index"]), "name")
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown key {str(loc[-1])!r} (allowed: {_allowed_keys(loc)})"
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(ConfigProblem(path, lines.line_of(loc), _field_name(loc), message))
    return problems


def _allowed_keys(loc: Loc) -> str:
    model: type[BaseModel] = FeedConfig if len(loc) >= 3 else FeedsFile
    return ", ".join(model.model_fields)


def _refuse_aliases(text: str) -> None:
    """Raise a marked YAML error at the first alias (``*name``): a feeds file has no use for
    them, and nested aliases expand exponentially (a "billion laughs" of a few hundred bytes)
    in every consumer that walks the tree. Scanning events is linear in the text."""
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                problem="aliases (*name) are not allowed in a feeds file; write the value out",
                problem_mark=event.start_mark,  # type: ignore[arg-type]  # libyaml marks alike
            )


def load_feeds_file(path: Path | str) -> FeedsFile:
    """Read and validate a feeds file (all feeds, enabled or not); raise :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, [ConfigProblem(path, None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [ConfigProblem(path, None, "", f"cannot read: {exc}")]) from None

    loader = _Loader(text)
    try:
        _refuse_aliases(text)
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(
                path, [ConfigProblem(path, 1, "", "the file is empty; expected a 'feeds:' list")]
            )
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or "syntax error"
        if exc.context and exc.context_mark is not None:
            what += f" ({exc.context} started at line {exc.context_mark.line + 1})"
        raise ConfigError(path, [ConfigProblem(path, line, "", f"invalid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, [ConfigProblem(path, None, "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()

    lines = _Lines()
    lines.walk(node)
    if lines.duplicates:
        raise ConfigError(
            path,
            [ConfigProblem(path, line, _field_name(loc), "duplicate key") for loc, line in lines.duplicates],
        )
    if not isinstance(data, dict):
        raise ConfigError(
            path,
            [
                ConfigProblem(
                    path,
                    lines.line_of(()),
                    "",
                    f"expected a mapping with a 'feeds:' list, got {type(data).__name__}",
                )
            ],
        )
    try:
        return FeedsFile.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(path, _problems_from(exc, path, lines)) from None


def load_feeds(path: Path | str) -> list[FeedConfig]:
    """The enabled feeds of a feeds file, in file order; raise :class:`ConfigError` on any problem."""
    return [feed for feed in load_feeds_file(path).feeds if feed.enabled]


# --------------------------------------------------------------------------- grouping


def _jump_hash(key: int, buckets: int) -> int:
    """Jump consistent hash (Lamping & Veach, 2014): key -> bucket in ``range(buckets)``.

    Written out because it is eight lines: when ``buckets`` grows from n to n+1 only
    about 1/(n+1) of the keys move, so resizing the Airflow fan-out reshuffles few feeds.
    """
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        j = int((b + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return b


def group_of(feed: FeedConfig | str, n: int) -> int:
    """The group (0..n-1) of a feed or feed URL; depends only on the URL and ``n``."""
    if n < 1:
        raise ValueError(f"number of groups must be >= 1, got {n}")
    url = feed if isinstance(feed, str) else feed.url
    key = int.from_bytes(hashlib.sha256(url.encode("utf-8")).digest()[:8], "big")
    return _jump_hash(key, n)


def group_feeds(feeds: Iterable[FeedConfig], n: int) -> list[list[FeedConfig]]:
    """Split feeds into exactly ``n`` groups (some may be empty), stable across runs.

    A feed's group is a hash of its URL (:func:`group_of`), so adding, removing or
    reordering other feeds never moves it, and the same feed lands in the same group
    every run (its state and rate limits stay with one worker). Within a group feeds keep
    their input order.
    """
    if n < 1:
        raise ValueError(f"number of groups must be >= 1, got {n}")
    groups: list[list[FeedConfig]] = [[] for _ in range(n)]
    for feed in feeds:
        groups[group_of(feed, n)].append(feed)
    return groups
