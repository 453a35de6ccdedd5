"""The local Elasticsearch server: distribution, Java, the session harness and the daemon."""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from pipeline.devtools import esserver
from pipeline.settings import ELASTICSEARCH_VERSION, get_settings


def test_session_server_is_the_pinned_version_and_healthy(es_url: str) -> None:
    client = Elasticsearch(es_url)
    try:
        assert client.cluster.health()["status"] in ("green", "yellow")
        nodes = client.nodes.info()["nodes"]
        versions = {n["version"] for n in nodes.values()}
        if not os.environ.get("NEWSWIRE_TEST_ES_URL"):
            assert versions == {ELASTICSEARCH_VERSION}
            assert all(n["jvm"]["mem"]["heap_max_in_bytes"] == 512 * 1024 * 1024 for n in nodes.values())
        assert all(v.split(".")[0] == "9" for v in versions)
    finally:
        client.close()


def test_java_home_is_21_or_newer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ES_JAVA_HOME", raising=False)
    home = esserver.find_java_home()
    major = esserver._java_major(home)
    assert major is not None
    assert major >= 21
    assert (home / "bin" / "java").exists()


def test_distribution_is_the_official_integ_test_zip(es_url: str) -> None:
    archive = esserver.download()  # cached by the session server: no download here
    assert archive.parent == Path(get_settings().cache_dir) / "dist"
    with zipfile.ZipFile(archive) as zf:
        assert f"elasticsearch-{ELASTICSEARCH_VERSION}/bin/elasticsearch" in zf.namelist()


def test_server_command_is_single_node_loopback_small_heap(tmp_path: Path) -> None:
    config = esserver.ServerConfig(home=tmp_path, data_dir=tmp_path / "d", port=9250, transport_port=9350)
    cmd = " ".join(config.command())
    for setting in ("discovery.type=single-node", "xpack.security.enabled=false", "network.host=127.0.0.1",
                    "http.port=9250", "transport.port=9350"):  # fmt: skip
        assert setting in cmd
    assert config.env()["ES_JAVA_OPTS"] == "-Xms512m -Xmx512m"
    assert config.url == "http://127.0.0.1:9250"


def test_analysis_plugin_is_installed_on_the_started_server(es_url: str) -> None:
    if os.environ.get("NEWSWIRE_TEST_ES_URL"):
        pytest.skip("a server the tests did not start may have analysis-common instead")
    client = Elasticsearch(es_url)
    try:
        nodes = client.nodes.info(metric="plugins")["nodes"].values()
        plugins = {p["name"]: p["version"] for node in nodes for p in node["plugins"]}
        # built from the current source (its hash is the version), not left over from an older one
        assert (
            plugins[esserver.PLUGIN_NAME]
            == hashlib.sha256(esserver.PLUGIN_SOURCE.read_bytes()).hexdigest()[:12]
        )
        tokens = client.indices.analyze(
            tokenizer="standard",
            filter=[{"type": name} for name in esserver.PLUGIN_COMPONENTS],
            text="Raqqa's Cafés",
        )["tokens"]
        assert [t["token"] for t in tokens] == ["Raqqa", "Cafe"]  # possessive dropped, folded, Porter
    finally:
        client.close()


def test_a_plugin_that_cannot_be_built_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()  # a server home without the plugin API jars: javac cannot compile
    with pytest.raises(esserver.EsServerError, match="could not compile the analysis plugin") as error:
        esserver.install_analysis_plugin(tmp_path)
    assert "org.elasticsearch.plugin" in str(error.value)  # javac's own message is carried
    assert not (tmp_path / "plugins").exists()


def test_missing_maven_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSWIRE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    get_settings.cache_clear()
    with pytest.raises(esserver.EsServerError, match="mvn"):
        esserver.download("9.5.4")


def test_daemon_start_status_stop(es_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``newswire es start|status|stop``: a detached server recorded in the cache dir's state file."""
    cache = tmp_path / "cache"
    (cache / "dist").mkdir(parents=True)
    # reuse the session's downloaded zip instead of fetching it again
    shutil.copyfile(esserver.download(), cache / "dist" / f"elasticsearch-{ELASTICSEARCH_VERSION}.zip")
    monkeypatch.setenv("NEWSWIRE_CACHE_DIR", str(cache))
    get_settings.cache_clear()
    assert esserver.status() == {"running": False}
    assert esserver.stop() is False
    state = esserver.start()
    try:
        assert state["running"]
        assert state["health"] in ("green", "yellow")
        assert esserver.status()["pid"] == state["pid"]
        assert esserver.url() == state["url"]
        assert esserver.start()["pid"] == state["pid"]  # already running: the same server
        client = Elasticsearch(state["url"])
        assert client.cluster.health()["number_of_nodes"] == 1
        client.close()
    finally:
        stopped = esserver.stop()
        shutil.rmtree(state["data_dir"], ignore_errors=True)
    assert stopped is True
    assert esserver.status() == {"running": False}
    assert esserver.health(state["url"], timeout=1) is None
