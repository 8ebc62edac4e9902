"""Drives Patchbay with the official OpenInt Python SDK (PyPI `openint`, pinned to
2.8.0, the newest release whose connection calls use the /v1 paths).

Usage: python3 openint_sdk.py <base_url ending in /v1> <organisation API key> <connection id>
Exits non-zero (with a traceback) on the first failed expectation.
"""

import sys

import openint


def main() -> None:
    base_url, org_key, conn_id = sys.argv[1], sys.argv[2], sys.argv[3]
    client = openint.Openint(token=org_key, base_url=base_url, max_retries=0)

    # get (with secrets and the connector expanded)
    conn = client.get_connection(conn_id, include_secrets=True, expand=["connector"])
    assert conn.id == conn_id, conn
    assert conn.connector_name == "github", conn
    assert conn.customer_id == "cus_1", conn
    settings = conn.settings if isinstance(conn.settings, dict) else conn.settings.model_dump()
    assert settings["oauth"]["credentials"]["access_token"], settings

    # list (pagination envelope, filters)
    page = client.list_connections(connector_names=["github"], limit=2)
    assert page.total >= 1, page
    assert all(item.connector_name == "github" for item in page.items), page
    assert len(page.items) <= 2

    # create (import an existing connection)
    created = client.create_connection(
        connector_config_id="ccfg_github_01JA",
        customer_id="cus_sdk",
        data={"connector_name": "github", "settings": {"oauth": {"credentials": {"access_token": "from-sdk"}}}},
        metadata={"via": "python-sdk"},
    )
    assert created.id.startswith("conn_github_"), created
    assert created.customer_id == "cus_sdk", created

    # check
    checked = client.check_connection(created.id)
    assert checked.id == created.id, checked
    assert checked.status in ("healthy", "disconnected", "error"), checked

    # delete, then it is gone
    deleted = client.delete_connection(created.id)
    assert deleted.id == created.id, deleted
    try:
        client.get_connection(created.id)
    except openint.NotFoundError:
        pass
    else:
        raise AssertionError("the deleted connection is still there")

    # errors map to the SDK's exception types
    try:
        openint.Openint(token="key_wrong", base_url=base_url, max_retries=0).list_connections()
    except openint.AuthenticationError:
        pass
    else:
        raise AssertionError("a wrong key was accepted")

    print("python sdk: 7 passed, 0 failed")


if __name__ == "__main__":
    main()
