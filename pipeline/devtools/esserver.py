"""Developer tool, not a pipeline stage: a local Elasticsearch for tests and for people without Docker.

It is used by ``newswire es start|stop|status|setup`` and by the test harness
(``tests/support/es_harness.py``, ``tests/support/es_cluster.py``); the pipeline itself only
ever talks to an Elasticsearch URL and never imports this module.

Contract:
- :func:`ensure_distribution` downloads the official integration-test distribution
  ``org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip`` from Maven
  Central with ``mvn dependency:copy`` into ``settings.cache_dir`` (once) and unpacks it.
- :func:`start` starts it on a free loopback port (heap 512 MiB, single-node discovery,
  security off) as a detached daemon, waits for yellow/green and records
  ``{pid, port, url, home, data_dir, version}`` in ``<cache_dir>/es-state.json``. Its HTTP port
  is the one asked for, else the last one used (``<cache_dir>/es-last-port``) while it is free,
  so saved ``--store`` URLs keep working, else a free one (:func:`pick_port`); ``on_wait`` is
  called with the seconds waited while the server comes up (the CLI shows progress);
  :func:`stop` and :func:`status` read that file. The lead wires them as
  ``newswire es start|stop|status|setup``.
- :class:`LocalElasticsearch` is the same server bound to a Python object (pytest's
  session fixture in ``tests/support/es_harness.py`` uses it); its process handling is
  mirakuru's ``HTTPExecutor`` (a well-kept library: start, wait for a URL, stop the whole
  process group).
- Elasticsearch 9 needs Java 21+: ``ES_JAVA_HOME`` is the newest JDK >= 21 under
  ``/usr/lib/jvm`` (or ``$ES_JAVA_HOME`` when it is set).
- Elasticsearch refuses to run as root: as root the server runs as the system user
  ``newswire-es`` (created with ``useradd`` when missing), and the unpacked distribution and
  data live under ``/var/tmp/newswire-es`` when the cache dir is not reachable by that user
  (``/root`` is mode 700).
- Any failure raises :class:`EsServerError` whose message names the step and carries the
  exact tool output (for "the issue is blocked" reports); nothing falls back to a stand-in.

Note on the distribution: the integ-test zip ships only the modules ``transport-netty4``,
``x-pack-core``, ``x-pack-security`` and ``apm``. Core search, aggregations, collapse,
geo queries and points in time are all there; the ``analysis-common`` module (the
``english`` analyzer, stemmers) and ``lang-painless`` are not. :func:`install_analysis_plugin`
adds the three Lucene filters of the ``english`` chain as a stable plugin, so text is
analysed as on the full distribution; the store adapts to the rest (see
:mod:`pipeline.stores.elasticsearch`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.settings import ELASTICSEARCH_VERSION, get_settings

log = logging.getLogger(__name__)

ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
ES_USER = "newswire-es"
ROOT_FALLBACK_DIR = Path("/var/tmp/newswire-es")
JVM_DIR = Path("/usr/lib/jvm")
HEAP = "512m"
STATE_FILE = "es-state.json"
LAST_PORT_FILE = "es-last-port"  # the HTTP port of the last start, reused while free
PLUGIN_NAME = "newswire-analysis"
PLUGIN_SOURCE = Path(__file__).with_name("esplugin") / "EnglishFilters.java"
PLUGIN_INTERFACE = "org.elasticsearch.plugin.analysis.TokenFilterFactory"
PLUGIN_COMPONENTS = {
    "newswire_possessive": "newswire.analysis.EnglishFilters$Possessive",
    "newswire_asciifolding": "newswire.analysis.EnglishFilters$AsciiFolding",
    "newswire_porter_stem": "newswire.analysis.EnglishFilters$PorterStem",
}


class EsServerError(RuntimeError):
    """The local server could not be downloaded, unpacked, started or stopped."""


# --- helpers ---------------------------------------------------------------------------


def _cache_dir() -> Path:
    path = Path(get_settings().cache_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _java_major(home: Path) -> int | None:
    release = home / "release"
    if not release.is_file():
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(errors="replace"), re.M)
    return int(match.group(1)) if match else None


def find_java_home(minimum: int = 21) -> Path:
    """``$ES_JAVA_HOME`` if set, else the newest JDK >= ``minimum`` under /usr/lib/jvm."""
    env = os.environ.get("ES_JAVA_HOME")
    if env:
        return Path(env)
    candidates: list[tuple[int, Path]] = []
    if JVM_DIR.is_dir():
        for home in JVM_DIR.iterdir():
            if home.is_symlink():
                continue
            major = _java_major(home)
            if major is not None and major >= minimum and (home / "bin" / "java").exists():
                candidates.append((major, home))
    if not candidates:
        raise EsServerError(
            f"no JDK >= {minimum} found under {JVM_DIR} (Elasticsearch 9 needs Java 21+); set ES_JAVA_HOME"
        )
    return max(candidates)[1]


def _is_root() -> bool:
    return os.geteuid() == 0


def ensure_es_user() -> pwd.struct_passwd:
    """The unprivileged ``newswire-es`` system user, created when missing (root only)."""
    try:
        return pwd.getpwnam(ES_USER)
    except KeyError:
        pass
    proc = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ES_USER],
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 9):  # 9: the user exists (created concurrently)
        raise EsServerError(f"useradd {ES_USER} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return pwd.getpwnam(ES_USER)


def _reachable_by_others(path: Path) -> bool:
    """True when every ancestor of ``path`` can be traversed by any user."""
    return all(not (parent.exists() and not parent.stat().st_mode & 1) for parent in [path, *path.parents])


def runtime_root() -> Path:
    """Where the unpacked distribution and data dirs live (see the module docstring)."""
    cache = _cache_dir()
    if _is_root() and not _reachable_by_others(cache):
        ROOT_FALLBACK_DIR.mkdir(parents=True, exist_ok=True)
        os.chmod(ROOT_FALLBACK_DIR, 0o755)
        return ROOT_FALLBACK_DIR
    return cache


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    os.chown(path, user.pw_uid, user.pw_gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid)


# --- download and unpack ---------------------------------------------------------------


def download(version: str = ELASTICSEARCH_VERSION) -> Path:
    """The distribution zip in ``<cache_dir>/dist``, fetched with Maven when missing."""
    dist = _cache_dir() / "dist"
    target = dist / f"elasticsearch-{version}.zip"
    if target.is_file() and zipfile.is_zipfile(target):
        return target
    if shutil.which("mvn") is None:
        raise EsServerError("Maven (mvn) is not installed: it downloads the Elasticsearch distribution")
    dist.mkdir(parents=True, exist_ok=True)
    artifact = ARTIFACT.format(version=version)
    cmd = [
        "mvn", "-B", "-q", f"{DEPENDENCY_PLUGIN}:copy",
        f"-Dartifact={artifact}", f"-DoutputDirectory={dist}", "-Dmdep.overWriteReleases=true",
    ]  # fmt: skip
    env = {**os.environ, "JAVA_HOME": os.environ.get("JAVA_HOME") or str(find_java_home(17))}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=dist)
    if proc.returncode != 0 or not target.is_file():
        output = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line)
        raise EsServerError(
            f"could not download {artifact} with Maven (exit {proc.returncode}):\n"
            f"{output or (proc.stdout + proc.stderr)[-2000:]}"
        )
    return target


def ensure_distribution(version: str = ELASTICSEARCH_VERSION) -> Path:
    """ES_HOME of the unpacked distribution, with the analysis plugin (each step once, under a lock)."""
    root = runtime_root()
    home = root / f"elasticsearch-{version}"
    with _file_lock(root / f".unpack-{version}.lock"):
        if not (home / "bin" / "elasticsearch").is_file():
            _unpack(download(version), home, version)
        install_analysis_plugin(home, version)
    return home


def _unpack(archive: Path, home: Path, version: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".unpack-{version}-", dir=home.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
            for info in zf.infolist():  # zipfile drops the executable bits
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    os.chmod(tmp / info.filename, mode)
        inner = tmp / f"elasticsearch-{version}"
        if not (inner / "bin" / "elasticsearch").is_file():
            raise EsServerError(f"{archive} does not contain elasticsearch-{version}/bin/elasticsearch")
        inner.rename(home)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def install_analysis_plugin(home: Path, version: str = ELASTICSEARCH_VERSION) -> None:
    """Build and install the ``newswire-analysis`` plugin into ``home`` (once).

    The integ-test zip has no ``analysis-common`` module, so no English stemmer: the plugin
    (``pipeline/devtools/esplugin/EnglishFilters.java``, a stable analysis plugin of three factories)
    gives the server the Lucene filters of the full distribution's ``english`` analyzer,
    compiled with the JDK's ``javac`` against the server's own ``lib/*.jar``; rebuilt when
    the source changes (its hash is the plugin's version). Without a
    ``javac`` (a JRE only) it logs a warning and the store indexes without stemming; any
    other failure raises :class:`EsServerError` with the tool's output.
    """
    installed = home / "plugins" / PLUGIN_NAME
    build_id = hashlib.sha256(PLUGIN_SOURCE.read_bytes()).hexdigest()[:12]  # the source's version
    descriptor = installed / "stable-plugin-descriptor.properties"
    if descriptor.is_file() and f"version={build_id}" in descriptor.read_text().splitlines():
        return
    shutil.rmtree(installed, ignore_errors=True)  # absent, or built from an older source
    java_home = find_java_home()
    javac = java_home / "bin" / "javac"
    if not javac.is_file():
        log.warning(
            "no javac in %s: the English analysis plugin is not installed (text will not be stemmed)",
            java_home,
        )
        return
    api_jars = (
        "elasticsearch-plugin-api-",
        "elasticsearch-plugin-analysis-api-",
        "lucene-core-",
        "lucene-analysis-common-",
    )
    classpath = [str(jar) for jar in sorted((home / "lib").glob("*.jar")) if jar.name.startswith(api_jars)]
    with tempfile.TemporaryDirectory(prefix="newswire-plugin-") as tmp:
        build = Path(tmp)
        _run_step(
            "compile the analysis plugin",
            [str(javac), "--release", "21", "-cp", os.pathsep.join(classpath), "-d", str(build / "classes"),
             str(PLUGIN_SOURCE)],
        )  # fmt: skip
        bundle = build / f"{PLUGIN_NAME}.zip"
        with zipfile.ZipFile(bundle, "w") as plugin:
            with zipfile.ZipFile(build / f"{PLUGIN_NAME}.jar", "w") as jar:
                for cls in sorted((build / "classes").rglob("*.class")):
                    jar.write(cls, cls.relative_to(build / "classes").as_posix())
            plugin.write(build / f"{PLUGIN_NAME}.jar", f"{PLUGIN_NAME}.jar")
            plugin.writestr(
                "stable-plugin-descriptor.properties",
                f"name={PLUGIN_NAME}\ndescription=newswire English token filters "
                f"(Lucene)\nversion={build_id}\n"
                f"java.version=21\nelasticsearch.version={version}\n",
            )
            plugin.writestr("named_components.json", json.dumps({PLUGIN_INTERFACE: PLUGIN_COMPONENTS}))
        bundle.chmod(0o644)
        env = {**os.environ, "ES_JAVA_HOME": str(java_home)}
        _run_step(
            "install the analysis plugin",
            [str(home / "bin" / "elasticsearch-plugin"), "install", "--batch", bundle.as_uri()],
            env=env,
        )
    if _is_root():
        _chown_tree(home / "plugins", ensure_es_user())


def _run_step(step: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise EsServerError(
            f"could not {step} (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
        )


# --- the server ------------------------------------------------------------------------


@dataclass
class ServerConfig:
    """Everything needed to run one server process."""

    home: Path
    data_dir: Path
    port: int
    transport_port: int
    heap: str = HEAP

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def command(self) -> list[str]:
        settings = {
            "discovery.type": "single-node",
            "xpack.security.enabled": "false",
            "network.host": "127.0.0.1",
            "http.port": str(self.port),
            "transport.port": str(self.transport_port),
            "path.data": str(self.data_dir / "data"),
            "path.logs": str(self.log_dir),
            "cluster.name": f"newswire-{self.port}",
            "node.name": "newswire",
            # a nearly full disk must not turn the test index read-only
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "action.destructive_requires_name": "false",
        }
        cmd = [str(self.home / "bin" / "elasticsearch")]
        for key, value in settings.items():
            cmd += ["-E", f"{key}={value}"]
        return cmd

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "JAVA_"))}
        env["ES_JAVA_HOME"] = str(find_java_home())
        env["ES_JAVA_OPTS"] = f"-Xms{self.heap} -Xmx{self.heap}"
        env["ES_TMPDIR"] = str(self.data_dir / "tmp")
        if _is_root():
            env["HOME"] = str(self.data_dir)
            env["USER"] = env["LOGNAME"] = ES_USER
        return env

    def popen_kwargs(self) -> dict[str, Any]:
        if not _is_root():
            return {}
        user = ensure_es_user()
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def prepare(self) -> None:
        """Create the data/log/tmp dirs and hand them (and ES_HOME) to the ES user when root."""
        for sub in ("data", "logs", "tmp"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        if _is_root():
            user = ensure_es_user()
            if self.home.stat().st_uid != user.pw_uid:
                _chown_tree(self.home, user)
            _chown_tree(self.data_dir, user)
            os.chmod(self.data_dir, 0o755)


def make_config(data_dir: Path | None = None, version: str = ELASTICSEARCH_VERSION) -> ServerConfig:
    """A config on free loopback ports; ``data_dir`` defaults to a fresh temp dir."""
    home = ensure_distribution(version)
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="es-data-", dir=runtime_root()))
    port = free_port()
    transport = free_port()
    while transport == port:
        transport = free_port()
    return ServerConfig(home=home, data_dir=data_dir, port=port, transport_port=transport)


def health(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """``_cluster/health`` of ``url``, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=timeout) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _log_tail(config: ServerConfig, lines: int = 30) -> str:
    chunks = []
    for path in [config.data_dir / "console.log"]:
        if path.is_file() and path.stat().st_size:
            text = path.read_text(errors="replace").splitlines()
            chunks.append(f"--- {path}\n" + "\n".join(text[-lines:]))
    return "\n".join(chunks)


class LocalElasticsearch:
    """One server process bound to this object (mirakuru ``HTTPExecutor``).

    ``start()`` returns when the cluster is yellow or green; ``stop()`` ends the process
    group. Used as a context manager by the pytest fixture.
    """

    def __init__(self, config: ServerConfig | None = None, timeout: float = 180.0) -> None:
        self.config = config or make_config()
        self.timeout = timeout
        self._executor: Any = None
        self._own_data = config is None

    @property
    def url(self) -> str:
        return self.config.url

    def start(self) -> LocalElasticsearch:
        from mirakuru import HTTPExecutor as _Executor
        from mirakuru.exceptions import ProcessExitedWithError, TimeoutExpired

        self.config.prepare()
        with open(self.config.data_dir / "console.log", "w") as console:  # the child keeps its own fd
            self._executor = _Executor(
                self.config.command(),
                url=f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=1s",
                status=200,
                method="GET",
                timeout=self.timeout,
                sleep=0.5,
                envvars=self.config.env(),
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=str(self.config.home),
                popen_kwargs=self.config.popen_kwargs(),
            )
            try:
                self._executor.start()
            except (ProcessExitedWithError, TimeoutExpired, OSError) as exc:
                tail = _log_tail(self.config)
                self.stop()
                raise EsServerError(f"Elasticsearch did not start at {self.url}: {exc}\n{tail}") from exc
        return self

    def stop(self) -> None:
        if self._executor is not None:
            try:
                self._executor.stop()
            except Exception:  # already gone or stuck: make sure it is dead
                log.debug("Elasticsearch did not stop cleanly; killing it", exc_info=True)
                self._executor.kill()
            self._executor = None
        if self._own_data:
            shutil.rmtree(self.config.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalElasticsearch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- daemon: newswire es start|stop|status ------------------------------------------------


def _state_path() -> Path:
    return _cache_dir() / STATE_FILE


def _read_state() -> dict[str, Any] | None:
    path = _state_path()
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except ValueError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status() -> dict[str, Any]:
    """``{"running": bool, "pid", "port", "url", "version", "health"}`` of the daemon."""
    state = _read_state()
    if not state:
        return {"running": False}
    running = _alive(int(state["pid"]))
    info = {**state, "running": running}
    if running:
        info["health"] = (health(state["url"]) or {}).get("status")
    return info


def _last_port_path() -> Path:
    return _cache_dir() / LAST_PORT_FILE


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` and it can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(requested: int | None = None) -> int:
    """The HTTP port for :func:`start`: ``requested``, else the last port used while it is free,
    else a free one."""
    if requested:
        return requested
    try:
        last = int(_last_port_path().read_text().strip())
    except (OSError, ValueError):
        last = 0
    if 0 < last < 65536 and port_is_free(last):
        return last
    return free_port()


def start(
    port: int | None = None,
    version: str = ELASTICSEARCH_VERSION,
    timeout: float = 180.0,
    on_wait: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Start the local server as a daemon (or return the running one's state).

    Data persists in ``<runtime root>/data-<version>-<hash of the cache dir>``. Returns the state dict
    (``pid``, ``port``, ``url``, ``home``, ``data_dir``, ``version``).
    """
    current = status()
    if current.get("running"):
        return current
    home = ensure_distribution(version)
    tag = hashlib.sha256(str(_cache_dir().resolve()).encode()).hexdigest()[:8]  # one daemon per cache dir
    data_dir = runtime_root() / f"data-{version}-{tag}"
    config = ServerConfig(home=home, data_dir=data_dir, port=pick_port(port), transport_port=free_port())
    config.prepare()
    with open(data_dir / "console.log", "w") as console:  # the child keeps its own fd
        proc = subprocess.Popen(
            config.command(),
            cwd=str(home),
            env=config.env(),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **config.popen_kwargs(),
        )
    state = {
        "pid": proc.pid,
        "port": config.port,
        "url": config.url,
        "home": str(home),
        "data_dir": str(data_dir),
        "version": version,
    }
    began = time.monotonic()
    deadline = began + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EsServerError(f"Elasticsearch exited with {proc.returncode}:\n{_log_tail(config)}")
        info = health(config.url)
        if info and info.get("status") in ("yellow", "green"):
            _state_path().write_text(json.dumps(state, indent=2))
            _last_port_path().write_text(f"{config.port}\n")
            return {**state, "running": True, "health": info["status"]}
        if on_wait is not None:
            on_wait(time.monotonic() - began)
        time.sleep(0.5)
    _kill_group(proc.pid)
    raise EsServerError(f"Elasticsearch did not become yellow within {timeout:.0f}s:\n{_log_tail(config)}")


def _kill_group(pid: int, timeout: float = 30.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        with suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def stop() -> bool:
    """Stop the daemon recorded in the state file. Returns False when none was running."""
    state = _read_state()
    if not state:
        return False
    running = _alive(int(state["pid"]))
    if running:
        _kill_group(int(state["pid"]))
    _state_path().unlink(missing_ok=True)
    return running


def url() -> str | None:
    """The running daemon's URL, or None."""
    info = status()
    return str(info["url"]) if info.get("running") else None
