"""Fetch stage against the real loopback fault-injection server (tests/support/feedserver.py)."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from pipeline import robots
from pipeline.fetch import (
    AddressPolicy,
    FetchOptions,
    FetchResult,
    fetch_feeds,
    fetch_pages,
    poll_hint,
    redact,
)
from pipeline.settings import Settings
from tests.support.feedserver import FeedServer, Response, rss

LOOPBACK = ["127.0.0.1", "localhost", "::1"]
FAST = FetchOptions(backoff_base=0.02, backoff_cap=0.1)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        allow_hosts=LOOPBACK,
        connect_timeout=1.0,
        read_timeout=1.0,
        total_timeout=2.5,
        max_retries=2,
        concurrency=32,
        per_host_concurrency=32,
        max_body_bytes=1024 * 1024,
    )
    values.update(overrides)
    return Settings(**values)


def one(
    url: str,
    state: dict[str, Any] | None = None,
    settings: Settings | None = None,
    options: FetchOptions = FAST,
) -> FetchResult:
    results = list(fetch_feeds([(url, state)], settings or make_settings(), options))
    assert len(results) == 1
    return results[0]


@pytest.fixture(autouse=True)
def _fresh_robots() -> Iterator[None]:
    robots.clear_cache()
    yield
    robots.clear_cache()


P = Callable[[str], str]


# ----------------------------------------------------------------------------- basics


def test_ok_feed_sends_user_agent_and_returns_body_and_validators(
    feed_server: FeedServer, unique_path: P
) -> None:
    body = rss("basic")
    url = feed_server.add(
        unique_path("feed.xml"), body, etag='"v1"', last_modified="Mon, 06 Nov 2023 10:00:00 GMT"
    )
    settings = make_settings(user_agent="newswire-test/9 (+contact)")
    r = one(url, settings=settings)
    assert (r.status, r.http_status, r.error) == ("ok", 200, None)
    assert r.body == body
    assert r.final_url == url
    assert r.headers["etag"] == '"v1"'
    assert r.state["etag"] == '"v1"'
    assert r.state["last_modified"].startswith("Mon, 06 Nov")
    assert r.state["failures"] == 0
    assert r.state["body_hash"]
    sent = feed_server.seen(unique_path("feed.xml"))[-1].headers
    assert sent["user-agent"] == "newswire-test/9 (+contact)"
    assert "gzip" in sent["accept-encoding"]
    assert "br" in sent["accept-encoding"]


@pytest.mark.parametrize("encoding", ["gzip-auto", "deflate-auto", "rawdeflate-auto", "br-auto"])
def test_compressed_bodies_are_decoded(feed_server: FeedServer, unique_path: P, encoding: str) -> None:
    body = rss("compressed", 40)
    url = feed_server.add(unique_path("c.xml"), body, headers={"Content-Encoding": encoding})
    r = one(url)
    assert r.status == "ok", r.error
    assert r.body == body


def test_state_counts_failures_and_keeps_validators(feed_server: FeedServer, unique_path: P) -> None:
    url = feed_server.add(unique_path("404.xml"), b"nope", 404)
    prev = {"etag": '"old"', "failures": 2, "body_hash": "abc"}
    r = one(url, prev)
    assert r.status == "error"
    assert r.http_status == 404
    assert r.error == f"{url}: HTTP 404 Not Found"
    assert r.state["failures"] == 3
    assert r.state["etag"] == '"old"'
    assert r.state["last_error"] == r.error
    assert prev["failures"] == 2  # the caller's dict is not mutated


# ----------------------------------------------------------------------------- conditional GET


def test_conditional_get_304_and_every_nth_poll_unconditional(
    feed_server: FeedServer, unique_path: P
) -> None:
    path = unique_path("cond.xml")
    url = feed_server.add(path, rss("cond"), etag='"c1"')
    options = FetchOptions(unconditional_every=3, backoff_base=0.02)
    first = one(url, None, options=options)
    assert first.status == "ok"
    second = one(url, first.state, options=options)
    assert second.status == "not_modified"
    assert second.http_status == 304
    assert second.body == b""
    assert second.state["polls"] == 1
    third = one(url, second.state, options=options)
    assert third.http_status == 304
    assert third.state["polls"] == 2
    fourth = one(url, third.state, options=options)  # every 3rd poll is unconditional; same bytes
    assert fourth.status == "not_modified"
    assert fourth.http_status == 200
    assert fourth.state["polls"] == 0
    sent = [s.headers.get("if-none-match") for s in feed_server.seen(path)]
    assert sent == [None, '"c1"', '"c1"', None]


def test_stale_etag_is_caught_and_conditional_get_turned_off(feed_server: FeedServer, unique_path: P) -> None:
    path = unique_path("stale.xml")
    options = FetchOptions(unconditional_every=3, backoff_base=0.02)
    # A server that keeps its ETag and answers 304 although the feed changed.
    feed_server.add_sequence(
        path,
        [
            Response(rss("stale-v1"), etag='"same"', stale=True),
            Response(rss("stale-v2"), etag='"same"', stale=True),
        ],
    )
    url = feed_server.url(path)
    s1 = one(url, None, options=options)
    s2 = one(url, s1.state, options=options)
    assert s2.status == "not_modified"  # the lie
    s2b = one(url, s2.state, options=options)
    assert s2b.status == "not_modified"  # the lie again
    s3 = one(url, s2b.state, options=options)  # unconditional poll reveals new content under the same ETag
    assert s3.status == "ok"
    assert b"stale-v2" in s3.body
    assert s3.state["conditional"] is False
    assert s3.state["stale_caught"] == 1
    s4 = one(url, s3.state, options=options)
    assert "if-none-match" not in feed_server.seen(path)[-1].headers
    assert s4.status == "not_modified"
    assert s4.http_status == 200


def test_last_modified_conditional(feed_server: FeedServer, unique_path: P) -> None:
    path = unique_path("lm.xml")
    url = feed_server.add(path, rss("lm"), last_modified="Tue, 07 Nov 2023 08:00:00 GMT")
    s1 = one(url)
    s2 = one(url, s1.state)
    assert s2.status == "not_modified"
    assert s2.http_status == 304
    assert feed_server.seen(path)[-1].headers["if-modified-since"] == "Tue, 07 Nov 2023 08:00:00 GMT"


def test_410_is_gone(feed_server: FeedServer, unique_path: P) -> None:
    url = feed_server.add(unique_path("gone.xml"), b"", 410)
    r = one(url, {"etag": '"x"'})
    assert r.status == "gone"
    assert r.http_status == 410
    assert r.state["gone"] is True
    assert r.error is not None
    assert r.error.startswith(url)


def test_file_feed_and_not_modified(tmp_path: Path) -> None:
    feed = tmp_path / "local.xml"
    feed.write_bytes(rss("local"))
    r1 = one(feed.as_uri())
    assert r1.status == "ok"
    assert r1.body == rss("local")
    r2 = one(feed.as_uri(), r1.state)
    assert r2.status == "not_modified"
    r3 = one(str(feed), None)  # a plain path from the configuration
    assert r3.status == "ok"
    missing = one((tmp_path / "missing.xml").as_uri())
    assert missing.status == "error"
    assert "missing.xml" in (missing.error or "")


# ----------------------------------------------------------------------------- retries and timeouts


def test_500_is_retried_then_fails_with_clear_error(feed_server: FeedServer, unique_path: P) -> None:
    path = unique_path("500.xml")
    url = feed_server.add(path, b"boom", 500)
    r = one(url, settings=make_settings(max_retries=2))
    assert r.status == "error"
    assert r.http_status == 500
    assert r.error == f"{url}: HTTP 500 Internal Server Error (after 3 attempts)"
    assert feed_server.hits[path] == 3


def test_503_retry_after_is_honoured_then_succeeds(feed_server: FeedServer, unique_path: P) -> None:
    path = unique_path("503.xml")
    feed_server.add_sequence(path, [Response(b"", 503, {"Retry-After": "1"}), Response(rss("after"))])
    r = one(feed_server.url(path))
    assert r.status == "ok", r.error
    hits = feed_server.seen(path)
    assert len(hits) == 2
    assert hits[1].at - hits[0].at >= 0.95


def test_429_with_long_retry_after_fails_fast_and_reports_it(feed_server: FeedServer, unique_path: P) -> None:
    url = feed_server.add(unique_path("429.xml"), b"", 429, {"Retry-After": "3600"})
    t0 = time.monotonic()
    r = one(url)
    assert time.monotonic() - t0 < 1.5
    assert r.status == "error"
    assert r.http_status == 429
    assert "Retry-After 3600s" in (r.error or "")
    assert r.state["retry_after"] == 3600


def test_connection_reset_is_retried(feed_server: FeedServer, unique_path: P) -> None:
    path = unique_path("flaky.xml")
    feed_server.add_sequence(path, [FAULT("reset"), FAULT("reset"), Response(rss("flaky"))])
    r = one(feed_server.url(path))
    assert r.status == "ok", r.error
    assert feed_server.hits[path] == 3


def FAULT(kind: str) -> Callable[[Any], None]:
    from tests.support.feedserver import FAULTS

    return FAULTS[kind]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("hang", "total timeout"),
        ("drip", "total timeout"),
        ("reset", "Connection reset"),
        ("reset_midway", "Connection reset"),
        ("lying_length", "without sending complete message body"),
        ("huge", "body larger than 1048576 bytes"),
        ("huge_with_length", "body larger than 1048576 bytes (Content-Length: 52428800)"),
        ("gzip_bomb", "body larger than 1048576 bytes (decoded)"),
        ("brotli_bomb", "body larger than 1048576 bytes (decoded)"),
    ],
)
@pytest.mark.slow
def test_each_fault_gives_a_clear_error_naming_the_url(
    feed_server: FeedServer, unique_path: P, fault: str, expected: str
) -> None:
    url = feed_server.add_fault(unique_path(f"{fault}.xml"), fault)
    settings = make_settings()
    t0 = time.monotonic()
    r = one(url, settings=settings)
    elapsed = time.monotonic() - t0
    assert r.status == "error"
    assert r.error is not None, r.error
    assert r.error.startswith(f"{url}: "), r.error
    assert expected in r.error, r.error
    assert elapsed < settings.total_timeout + 1.0  # bounded by the total timeout, retries included


def test_huge_body_is_cut_off_while_streaming(feed_server: FeedServer, unique_path: P) -> None:
    url = feed_server.add_fault(unique_path("huge2.xml"), "huge")
    before = feed_server.bytes_sent
    r = one(url, settings=make_settings(max_retries=0))
    assert r.status == "error"
    time.sleep(0.2)
    assert feed_server.bytes_sent - before < 20 * 1024 * 1024  # far less than the 50 MiB offered


def test_redirects_followed_and_permanent_move_recorded(feed_server: FeedServer, unique_path: P) -> None:
    final = feed_server.add(unique_path("final.xml"), rss("moved"))
    hop = feed_server.add_redirect(unique_path("hop"), final, 301)
    start = feed_server.add_redirect(unique_path("start"), hop, 308)
    r = one(start)
    assert r.status == "ok"
    assert r.final_url == final
    assert r.state["moved_to"] == final
    temp = feed_server.add_redirect(unique_path("temp"), final, 302)
    assert "moved_to" not in one(temp).state


def test_redirect_loop_and_too_many_redirects(feed_server: FeedServer, unique_path: P) -> None:
    a, b = unique_path("a"), unique_path("b")
    feed_server.add_redirect(a, b)
    feed_server.add_redirect(b, a)
    r = one(feed_server.url(a))
    assert r.status == "error"
    assert "redirect loop" in (r.error or "")
    chain = [unique_path(f"c{i}") for i in range(8)]
    for i in range(7):
        feed_server.add_redirect(chain[i], chain[i + 1])
    feed_server.add(chain[7], rss("end"))
    r = one(feed_server.url(chain[0]), settings=make_settings(max_redirects=5))
    assert r.error == f"{feed_server.url(chain[0])}: too many redirects (more than 5)"
    assert one(feed_server.url(chain[0]), settings=make_settings(max_redirects=7)).status == "ok"


# ----------------------------------------------------------------------------- safety


def test_loopback_refused_unless_allowed(feed_server: FeedServer, unique_path: P) -> None:
    path = unique_path("private.xml")
    url = feed_server.add(path, rss("p"))
    r = one(url, settings=make_settings(allow_hosts=[]))
    assert r.status == "error"
    assert "is loopback; refused" in (r.error or "")
    assert path not in feed_server.hits  # refused before connecting
    assert one(url, settings=make_settings(allow_hosts=["127.0.0.0/8"])).status == "ok"
    localhost = feed_server.url(path, host="localhost")
    assert one(localhost, settings=make_settings(allow_hosts=["localhost"])).status == "ok"
    refused = one(localhost, settings=make_settings(allow_hosts=["10.0.0.0/8"]))
    assert refused.status == "error"
    assert "of 'localhost' is loopback; refused" in (refused.error or "")


@pytest.mark.parametrize(
    "target",
    [
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:192.168.0.1]/",
        "http://224.0.0.1/",
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
    ],
)
def test_redirect_to_unsafe_target_refused(feed_server: FeedServer, unique_path: P, target: str) -> None:
    url = feed_server.add_redirect(unique_path("evil"), target)
    r = one(url)
    assert r.status == "error", r.error
    assert "refused" in (r.error or ""), r.error
    assert (r.error or "").startswith(url)


def test_page_links_only_http(tmp_path: Path) -> None:
    f = tmp_path / "secret.html"
    f.write_text("secret")
    results = fetch_pages([f.as_uri(), "ftp://example.org/x", "javascript:alert(1)"], make_settings())
    for url, r in results.items():
        assert r.status == "error", url
        assert "not allowed (only http and https)" in (r.error or ""), url


def test_address_policy() -> None:
    policy = AddressPolicy(["10.0.0.0/8", "intranet.local"])
    assert policy.refusal("a", "8.8.8.8") is None
    assert policy.refusal("a", "10.2.3.4") is None
    assert policy.refusal("intranet.local", "192.168.1.1") is None
    for ip, kind in [
        ("127.0.0.1", "loopback"),
        ("192.168.1.1", "private"),
        ("169.254.1.1", "link-local"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-global"),
    ]:
        assert kind in (policy.refusal("x", ip) or ""), ip


@pytest.mark.parametrize(
    ("ip", "kind"),
    [
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("2002:a9fe:a9fe::", "link-local"),  # 6to4 of the metadata address 169.254.169.254
    ],
)
def test_6to4_addresses_embedding_private_ipv4_are_refused(ip: str, kind: str) -> None:
    refusal = AddressPolicy([]).refusal("x", ip) or ""
    assert f"is {kind}; refused" in refusal, refusal
    assert AddressPolicy([]).refusal("x", "2002:808:808::") is None  # 6to4 of a public address


def test_credentials_only_sent_to_their_origin(feed_server: FeedServer, unique_path: P) -> None:
    same, other, start = unique_path("same"), unique_path("other.xml"), unique_path("auth")
    feed_server.add(other, rss("other"))
    feed_server.add_redirect(same, feed_server.url(other, host="localhost"))
    feed_server.add_redirect(start, same)
    url = f"http://user:s3cret@127.0.0.1:{feed_server.port}{start}"
    r = one(url)
    assert r.status == "ok", r.error
    assert feed_server.seen(start)[-1].headers["authorization"].startswith("Basic ")
    assert "authorization" in feed_server.seen(same)[-1].headers  # same origin
    assert "authorization" not in feed_server.seen(other)[-1].headers  # other host: never
    assert redact(url) == f"http://user:***@127.0.0.1:{feed_server.port}{start}"
    bad = one(f"http://user:s3cret@127.0.0.1:{feed_server.port}{unique_path('none')}")
    assert "s3cret" not in (bad.error or "")
    assert "***" in (bad.error or "")


def test_no_cookies_are_kept(feed_server: FeedServer, unique_path: P) -> None:
    path = unique_path("cookie.xml")
    url = feed_server.add(path, rss("cookie"), headers={"Set-Cookie": "track=1; Path=/"})
    list(fetch_feeds([(url, None), (url + "?again", None)], make_settings(concurrency=1), FAST))
    assert all("cookie" not in s.headers for s in feed_server.seen(path))


# ----------------------------------------------------------------------------- robots.txt


def test_robots_txt_honoured_and_cached_per_host(unique_path: P) -> None:
    with FeedServer() as server:
        server.add(
            "/robots.txt",
            "User-agent: *\nDisallow: /private/\n\nUser-agent: newswire\nDisallow: /nw-*$\n",
            content_type="text/plain",
        )
        ok = server.add("/news/1.html", "<html>one</html>", content_type="text/html")
        ok2 = server.add("/news/2.html", "<html>two</html>", content_type="text/html")
        blocked = server.add("/nw-secret", "<html>x</html>", content_type="text/html")
        other = server.add("/private/a.html", "<html>p</html>", content_type="text/html")
        results = fetch_pages([ok, ok2, blocked, other], make_settings())
        assert results[ok].status == "ok"
        assert results[ok].body == b"<html>one</html>"
        assert results[ok2].status == "ok"
        assert results[blocked].error == f"{blocked}: disallowed by robots.txt"
        assert results[other].status == "ok"  # the newswire group replaces the * group
        assert server.hits["/robots.txt"] == 1
        assert "/nw-secret" not in server.hits
        # cached across calls; switched off by the setting
        again = fetch_pages([blocked], make_settings(respect_robots=False))
        assert again[blocked].status == "ok"
        fetch_pages([ok], make_settings())
        assert server.hits["/robots.txt"] == 1


def test_robots_unreachable_disallows_and_404_allows() -> None:
    with FeedServer() as down, FeedServer() as none:
        down.add("/robots.txt", b"", 503)
        page = down.add("/a.html", "<html>a</html>", content_type="text/html")
        r = fetch_pages([page], make_settings(max_retries=0))[page]
        assert r.status == "error"
        assert "robots.txt unreachable (HTTP 503)" in (r.error or "")
        assert "/a.html" not in down.hits
        page2 = none.add("/b.html", "<html>b</html>", content_type="text/html")
        assert fetch_pages([page2], make_settings())[page2].status == "ok"


def test_robots_checked_after_redirect_to_another_host(feed_server: FeedServer, unique_path: P) -> None:
    with FeedServer() as other:
        other.add("/robots.txt", "User-agent: *\nDisallow: /\n", content_type="text/plain")
        target = other.add("/story.html", "<html>s</html>", content_type="text/html")
        link = feed_server.add_redirect(unique_path("go"), target)
        r = fetch_pages([link], make_settings())[link]
        assert r.status == "error"
        assert f"redirected to {target}: disallowed by robots.txt" in (r.error or "")
        assert "/story.html" not in other.hits


# ----------------------------------------------------------------------------- concurrency


@pytest.mark.slow
def test_results_stream_as_they_complete(feed_server: FeedServer, unique_path: P) -> None:
    slow = feed_server.add(unique_path("slow.xml"), rss("slow"), delay=1.5)
    fast = [feed_server.add(unique_path(f"fast{i}.xml"), rss(f"fast{i}")) for i in range(5)]
    t0 = time.monotonic()
    seen: list[tuple[str, float, str]] = []
    settings = make_settings(total_timeout=5, read_timeout=3)
    for r in fetch_feeds([(slow, None)] + [(u, None) for u in fast], settings, FAST):
        seen.append((r.url, time.monotonic() - t0, r.status))
    assert [u for u, _, _ in seen][-1] == slow
    assert all(status == "ok" for _, _, status in seen)
    assert all(t < 1.0 for u, t, _ in seen if u != slow)


def test_early_close_cancels_in_flight_fetches(feed_server: FeedServer, unique_path: P) -> None:
    hang = feed_server.add_fault(unique_path("hang.xml"), "hang")
    fast = feed_server.add(unique_path("fast.xml"), rss("fast"))
    t0 = time.monotonic()
    it = fetch_feeds([(hang, None), (fast, None)], make_settings(total_timeout=30, read_timeout=30), FAST)
    first = next(it)
    it.close()  # type: ignore[attr-defined]
    assert first.url == fast
    assert time.monotonic() - t0 < 2.0


@pytest.mark.slow
def test_per_host_and_global_limits(unique_path: P) -> None:
    with FeedServer() as server:
        urls = [server.add(f"/slow{i}", rss(f"s{i}"), delay=0.3) for i in range(6)]
        t0 = time.monotonic()
        results = list(fetch_feeds([(u, None) for u in urls], make_settings(per_host_concurrency=2), FAST))
        assert all(r.status == "ok" for r in results)
        assert server.max_in_flight == 2
        assert time.monotonic() - t0 >= 0.85
    lock = threading.Lock()
    counts = {"now": 0, "max": 0}

    def slow(req: Any) -> None:  # one in-flight counter shared by both hosts
        with lock:
            counts["now"] += 1
            counts["max"] = max(counts["max"], counts["now"])
        time.sleep(0.3)
        with lock:
            counts["now"] -= 1
        req.send_plain(200, rss("shared"))

    with FeedServer() as a, FeedServer("127.0.0.2") as b:
        urls = [s.add_handler(f"/slow{i}", slow) for s in (a, b) for i in range(4)]
        settings = make_settings(concurrency=3, per_host_concurrency=10, allow_hosts=["127.0.0.0/8"])
        results = list(fetch_feeds([(u, None) for u in urls], settings, FAST))
        assert all(r.status == "ok" for r in results)
        assert counts["max"] == 3


@pytest.mark.slow
def test_mixed_run_each_fault_isolated(feed_server: FeedServer, unique_path: P) -> None:
    """Good feeds succeed and every bad feed fails with its own message, in one run."""
    good = {feed_server.add(unique_path(f"good{i}.xml"), rss(f"good{i}")) for i in range(10)}
    bad = {
        feed_server.add_fault(unique_path(f"bad-{k}.xml"), k)
        for k in ("hang", "reset", "lying_length", "gzip_bomb", "huge", "drip")
    }
    bad |= {
        feed_server.add(unique_path("bad-500.xml"), b"", 500),
        feed_server.add(unique_path("bad-429.xml"), b"", 429, {"Retry-After": "600"}),
    }
    # Parse-level faults are fetched intact: the parse stage reports them per feed.
    parse_level = {
        feed_server.add(unique_path("trunc.xml"), rss("trunc")[:-40]): rss("trunc")[:-40],
        feed_server.add(
            unique_path("html.xml"), "<html><body>not a feed</body></html>", content_type="text/html"
        ): b"<html><body>not a feed</body></html>",
        feed_server.add(
            unique_path("charset.xml"),
            rss("caf\u00e9", charset="latin-1").replace(b'encoding="latin-1"', b'encoding="utf-8"'),
        ): None,
    }
    settings = make_settings(total_timeout=2.0)
    t0 = time.monotonic()
    results = {
        r.url: r for r in fetch_feeds([(u, None) for u in good | bad | set(parse_level)], settings, FAST)
    }
    assert time.monotonic() - t0 < settings.total_timeout + 1.5
    assert all(results[u].status == "ok" for u in good)
    for u in bad:
        assert results[u].status == "error"
        assert (results[u].error or "").startswith(u + ": ")
    for u, body in parse_level.items():
        assert results[u].status == "ok"
        assert body is None or results[u].body == body
    assert len({results[u].error for u in bad}) == len(bad)


def test_gzip_member_concatenation(feed_server: FeedServer, unique_path: P) -> None:
    body = gzip.compress(b"<rss>part one ") + gzip.compress(b"part two</rss>")
    url = feed_server.add(unique_path("multi.xml"), body, headers={"Content-Encoding": "gzip"})
    assert one(url).body == b"<rss>part one part two</rss>"


def test_poll_hint_from_http_headers(feed_server: FeedServer, unique_path: P) -> None:
    cached = feed_server.add(
        unique_path("cc.xml"), rss("cc"), headers={"Cache-Control": "public, max-age=600", "Age": "100"}
    )
    assert poll_hint(one(cached)) == 500
    expires = feed_server.add(
        unique_path("exp.xml"), rss("exp"), headers={"Expires": formatdate(time.time() + 300, usegmt=True)}
    )
    hint = poll_hint(one(expires))  # Expires minus the server's Date
    assert hint is not None
    assert 290 <= hint <= 301
    limited = feed_server.add(unique_path("ra.xml"), b"", 429, {"Retry-After": "900"})
    assert poll_hint(one(limited)) == 900
    assert poll_hint(one(feed_server.add(unique_path("plain.xml"), rss("plain")))) is None


def test_idle_host_pools_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs touching many hosts keep a bounded number of per-host connection pools."""
    import asyncio

    from pipeline.fetch import Fetcher, _PerHostTransport

    monkeypatch.setattr(_PerHostTransport, "max_idle_pools", 2)
    servers = [FeedServer(f"127.0.0.{i}").start() for i in (1, 2, 3, 4)]
    try:
        urls = [s.add("/f.xml", rss(f"h{i}")) for i, s in enumerate(servers)]

        async def go() -> tuple[list[str], int]:
            async with Fetcher(make_settings(allow_hosts=["127.0.0.0/8"]), FAST) as fetcher:
                statuses = [(await fetcher.fetch_feed(u)).status for u in urls]
                transport = fetcher._client._transport  # type: ignore[union-attr]
                assert isinstance(transport, _PerHostTransport)
                return statuses, len(transport.pools)

        statuses, pools = asyncio.run(go())
        assert statuses == ["ok"] * 4
        assert pools == 2
    finally:
        for s in servers:
            s.stop()
