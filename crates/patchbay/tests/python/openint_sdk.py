"""Drives Patchbay with the official OpenInt Python SDK (PyPI `openint`, 2.8.0 or
2.9.0, whichever is importable) with strict response validation on: every public
method of the SDK's client is called at least once, and the script fails when
the SDK grows a method it does not call.

2.8.0 calls `/v1/...` paths relative to its base URL (`<root>/v1`); 2.9.0 calls
`/v1/...` and `/v2/...` from the server root.

Usage: python3 openint_sdk.py <server root URL> <organisation API key> <connection id>
                              <github connector config id> <admin token>
Exits non-zero (with a traceback) on the first failed expectation.
"""

import sys

import openint

CLIENT_PLUMBING = {"copy", "with_options", "qs", "auth_headers", "default_headers", "with_raw_response",
                   "with_streaming_response"}


def sdk_methods() -> set:
    return {n for n, v in vars(openint.Openint).items()
            if not n.startswith("_") and n not in CLIENT_PLUMBING and callable(v)}


class Calls:
    """Calls SDK methods by name and remembers which were called."""

    def __init__(self, client):
        self.client = client
        self.called = set()

    def __call__(self, name, *args, **kwargs):
        self.called.add(name)
        return getattr(self.client, name)(*args, **kwargs)


