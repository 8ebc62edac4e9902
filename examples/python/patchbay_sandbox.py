"""Run Patchbay in sandbox mode from Python tests.

Copy this file next to your tests. It needs only the standard library (pytest
is used when present, for the fixtures at the bottom).

Plain use::

    from patchbay_sandbox import Patchbay

    with Patchbay(seed={"integrations": {...}}) as pb:
        pb.add_fault({"match": {"face": "integrations", "route": "/v1/connection"},
                      "effect": {"type": "status", "status": 503}, "first": 1})
        ...                              # point your client at pb.url
        pb.verify({"face": "integrations", "route": "/v1/connection"}, count=2)

With pytest, in ``conftest.py``::

    pytest_plugins = ["patchbay_sandbox"]

and in a test module::

    @pytest.fixture(scope="module")
    def patchbay_seed():
        return {"integrations": {...}}   # or a path to a seed JSON file

    def test_something(sandbox):         # the server, reset to the seed
        ...

The binary is ``$PATCHBAY_BIN``, else ``patchbay`` on ``PATH``. Every control
of the sandbox admin API (docs/sandbox.md) has a method; ``http()`` sends any
other request (to a face, with the caller's own credentials).
"""

from __future__ import annotations

import atexit
import collections
import datetime as _dt
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterable, Mapping, Optional, Union

__all__ = [
    "Patchbay",
    "PatchbayError",
    "PatchbayNotFound",
    "PatchbayStartError",
    "Response",
    "find_patchbay",
]

# The line `patchbay serve` prints on stdout once it accepts connections.
_READY = re.compile(r"patchbay listening on (https?://\S+)")

SeedLike = Union[None, str, os.PathLike, Mapping[str, Any]]


class PatchbayNotFound(FileNotFoundError):
    """No Patchbay binary: set PATCHBAY_BIN or put `patchbay` on PATH."""


class PatchbayStartError(RuntimeError):
    """The server exited, or did not announce itself in time, during start-up."""


class PatchbayError(RuntimeError):
    """An admin call answered an unexpected status."""

    def __init__(self, method: str, path: str, status: int, body: Any):
        self.method, self.path, self.status, self.body = method, path, status, body
        shown = json.dumps(body, indent=2) if not isinstance(body, str) else body
        super().__init__(f"{method} {path} answered {status}:\n{shown}")


class Response:
    """An HTTP answer: ``status``, ``headers`` (case-insensitive), raw ``body`` bytes."""

    def __init__(self, status: int, headers: Any, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.text[:200]!r}>"


def find_patchbay(bin: Optional[str] = None) -> str:
    """The Patchbay binary: ``bin``, else ``$PATCHBAY_BIN``, else ``patchbay`` on PATH."""
    candidate = bin or os.environ.get("PATCHBAY_BIN")
    if candidate:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
        found = shutil.which(candidate)  # a bare name given in PATCHBAY_BIN
        if found:
            return found
        raise PatchbayNotFound(f"PATCHBAY_BIN={candidate!r} is not an executable file")
    found = shutil.which("patchbay")
    if not found:
        raise PatchbayNotFound(
            "no patchbay binary: set PATCHBAY_BIN=/path/to/patchbay or put `patchbay` on PATH"
        )
    return found


