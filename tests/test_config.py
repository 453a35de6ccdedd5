"""pipeline.config: the feeds schema, line-numbered errors, path resolution, stable grouping."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.config import (
    ConfigError,
    FeedConfig,
    FeedsFile,
    group_feeds,
    group_of,
    load_feeds,
    load_feeds_file,
)

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "feeds.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path: Path, marker: str) -> int:
    """1-based line of the first line containing ``marker``."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if marker in line:
            return n
    raise AssertionError(f"{marker!r} not in {path}")


def problem(exc: ConfigError, field: str) -> tuple[int | None, str]:
    for p in exc.problems:
        if p.field == field:
            return p.line, p.message
    raise AssertionError(f"no problem for {field!r} in:\n{exc}")


# ------------------------------------------------------------------ valid files


def test_defaults_and_normalisation(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        feeds:
          - name: "  Plain  "
            url: https://news.example/rss.xml
          - name: Full
            url: http://news.example:8080/atom?x=1
            language: FR
            tags: [world, " world ", syria]
            full_text: true
            enabled: true
            interval: 600
        """,
    )
    plain, full = load_feeds(path)
    assert plain == FeedConfig(name="Plain", url="https://news.example/rss.xml")
    assert (plain.language, plain.tags, plain.full_text, plain.enabled, plain.interval) == (
        "en",
        [],
        None,
        True,
        None,
    )
    assert full.language == "fr"
    assert full.tags == ["world", "syria"]
    assert full.full_text is True
    assert full.interval == 600
    assert full.url == "http://news.example:8080/atom?x=1"


def test_load_feeds_returns_enabled_only_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        feeds:
          - {name: c, url: https://c.example/rss}
          - {name: b, url: https://b.example/rss, enabled: false}
          - {name: a, url: https://a.example/rss}
        """,
    )
    assert [f.name for f in load_feeds(path)] == ["c", "a"]
    assert [f.name for f in load_feeds_file(path).feeds] == ["c", "b", "a"]


def test_poll_interval_falls_back_to_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.settings import get_settings

    monkeypatch.setenv("NEWSWIRE_POLL_INTERVAL", "1234")
    get_settings.cache_clear()
    own = FeedConfig(name="own", url="https://a.example/", interval=60)
    default = FeedConfig(name="default", url="https://a.example/")
    assert own.poll_interval() == 60
    assert default.poll_interval() == 1234
    assert default.poll_interval(default=77) == 77


# ------------------------------------------------------------------ errors name file, line and field

