#!/usr/bin/env python3
"""Every distinct failure in a schemathesis VCR cassette, with one curl reproduction each.

    bitgo-failures.py CASSETTE.yaml

schemathesis reports one failure per operation, check and status code (ST202 for a 400 on
an operation is one finding however many different rules answered it). This lists each
distinct (operation, check, status, error message) instead; quoted values and UUIDs in
messages are folded so that one rule is one line, and the shortest request that hit it is
shown. Exits 0; bitgo.sh's status is the run's.
"""
import collections
import json
import re
import shlex
import sys
from urllib.parse import urlsplit

import yaml

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def operation(method, uri):
    path = urlsplit(uri).path.replace("/api/network/v1/enterprises/", "/{enterpriseId}/", 1)
    path = re.sub(r"^/\{enterpriseId\}/[^/]+", "", path)
    path = UUID.sub("{id}", path)
    return f"{method} {path}"


def fold(message):
    """The error message with its generated values folded to `…`."""
    try:
        text = json.loads(message).get("error", message)
    except (ValueError, AttributeError):
        text = message
    text = UUID.sub("<uuid>", str(text))
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '"…"', text)
    # Keys of generated maps in messages such as "expectedTransfers.<key> must be ...".
    text = re.sub(r"^(expectedTransfers)\..*? (must .*)$", r"\1.<key> \2", text)
    text = re.sub(r"^(deposits)\[\d+\]", r"\1[n]", text)
    text = re.sub(r"^Currency .* (is not supported by partner)", r"Currency … \1", text)
    return text[:200]


def curl(request):
    parts = ["curl", "-X", request["method"]]
    for name, values in (request.get("headers") or {}).items():
        if name.lower() in ("authorization", "content-type"):
            for value in values:
                parts += ["-H", f"{name}: {value}"]
    body = (request.get("body") or {}).get("string")
    if body is not None:
        parts += ["-d", body]
    parts.append(request["uri"])
    return " ".join(shlex.quote(p) for p in parts)


def size(it):
    """How long a reproduction is: the shortest example of each failure is shown."""
    request = it["request"]
    return len(request["uri"]) + len((request.get("body") or {}).get("string") or "")


def main(path):
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    cassette = yaml.load(open(path), Loader=loader)
    found = collections.OrderedDict()
    for it in cassette.get("http_interactions") or []:
        response = it.get("response")
        if not response:
            continue
        failed = [c for c in it.get("checks") or [] if c["status"] == "FAILURE"]
        if not failed:
            continue
        request = it["request"]
        status = response["status"]["code"]
        body = (response.get("body") or {}).get("string", "")
        for check in failed:
            key = (operation(request["method"], request["uri"]), check["name"], status, fold(body))
            entry = found.setdefault(key, {"count": 0, "example": (it, check)})
            entry["count"] += 1
            if size(it) < size(entry["example"][0]):
                entry["example"] = (it, check)
    print(f"== {len(found)} distinct failures (operation, check, status, message):")
    for (op, check, status, message), entry in sorted(found.items()):
        it, c = entry["example"]
        body = (it["response"].get("body") or {}).get("string", "")
        print(f"\n- {op} | {check} | {status} | {message} | {entry['count']}x")
        if c.get("message"):
            first = str(c["message"]).strip().splitlines()
            print(f"    check: {first[0][:300]}")
        print(f"    {it['phase']['name']} phase, {it['generation']['mode']} data, test case {it['id']}")
        print(f"    -> {status} {body[:300]}")
        print(f"    {curl(it['request'])}")


if __name__ == "__main__":
    main(sys.argv[1])