def expect_error(kind, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except kind as e:
        return e
    raise AssertionError(f"expected {kind.__name__}")


def main() -> None:
    root, org_key, conn_id, ccfg_id, admin_token = sys.argv[1:6]
    v2 = hasattr(openint.Openint, "assign_connection")
    base = root if v2 else root + "/v1"

    def client_for(token):
        return openint.Openint(token=token, base_url=base, max_retries=0, _strict_response_validation=True)

    call = Calls(client_for(org_key))

    # the caller
    me = call("get_current_user")
    assert me.role == "org" and me.model_dump().get("orgId") == "org_a", me

    # the catalogue: upstream's 171 connectors
    page = call("list_connectors", limit=200)
    assert page.total == 171 and len(page.items) == 171, (page.total, len(page.items))
    names = [c.name for c in page.items]
    for n in ("accelo", "google-sheet", "sharepoint", "github", "google-mail"):
        assert n in names, n
    if v2:
        one = call("list_connectors", connector_name="github", expand=["schemas"])
        assert [c.name for c in one.items] == ["github"], one
        assert one.items[0].schemas.connection_settings is not None, one.items[0]

    # connector configs: listed (both operation names), read, created, updated, deleted
    configs = call("list_connnector_configs", connector_names=["github"], expand=["connector"])
    assert [c.id for c in configs.items] == [ccfg_id], configs
    gh = configs.items[0]
    assert type(gh).__name__ == "ConnectorGitHubDiscriminatedConnectorConfig", type(gh).__name__
    assert gh.config.oauth.client_id == "cid", gh
    same = call("list_connection_configs", limit=1)
    assert same.total >= 1 and len(same.items) == 1, same
    got = call("get_conector_config", ccfg_id, expand=["connection_count"])
    assert got.id == ccfg_id and got.connection_count == 1, got
    created_cfg = call("create_connnector_config", connector_name="google-sheet",
                       config={"oauth": {"client_id": "sheet-client", "client_secret": "sheet-secret"}},
                       display_name="Sheets", metadata={"team": "sdk"})
    assert created_cfg.id.startswith("ccfg_google-sheet_"), created_cfg
    assert created_cfg.connector_name == "google-sheet", created_cfg
    updated = call("upsert_connnector_config", created_cfg.id, display_name="Sheets 2", disabled=True)
    assert updated.display_name == "Sheets 2" and updated.disabled is True, updated
    assert updated.config.oauth.client_id == "sheet-client", updated
    if v2:
        bare = call("create_connnector_config", connector_name="accelo")
        assert bare.connector_name == "accelo" and bare.config is not None, bare
        gone = call("delete_connector_config", bare.id)
        assert gone.id == bare.id, gone
        expect_error(openint.NotFoundError, call.client.get_conector_config, bare.id)

    # connections: get with secrets, list with filters, import, check, delete
    conn = call("get_connection", conn_id, include_secrets=True, expand=["connector"], refresh_policy="none")
    assert conn.id == conn_id and conn.connector_name == "github" and conn.customer_id == "cus_1", conn
    assert conn.settings.oauth.credentials.access_token == "sdk-token", conn.settings
    listed = call("list_connections", connector_names=["github"], customer_id="cus_1", include_secrets=True, limit=2)
    assert listed.total == 1 and listed.items[0].id == conn_id, listed
    imported = call("create_connection", connector_config_id=ccfg_id, customer_id="cus_sdk",
                    data={"connector_name": "github",
                          "settings": {"oauth": {"credentials": {"access_token": "from-sdk"}}}},
                    metadata={"via": "python-sdk"}, check_connection=False)
    assert imported.id.startswith("conn_github_") and imported.customer_id == "cus_sdk", imported
    checked = call("check_connection", imported.id)
    assert checked.id == imported.id and checked.status in ("healthy", "disconnected", "error"), checked

    if v2:
        # repl assignments, and the filters they feed
        a = call("assign_connection", "repl_sdk", id=imported.id)
        assert a.id == imported.id and a.assignments == ["repl_sdk"], a
        a = call("list_assignments", imported.id)
        assert a.assignments == ["repl_sdk"], a
        only = call("list_connections", repl_id="repl_sdk")
        assert [c.id for c in only.items] == [imported.id], only
        picked = call("list_connections", connection_ids=[conn_id])
        assert [c.id for c in picked.items] == [conn_id], picked
        a = call("delete_assignment", "repl_sdk", id=imported.id)
        assert a.assignments == [], a
        assert call("list_connections", repl_id="repl_sdk").total == 0
        expect_error(openint.NotFoundError, call.client.delete_assignment, "repl_sdk", id=imported.id)

    deleted = call("delete_connection", imported.id)
    assert deleted.id == imported.id, deleted
    err = expect_error(openint.NotFoundError, call.client.get_connection, imported.id)
    assert err.body["code"] == "NOT_FOUND", err.body

    # customers, their tokens, and what a customer sees
    cus = call("upsert_customer", id="cus_new", metadata={"plan": "pro"})
    assert cus.id == "cus_new", cus
    customers = call("list_customers", search_query="cus_1")
    assert [c.id for c in customers.items] == ["cus_1"], customers
    token = call("create_token", "cus_1", validity_in_seconds=600,
                 connect_options={"connector_names": ["github"], "return_url": "https://app.example/back"})
    assert token.token.count(".") == 2, token
    as_customer = client_for(token.token)
    mine = as_customer.list_connnector_configs()
    gh = next(c for c in mine.items if c.id == ccfg_id)
    assert type(gh).__name__ == "ConnectorGitHubDiscriminatedConnectorConfig", type(gh).__name__
    assert gh.config.oauth.client_id == "cid" and gh.config.oauth.client_secret is None, gh.config
    assert gh.created_at and gh.updated_at, gh
    assert [c.id for c in as_customer.list_connections().items] == [conn_id]

    # events
    events = call("list_events", limit=50)
    assert any(e.name == "connect.connection-connected" for e in events.items), [e.name for e in events.items]

    if not v2:
        t = call("get_message_template", customer_id="cus_1", language="javascript")
        assert t.language == "javascript" and "cus_1" in t.template, t

    if v2:
        org = call("upsert_organization", "org_a")
        assert org.id == "org_a" and org.created is False, org
        expect_error(openint.PermissionDeniedError, call.client.upsert_organization, "org_other")
        admin = client_for(admin_token)
        fresh = admin.upsert_organization("org_sdk_new")
        assert fresh.id == "org_sdk_new" and fresh.created is True, fresh
        again = admin.upsert_organization("org_sdk_new")
        assert again.created is False, again

    # errors map to the SDK's exception types, in OpenInt's {code, message} shape
    err = expect_error(openint.AuthenticationError, client_for("key_wrong").list_connections)
    assert err.body["code"] == "UNAUTHORIZED", err.body
    err = expect_error(openint.BadRequestError, call.client.list_connections, connector_names=["not-a-connector"])
    assert err.body["code"] == "BAD_REQUEST", err.body

    missing = sdk_methods() - call.called
    assert not missing, f"SDK methods not called: {sorted(missing)}"
    print(f"python sdk {openint.__version__}: {len(call.called)} methods passed strictly, 0 failed")


if __name__ == "__main__":
    main()
