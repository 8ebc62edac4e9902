"""A worked example: testing an OpenInt client against Patchbay's sandbox.

Run with `python3 -m pytest examples/python` (PATCHBAY_BIN names the binary).
The `sandbox` fixture (patchbay_sandbox.py) gives every test the server reset
to the seed below: no fault rules, an empty journal, the clock at real time.
"""

import datetime as dt
import importlib
import json

import pytest

try:
    import openint
except ImportError:  # only the SDK test needs it
    openint = None

needs_openint = pytest.mark.skipif(
    openint is None,
    reason="the OpenInt Python SDK is not importable (pip install openint==2.8.0, or put it on PYTHONPATH)",
)

ORG_KEY = "key_org_a"
CCFG = "ccfg_github_01JA"
CONN = "conn_github_01JEXAMPLE00000000000000A"

# One organisation with an API key, a customer, a GitHub connector config and
# one connection of that customer (docs/seed-format.md).
SEED = {
    "integrations": {
        "organizations": [{"id": "org_a", "name": "A", "apiKey": ORG_KEY}],
        "customers": [{"orgId": "org_a", "id": "cus_1"}],
        "connectorConfigs": [
            {
                "id": CCFG,
                "orgId": "org_a",
                "connectorName": "github",
                "config": {"oauth": {"client_id": "cid", "client_secret": "cs"}},
            }
        ],
        "connections": [
            {
                "id": CONN,
                "connectorConfigId": CCFG,
                "customerId": "cus_1",
                "settings": {"oauth": {"credentials": {"access_token": "example-token"}}},
            }
        ],
    }
}


@pytest.fixture(scope="module")
def patchbay_seed():
    """The seed this module's server starts from (and `reset()` returns to)."""
    return SEED


def sdk_target(root: str):
    """The SDK's base URL and the route its `list_connections` calls.

    openint 2.8.0 calls `/connection` under a base URL ending in `/v1`;
    2.9.0 (which added `assign_connection`) calls `/v2/connection` from the root.
    """
    if hasattr(openint.Openint, "assign_connection"):
        return root, "/v2/connection"
    return root + "/v1", "/v1/connection"


@needs_openint
def test_sdk_retries_through_two_rate_limits(sandbox, monkeypatch):
    base_url, route = sdk_target(sandbox.url)

    # The first two listings answer 429 (OpenInt's error body, Retry-After: 0).
    rule = sandbox.add_fault(
        {
            "direction": "inbound",
            "match": {"face": "integrations", "method": "GET", "route": route},
            "effect": {"type": "status", "status": 429, "retry_after": 0},
            "first": 2,
        }
    )
    assert rule["id"]

    # The SDK retries 408/409/429/5xx. It waits what Retry-After says only when
    # that is between 0 and 60 s exclusive, so Retry-After: 0 falls back to its
    # backoff: 0.5 s then 1 s (less up to 25% jitter). Shrink the backoff to
    # keep the test fast (a private constant of the SDK; leave it out and the
    # test just takes ~1.5 s longer).
    base_client = importlib.import_module("openint._base_client")
    if hasattr(base_client, "INITIAL_RETRY_DELAY"):
        monkeypatch.setattr(base_client, "INITIAL_RETRY_DELAY", 0.01)

    with openint.Openint(token=ORG_KEY, base_url=base_url, max_retries=2) as client:
        page = client.list_connections()
    assert [c.id for c in page.items] == [CONN]

    # Three requests reached Patchbay: two faulted, the third handled.
    sandbox.verify({"face": "integrations", "route": route, "method": "GET"}, count=3)
    entries = sandbox.journal(face="integrations", route=route)
    assert [e["status"] for e in entries] == [429, 429, 200]
    assert [e["fault"] for e in entries] == [rule["id"], rule["id"], None]

    # The rule matched all three and fired on the first two.
    (state,) = [f for f in sandbox.faults() if f["id"] == rule["id"]]
    assert (state["matched"], state["hits"]) == (3, 2)


def test_clock_moves_only_when_told(sandbox):
    # Frozen at a known instant...
    sandbox.freeze(at="2027-01-01T00:00:00Z")
    start = sandbox.clock()
    assert start["frozen"] is True
    assert start["now_ms"] == int(dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)

    # ...then moved by exactly two hours (token expiry, job schedules and
    # timestamps in bodies all read this clock).
    sandbox.advance("2h")
    later = sandbox.clock()
    assert later["now_ms"] - start["now_ms"] == 7_200_000
    assert later["frozen"] is True


def test_snapshot_restore_puts_the_state_back(sandbox):
    def list_connections() -> bytes:
        r = sandbox.http("GET", "/v1/connection", bearer=ORG_KEY)
        assert r.status == 200, r.text
        return r.body

    before = list_connections()
    sandbox.snapshot("before-extra")

    # Add a customer and a connection of theirs (an explicit seed upserts; the
    # connector config it names is already stored).
    sandbox.seed(
        {
            "integrations": {
                "customers": [{"orgId": "org_a", "id": "cus_2"}],
                "connections": [
                    {
                        "id": "conn_github_01JEXAMPLE00000000000000B",
                        "connectorConfigId": CCFG,
                        "customerId": "cus_2",
                        "settings": {"oauth": {"credentials": {"access_token": "second-token"}}},
                    }
                ],
            }
        }
    )
    during = json.loads(list_connections())
    assert sorted(c["id"] for c in during["items"]) == [CONN, "conn_github_01JEXAMPLE00000000000000B"]

    sandbox.restore("before-extra")
    assert list_connections() == before  # byte for byte

    # Snapshots are listed by name (as objects with "name", or bare names).
    names = [s["name"] if isinstance(s, dict) else s for s in sandbox.snapshots()]
    assert "before-extra" in names
    sandbox.delete_snapshot("before-extra")