BAD_CASES = {
    # case: (yaml, field, marker on the expected line, words expected in the message)
    "bad scheme": (
        """
        feeds:
          - name: ok
            url: https://ok.example/rss
          - name: ftp
            url: ftp://files.example/feed.xml
        """,
        "feeds[1].url",
        "ftp://",
        ["scheme", "ftp"],
    ),
    "unknown key": (
        """
        feeds:
          - name: ok
            url: https://ok.example/rss
            colour: red
        """,
        "feeds[0].colour",
        "colour:",
        ["unknown key", "allowed"],
    ),
    "unknown top-level key": (
        """
        sources: []
        feeds:
          - {name: ok, url: https://ok.example/rss}
        """,
        "sources",
        "sources:",
        ["unknown key"],
    ),
    "missing url": (
        """
        feeds:
          - name: ok
            url: https://ok.example/rss
          - name: no-url
            tags: [x]
        """,
        "feeds[1].url",
        "no-url",
        ["missing"],
    ),
    "missing feeds": ("title: my feeds\n", "feeds", "title:", ["missing"]),
    "bad language": (
        """
        feeds:
          - name: ok
            url: https://ok.example/rss
            language: english
        """,
        "feeds[0].language",
        "english",
        ["ISO 639-1"],
    ),
    "unknown language code": (
        """
        feeds:
          - name: ok
            url: https://ok.example/rss
            language: qq
        """,
        "feeds[0].language",
        "qq",
        ["ISO 639-1"],
    ),
    "negative interval": (
        """
        feeds:
          - name: ok
            url: https://ok.example/rss
            interval: -5
        """,
        "feeds[0].interval",
        "interval",
        ["greater than 0"],
    ),
    "full_text not a bool": (
        """
        feeds:
          - name: ok
            url: https://ok.example/rss
            full_text: sometimes
        """,
        "feeds[0].full_text",
        "sometimes",
        ["boolean"],
    ),
    "tags not a list": (
        """
        feeds:
          - name: ok
            url: https://ok.example/rss
            tags: world
        """,
        "feeds[0].tags",
        "tags:",
        ["list"],
    ),
    "empty tag": (
        """
        feeds:
          - name: ok
            url: https://ok.example/rss
            tags: [world, ""]
        """,
        "feeds[0].tags",
        "tags:",
        ["empty"],
    ),
    "http without host": (
        """
        feeds:
          - name: ok
            url: "http:///feed.xml"
        """,
        "feeds[0].url",
        "http:///",
        ["no host"],
    ),
    "remote file URL": (
        """
        feeds:
          - name: ok
            url: file://server/share/feed.xml
        """,
        "feeds[0].url",
        "file://server",
        ["remote host"],
    ),
    "duplicate name": (
        """
        feeds:
          - name: Wire
            url: https://a.example/rss
          - name: Other
            url: https://b.example/rss
          - name: wire
            url: https://c.example/rss
        """,
        "feeds[2].name",
        "name: wire",
        ["duplicate feed name", "feeds[0]"],
    ),
    "duplicate YAML key": (
        """
        feeds:
          - name: ok
            url: https://a.example/rss
            url: https://b.example/rss
        """,
        "feeds[0].url",
        "b.example",
        ["duplicate key"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_errors_name_file_line_and_field(tmp_path: Path, case: str) -> None:
    text, field, marker, words = BAD_CASES[case]
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    exc = info.value
    line, message = problem(exc, field)
    assert line == line_of(path, marker)
    for word in words:
        assert word.lower() in message.lower(), message
    # the rendered message is FILE:LINE: FIELD: MESSAGE
    assert f"{path}:{line}: {field}: " in str(exc)
    assert exc.path == path


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        feeds:
          - name: one
            url: gopher://one.example/
          - name: two
            url: https://two.example/rss
            language: zz
            extra: 1
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    fields = {p.field: p.line for p in info.value.problems}
    assert fields == {
        "feeds[0].url": line_of(path, "gopher"),
        "feeds[1].language": line_of(path, "zz"),
        "feeds[1].extra": line_of(path, "extra"),
    }
    assert info.value.line == line_of(path, "gopher")
    assert len(str(info.value).splitlines()) == 3


@pytest.mark.parametrize(
    ("text", "marker"),
    [
        ("feeds:\n  - name: a\n    url: [unclosed\n  - name: b\n", "name: b"),
        ("feeds:\n  - name: a\n\turl: https://a.example/\n", "\turl"),
        ("feeds:\n  - name: 'a\n", None),
    ],
)
def test_invalid_yaml_names_file_and_line(tmp_path: Path, text: str, marker: str | None) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    message = str(info.value)
    assert message.startswith(f"{path}:")
    assert "invalid YAML" in message
    assert info.value.line is not None
    if marker is not None:
        assert info.value.line == line_of(path, marker)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("- name: a\n  url: x\n", "mapping"),
        ("feeds: 3\n", "list"),
    ],
)
def test_wrong_shapes(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    assert expected in str(info.value).lower()
    assert str(info.value).startswith(str(path))


def test_yaml_alias_bomb_is_refused_quickly_naming_file_and_line(tmp_path: Path) -> None:
    rows = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    rows += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(rows) + "\nfeeds:\n  - name: x\n    url: *a9\n", encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    assert time.monotonic() - started < 5
    assert str(info.value).startswith(f"{path}:2: ")  # the first alias is on line 2
    assert "alias" in str(info.value)
    assert info.value.line == 2


def test_anchors_without_aliases_still_load(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - &first\n    name: a\n    url: https://a.example/feed\n", encoding="utf-8")
    assert [f.name for f in load_feeds(path)] == ["a"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_feeds(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("feeds:\n  - name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.yaml: cannot read"):
        load_feeds(path)


# ------------------------------------------------------------------ URLs and relative paths


def test_relative_paths_resolve_against_the_yaml_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        f"""
        feeds:
          - {{name: plain, url: feeds/a.xml}}
          - {{name: dot, url: ./b.xml}}
          - {{name: parent, url: ../c.xml}}
          - {{name: file-relative, url: "file:d.xml"}}
          - {{name: file-absolute, url: "file://{tmp_path}/e.xml"}}
          - {{name: localhost, url: "file://localhost{tmp_path}/f.xml"}}
          - {{name: absolute, url: "{tmp_path}/g.xml"}}
          - {{name: spaces, url: "my feeds/h i.xml"}}
          - {{name: web, url: "https://news.example/feeds/rss.xml"}}
        """,
        name="conf/feeds.yaml",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    urls = {f.name: f.url for f in load_feeds(path)}
    conf = (tmp_path / "conf").resolve()
    assert urls == {
        "plain": (conf / "feeds" / "a.xml").as_uri(),
        "dot": (conf / "b.xml").as_uri(),
        "parent": (tmp_path.resolve() / "c.xml").as_uri(),
        "file-relative": (conf / "d.xml").as_uri(),
        "file-absolute": (tmp_path.resolve() / "e.xml").as_uri(),
        "localhost": (tmp_path.resolve() / "f.xml").as_uri(),
        "absolute": (tmp_path.resolve() / "g.xml").as_uri(),
        "spaces": (conf / "my feeds" / "h i.xml").as_uri(),
        "web": "https://news.example/feeds/rss.xml",
    }
    assert "%20" in urls["spaces"]
    assert {f.name for f in load_feeds(path) if f.is_file} == set(urls) - {"web"}


def test_relative_path_without_a_file_resolves_against_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    feeds = FeedsFile.model_validate({"feeds": [{"name": "a", "url": "x/a.xml"}]})
    assert feeds.feeds[0].url == (tmp_path.resolve() / "x" / "a.xml").as_uri()


def test_the_same_file_loads_the_same_from_any_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "feeds:\n  - {name: a, url: a.xml}\n", name="d/feeds.yaml")
    monkeypatch.chdir(tmp_path)
    first = load_feeds(Path("d/feeds.yaml"))
    monkeypatch.chdir(tmp_path / "d")
    second = load_feeds(Path("feeds.yaml"))
    assert first == second == load_feeds(path)


# ------------------------------------------------------------------ grouping


def make_feeds(n: int, prefix: str = "f") -> list[FeedConfig]:
    return [FeedConfig(name=f"{prefix}{i}", url=f"https://{prefix}{i}.example/rss.xml") for i in range(n)]


def test_group_feeds_partitions_into_n_groups() -> None:
    feeds = make_feeds(200)
    groups = group_feeds(feeds, 4)
    assert len(groups) == 4
    flat = [f for g in groups for f in g]
    assert sorted(f.name for f in flat) == sorted(f.name for f in feeds)
    for i, group in enumerate(groups):
        assert all(group_of(f, 4) == i for f in group)
        assert 25 <= len(group) <= 75, [len(g) for g in groups]  # roughly balanced
    assert group_feeds([], 3) == [[], [], []]
    assert group_feeds(feeds[:1], 5)[group_of(feeds[0], 5)] == feeds[:1]


def test_group_feeds_is_stable_under_reordering_and_additions() -> None:
    feeds = make_feeds(60)
    before = {f.name: i for i, g in enumerate(group_feeds(feeds, 5)) for f in g}
    shuffled = feeds[:]
    random.Random(7).shuffle(shuffled)
    grown = shuffled + make_feeds(40, prefix="new")
    after = {f.name: i for i, g in enumerate(group_feeds(grown, 5)) for f in g}
    assert all(after[name] == group for name, group in before.items())
    # the group depends on the URL, not on the name
    renamed = FeedConfig(name="renamed", url=feeds[0].url)
    assert group_of(renamed, 5) == before[feeds[0].name]


def test_group_feeds_keeps_input_order_within_a_group() -> None:
    feeds = make_feeds(30)
    for group in group_feeds(feeds, 3):
        assert group == sorted(group, key=feeds.index)


def test_growing_the_number_of_groups_moves_few_feeds() -> None:
    feeds = make_feeds(500)
    for n in (1, 3, 8):
        old = {f.url: group_of(f, n) for f in feeds}
        new = {f.url: group_of(f, n + 1) for f in feeds}
        moved = [url for url in old if old[url] != new[url]]
        assert all(new[url] == n for url in moved)  # a feed only ever moves into the new group
        assert len(moved) < 2 * len(feeds) / (n + 1)


def test_groups_are_the_same_in_another_process() -> None:
    feeds = make_feeds(25)
    here = [[f.name for f in g] for g in group_feeds(feeds, 4)]
    code = (
        "from pipeline.config import FeedConfig, group_feeds\n"
        "feeds = [FeedConfig(name=f'f{i}', url=f'https://f{i}.example/rss.xml') for i in range(25)]\n"
        "print([[f.name for f in g] for g in group_feeds(feeds, 4)])\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(here)


@pytest.mark.parametrize("n", [0, -1])
def test_group_feeds_rejects_bad_n(n: int) -> None:
    with pytest.raises(ValueError, match="groups"):
        group_feeds(make_feeds(3), n)


# ------------------------------------------------------------------ the shipped feeds file


def test_shipped_feeds_file_is_valid() -> None:
    all_feeds = load_feeds_file(ROOT / "config" / "feeds.yaml").feeds
    enabled = load_feeds(ROOT / "config" / "feeds.yaml")
    assert len(enabled) >= 15
    assert len({f.url for f in all_feeds}) == len(all_feeds)
    for feed in all_feeds:
        assert feed.url.startswith("https://"), feed.url
        assert feed.tags, feed.name
    assert {f.language for f in all_feeds} >= {"en", "fr"}


def test_store_is_a_context_manager_that_closes(tmp_path: Path) -> None:
    """``with open_store(...) as store:`` hands back the store and closes it on leaving."""
    import sqlite3

    from pipeline.stores import open_store

    with open_store(f"sqlite:///{tmp_path / 'ctx.db'}") as store:
        assert store.all_feed_states() == {}
    with pytest.raises(sqlite3.ProgrammingError):
        store._conn.execute("select 1")  # type: ignore[attr-defined]