def _rfc3339(value: Union[str, _dt.datetime]) -> str:
    """A datetime as RFC 3339 (naive datetimes are taken as UTC); strings pass through."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.isoformat().replace("+00:00", "Z")
    return value


def _items(body: Any) -> list:
    """A list answer, whether the server sends a bare array or wraps it in an object
    with one array field (e.g. ``{"faults": [...]}``)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        lists = [v for v in body.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    raise ValueError(f"expected a list, got {body!r}")


class Patchbay:
    """One ``patchbay serve --sandbox`` process on a fresh SQLite database.

    The server starts in the constructor (use it as a context manager, or call
    ``stop()``). It listens on a free port of 127.0.0.1 (``url``) and works in a
    temporary directory (``dir``: database, key file, data files, ``stderr.log``)
    that ``stop()`` removes.

    ``seed``: a seed document (dict) or the path of one, applied at start-up and
    again by ``reset()``. ``env``: extra environment variables for the server.
    Inherited ``PATCHBAY_*`` variables are not passed on (so a developer's own
    settings cannot change the tests); give any you want in ``env``.
    """

    def __init__(
        self,
        seed: SeedLike = None,
        *,
        bin: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        args: Iterable[str] = (),
        startup_timeout: float = 60.0,
        request_timeout: float = 30.0,
    ):
        self.bin = find_patchbay(bin)
        self.admin_token = secrets.token_urlsafe(24)
        self.request_timeout = request_timeout
        self.url: str = ""
        self.dir = tempfile.mkdtemp(prefix="patchbay-sandbox-")
        self._proc: Optional[subprocess.Popen] = None
        self._stdout_tail: collections.deque = collections.deque(maxlen=200)
        # Requests go straight to the server, whatever HTTP(S)_PROXY says.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            seed_file = self._seed_file(seed)
            self._start(seed_file, env or {}, list(args), startup_timeout)
        except BaseException:
            self.stop()
            raise

    # ------------------------------------------------------------ lifecycle --

    def _seed_file(self, seed: SeedLike) -> Optional[str]:
        if seed is None:
            return None
        if isinstance(seed, Mapping):
            path = os.path.join(self.dir, "seed.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(seed, f, indent=2)
            return path
        return os.path.abspath(os.fspath(seed))

    def _start(self, seed_file: Optional[str], extra_env: Mapping[str, str], args: list, timeout: float) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBAY_")}
        env.update(
            PATCHBAY_ADMIN_TOKEN=self.admin_token,
            # No PATCHBAY_MASTER_KEYS: with SQLite the server makes a key file
            # beside the database (patchbay.db.key), in our temporary directory.
            PATCHBAY_DATA_DIR=self.dir,
            # Let Patchbay call servers the test runs on 127.0.0.1 (OAuth token
            # endpoints, webhooks, partners).
            PATCHBAY_OUTBOUND__ALLOW_LOOPBACK="true",
            # Background jobs look for work every 20 ms instead of 250 ms.
            PATCHBAY_JOBS__POLL_INTERVAL_MS="20",
        )
        env.update(extra_env)
        argv = [
            self.bin, "serve", "--sandbox",
            "--listen", "127.0.0.1:0",  # any free port; the banner names it
            "--database-url", "sqlite://" + os.path.join(self.dir, "patchbay.db"),
        ]
        if seed_file:
            argv += ["--seed", seed_file]
        argv += args
        self._stderr = open(os.path.join(self.dir, "stderr.log"), "wb")  # logs go to stderr
        self._proc = subprocess.Popen(
            argv,
            cwd=self.dir,  # so no ./patchbay.toml of the caller's is picked up
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        atexit.register(self.stop)

        # A thread reads stdout for as long as the server runs: it hands lines to
        # us until the banner, and keeps draining after it so the pipe never fills.
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def pump(stream) -> None:
            for line in stream:
                self._stdout_tail.append(line)
                lines.put(line)
            lines.put(None)  # EOF: the server exited

        self._pump = threading.Thread(target=pump, args=(self._proc.stdout,), daemon=True)
        self._pump.start()

        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PatchbayStartError(self._startup_report(f"no banner within {timeout:.0f} s"))
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self._proc.wait()
                raise PatchbayStartError(self._startup_report(f"exited with status {code} during start-up"))
            m = _READY.search(line)
            if m:
                self.url = m.group(1).rstrip("/")
                return

    def _startup_report(self, what: str) -> str:
        return (
            f"patchbay {what}\n"
            f"command: {' '.join(self._proc.args) if self._proc else self.bin}\n"
            f"--- stdout ---\n{''.join(self._stdout_tail)}"
            f"--- stderr (last 8 kB) ---\n{self.server_log()[-8192:]}"
        )

    def server_log(self) -> str:
        """What the server wrote to stderr so far (its log)."""
        try:
            with open(os.path.join(self.dir, "stderr.log"), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, up to 10 s for a graceful exit, then SIGKILL; removes ``dir``.
        Safe to call more than once."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stdout:
            proc.stdout.close()
        if getattr(self, "_stderr", None):
            self._stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> "Patchbay":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Patchbay {self.url or '(not started)'}>"

    # ---------------------------------------------------------------- HTTP --

    def http(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        bearer: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        query: Optional[Mapping[str, Any]] = None,
    ) -> Response:
        """Any request to the server; never raises for an HTTP status.

        ``bearer`` sets ``Authorization: Bearer ...`` (an API key, a user token,
        or ``self.admin_token``)."""
        url = self.url + path
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(
                {k: str(v).lower() if isinstance(v, bool) else v for k, v in query.items() if v is not None}
            )
        data = None
        hdrs = {"Accept": "application/json"}
        if json_body is not None:
            data = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        if bearer:
            hdrs["Authorization"] = f"Bearer {bearer}"
        hdrs.update(headers or {})
        req = urllib.request.Request(url, data=data, headers=hdrs, method=method.upper())
        try:
            with self._opener.open(req, timeout=self.request_timeout) as r:
                return Response(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:  # a non-2xx answer is still an answer
            try:
                return Response(e.code, e.headers, e.read())
            finally:
                e.close()

    def admin(self, method: str, path: str, body: Any = None, *, query: Optional[Mapping[str, Any]] = None) -> Any:
        """An admin API call with the admin token: the decoded JSON answer (None
        for 204); raises PatchbayError for any non-2xx status."""
        r = self.http(method, path, json_body=body, bearer=self.admin_token, query=query)
        if not 200 <= r.status < 300:
            try:
                detail = r.json()
            except ValueError:
                detail = r.text
            raise PatchbayError(method, path, r.status, detail)
        return r.json()

    def _sandbox(self, method: str, tail: str, body: Any = None, **kw) -> Any:
        return self.admin(method, "/admin/v1/sandbox" + tail, body, **kw)

    # --------------------------------------------------------------- status --

    def status(self) -> dict:
        """``GET /admin/v1/sandbox``."""
        return self._sandbox("GET", "")

    # ---------------------------------------------------------------- clock --

    def clock(self) -> dict:
        """``{"now", "now_ms", "frozen", "offset_ms"}``."""
        return self._sandbox("GET", "/clock")

    def advance(self, by: Union[str, int, _dt.timedelta]) -> Any:
        """Moves the clock forward: ``"2h"``/``"30s"``, milliseconds (int) or a timedelta."""
        if isinstance(by, _dt.timedelta):
            by = round(by.total_seconds() * 1000)
        body = {"by_ms": by} if isinstance(by, int) else {"by": by}
        return self._sandbox("POST", "/clock/advance", body)

    def set_clock(self, to: Union[str, _dt.datetime]) -> Any:
        """Sets the clock to an instant (RFC 3339 string or datetime)."""
        return self._sandbox("POST", "/clock/set", {"to": _rfc3339(to)})

    def freeze(self, at: Union[None, str, _dt.datetime] = None) -> Any:
        """Stops the clock, at now or at ``at``."""
        return self._sandbox("POST", "/clock/freeze", {} if at is None else {"at": _rfc3339(at)})

    def resume(self) -> Any:
        """Lets a frozen clock run on from where it stands."""
        return self._sandbox("POST", "/clock/resume", {})

    # ----------------------------------------------------- deterministic ids --

    def deterministic(self, seed: int) -> Any:
        """Draws ids, tokens and keys from a generator seeded with ``seed``
        (setting it again restarts the sequence)."""
        return self._sandbox("PUT", "/deterministic", {"seed": seed})

    def deterministic_off(self) -> Any:
        return self._sandbox("DELETE", "/deterministic")

    # --------------------------------------------------------------- faults --

    def add_fault(self, rule: Mapping[str, Any]) -> dict:
        """Adds a fault rule (docs/sandbox.md, "Fault rules"); returns it with its ``id``."""
        return self._sandbox("POST", "/faults", dict(rule))

    def faults(self) -> list:
        """The rules, in creation order, each with ``matched`` and ``hits``."""
        return _items(self._sandbox("GET", "/faults"))

    def fault(self, id: str) -> dict:
        return self._sandbox("GET", "/faults/" + urllib.parse.quote(str(id), safe=""))

    def delete_fault(self, id: str) -> None:
        self._sandbox("DELETE", "/faults/" + urllib.parse.quote(str(id), safe=""))

    def clear_faults(self) -> None:
        self._sandbox("DELETE", "/faults")

    # -------------------------------------------------------------- journal --

    def journal(self, **filters: Any) -> list:
        """Journal entries, oldest first. Filters: ``direction``, ``face``,
        ``method``, ``route``, ``path`` (glob), ``status``, ``principal``,
        ``tenant``, ``call``, ``since``/``until`` (RFC 3339 or datetime),
        ``limit`` (the newest N)."""
        query = {k: _rfc3339(v) if isinstance(v, _dt.datetime) else v for k, v in filters.items()}
        return _items(self._sandbox("GET", "/journal", query=query))

    def verify(
        self,
        match: Mapping[str, Any],
        count: Optional[int] = None,
        at_least: Optional[int] = None,
        at_most: Optional[int] = None,
    ) -> dict:
        """Asserts how many journal entries match; returns ``{"matched": n}``.

        Raises AssertionError (with the server's explanation and the matching
        entries it saw) when the expectation does not hold."""
        body: dict = {"match": dict(match)}
        for key, value in (("count", count), ("at_least", at_least), ("at_most", at_most)):
            if value is not None:
                body[key] = value
        r = self.http("POST", "/admin/v1/sandbox/journal/verify", json_body=body, bearer=self.admin_token)
        if r.status == 409:
            try:
                detail = json.dumps(r.json(), indent=2)
            except ValueError:
                detail = r.text
            raise AssertionError(f"journal verify failed for {json.dumps(body)}:\n{detail}")
        if r.status != 200:
            raise PatchbayError("POST", "/admin/v1/sandbox/journal/verify", r.status, r.text)
        return r.json()

    def clear_journal(self) -> None:
        self._sandbox("DELETE", "/journal")

    # -------------------------------------------------- reset and snapshots --

    def reset(self, to: str = "seed") -> Any:
        """Back to the start-up seed (``to="seed"``) or an empty database
        (``"empty"``); also clears the journal and fault rules and puts the
        clock back to real time."""
        return self._sandbox("POST", "/reset", {"to": to})

    def snapshot(self, name: str) -> Any:
        """Saves every table under ``name`` (replacing a snapshot of that name)."""
        return self._sandbox("POST", "/snapshots", {"name": name})

    def restore(self, name: str) -> Any:
        return self._sandbox("POST", f"/snapshots/{urllib.parse.quote(name, safe='')}/restore", {})

    def snapshots(self) -> list:
        return _items(self._sandbox("GET", "/snapshots"))

    def delete_snapshot(self, name: str) -> None:
        self._sandbox("DELETE", "/snapshots/" + urllib.parse.quote(name, safe=""))

    # ----------------------------------------------------------------- seed --

    def seed(self, doc: Mapping[str, Any]) -> Any:
        """Upserts a seed document now (``POST /admin/v1/seed``). It does not
        change what ``reset()`` goes back to: that is the start-up seed."""
        return self.admin("POST", "/admin/v1/seed", dict(doc))


# ------------------------------------------------------------- pytest part --
#
# `pytest_plugins = ["patchbay_sandbox"]` in a conftest.py registers these.
# One server runs per distinct seed for the whole session (started on first
# use, stopped at the end), so test modules with different seeds each get
# theirs and modules sharing a seed share one process.

try:
    import pytest
except ImportError:  # the Patchbay class works without pytest
    pytest = None

if pytest is not None:

    class _Servers:
        """The session's servers, one per seed."""

        def __init__(self) -> None:
            self._by_seed: dict = {}

        @staticmethod
        def _key(seed: SeedLike) -> str:
            if seed is None:
                return "none"
            if isinstance(seed, Mapping):
                return "doc:" + json.dumps(seed, sort_keys=True)
            return "file:" + os.path.abspath(os.fspath(seed))

        def get(self, seed: SeedLike) -> Patchbay:
            key = self._key(seed)
            got = self._by_seed.get(key)
            if got is None:
                try:
                    got = Patchbay(seed)
                except PatchbayNotFound as e:
                    got = e
                except PatchbayStartError as e:
                    got = e  # remembered, so later tests fail at once with the same report
                self._by_seed[key] = got
            if isinstance(got, PatchbayNotFound):
                if os.environ.get("CI"):
                    pytest.fail(str(got), pytrace=False)
                pytest.skip(str(got))
            if isinstance(got, PatchbayStartError):
                pytest.fail(str(got), pytrace=False)
            return got

        def stop_all(self) -> None:
            for server in self._by_seed.values():
                if isinstance(server, Patchbay):
                    server.stop()

    @pytest.fixture(scope="session")
    def patchbay_servers():
        """The session-wide pool behind ``patchbay`` (``.get(seed)`` -> Patchbay)."""
        servers = _Servers()
        yield servers
        servers.stop_all()

    @pytest.fixture(scope="session")
    def patchbay_seed():
        """The seed the server starts from: None (an empty database), a dict or a
        path. Override it in a test module or conftest.py (any scope)."""
        return None

    @pytest.fixture
    def patchbay(patchbay_servers, patchbay_seed) -> Patchbay:
        """The running server for ``patchbay_seed``, shared by the whole session
        (its state is whatever earlier tests left: use ``sandbox`` for a clean one).
        Skips when no binary is found (fails instead when ``CI`` is set)."""
        return patchbay_servers.get(patchbay_seed)

    @pytest.fixture
    def sandbox(patchbay) -> Patchbay:
        """The server after ``reset()``: the seeded data, no fault rules, an
        empty journal, the clock at real time."""
        patchbay.reset()
        return patchbay
