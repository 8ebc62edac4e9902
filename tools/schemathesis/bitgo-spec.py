#!/usr/bin/env python3
"""Copy BitGo's OES network spec with the few rewrites that its own defects need.

    bitgo-spec.py IN.json OUT.json                  # the fixes below; one line per rewrite on stderr
    bitgo-spec.py --restore IN.json OUT.json        # also the restorations (R1-R3 further down)

tools/vendor-specs/bitgo-network-v1.json is BitGo's published document, unchanged. Some of
its schemas cannot be satisfied, or lost what the io-ts codec they were generated from
checks; schemathesis reads them literally. Only these rewrites are made, each to the copy:

 F1. identical-branch oneOf -> anyOf. A `oneOf` whose branches are the same schema once `$ref`s
     are resolved and annotations (title, description, example) dropped can never be matched
     by exactly one branch, so no value is valid. Two cases: `PositiveAllocationAmount`
     (PositiveCurrencyAmount | PositiveBigNumberCurrencyAmount, both {currency: string
     minLength 1, quantity: string}) and `TradeBaseQuoteInbound` ({base: Positive, quote:
     Negative} | {base: Negative, quote: Positive}, where TradeCurrencyPositiveInbound and
     TradeCurrencyNegativeInbound are the same {currency, quantity: string}: the sign was
     lost). The intent is "either".

 F2. catch-all-branch oneOf -> anyOf. A `oneOf` one of whose branches is `{}` matches every
     value of the other branch twice, so those values are invalid. `DisputeClosure.createdAt`
     and `.updatedAt` are `oneOf: [{type: string}, {}]` (a Date the generator wrote as `{}`):
     no timestamp string could be valid.

 F3. `title: uuid` strings -> also `format: uuid`. BitGo's generator writes io-ts-types' `UUID`
     codec as `{type: string, title: "uuid"}` and drops the format; the descriptions say
     "UUIDs", the error examples say "Invalid UUID format for connectionId", and such values
     are rejected with 400. Without the format schemathesis takes "0" for a valid id and every
     id-bearing request stops at that 400 instead of reaching the handler.

 F4. requestBody `required: true` where the body schema has required properties. The generator
     never writes `required` on a requestBody, so OpenAPI 3.0's default (optional) says the
     request may be sent without a body, while the schema says the body must carry those
     fields: BitGo's io-ts routes decode the body against that schema, and a missing body
     (which Express reads as `{}`) lacks them. Bodies whose schema requires nothing (PUT
     /clients/connections/{connectionId}) stay optional.

Nothing else is changed by default: every other schema, status list, parameter and `nullable`
is BitGo's.

With --restore, constraints the spec's text states but its schemas lost are put back too, so
that generated data gets past them and reaches the rest of each handler. These also encode
Patchbay's documented choices where BitGo publishes none (docs/compatibility.md), so they are
for exploring, not the default:

 R1. `pageNumber` ({type: string, format: integer}; zero-based page index): pattern ^[0-9]{1,9}$.
 R2. `pageSize` ({type: string}; no range published; Patchbay: 1-1000): pattern
     ^([1-9][0-9]{0,2}|1000)$.
 R3. `quantity` of the Positive* amount schemas (PositiveBNCurrencyAmount, PositiveCurrencyAmount,
     PositiveBigNumberCurrencyAmount, PositivePartnerCurrencyAmount, TradeCurrencyPositiveInbound;
     "quantity in base units"): pattern ^0*[1-9][0-9]*$; TradeCurrencyNegativeInbound:
     ^-0*[1-9][0-9]*$.
"""
import json
import sys

ANNOTATIONS = {"title", "description", "example", "examples"}
POSITIVE_AMOUNTS = (
    "PositiveBNCurrencyAmount",
    "PositiveCurrencyAmount",
    "PositiveBigNumberCurrencyAmount",
    "PositivePartnerCurrencyAmount",
    "TradeCurrencyPositiveInbound",
)


def main(argv):
    restore = "--restore" in argv
    src, dst = [a for a in argv if a != "--restore"]
    spec = json.load(open(src))
    schemas = spec.get("components", {}).get("schemas", {})

    def deref(node):
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            node = schemas[node["$ref"].rsplit("/", 1)[1]]
        return node

    def resolve(node, seen=()):
        """`node` with local `$ref`s inlined and annotations dropped, for comparison."""
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name in seen:
                    return {"$ref": ref}
                return resolve(schemas[name], seen + (name,))
            return {k: resolve(v, seen) for k, v in node.items() if k not in ANNOTATIONS}
        if isinstance(node, list):
            return [resolve(v, seen) for v in node]
        return node

    rewrites = []
    uuids = 0

    def walk(node, where):
        nonlocal uuids
        if isinstance(node, dict):
            branches = node.get("oneOf")
            if isinstance(branches, list) and len(branches) > 1:
                canon = [json.dumps(resolve(b), sort_keys=True) for b in branches]
                if len(set(canon)) == 1:
                    node["anyOf"] = node.pop("oneOf")
                    rewrites.append(f"F1 oneOf -> anyOf (identical branches): {where}")
                elif "{}" in canon:
                    node["anyOf"] = node.pop("oneOf")
                    rewrites.append(f"F2 oneOf -> anyOf (a branch is {{}}): {where}")
            if node.get("title") == "uuid" and node.get("type") == "string" and "format" not in node:
                node["format"] = "uuid"
                uuids += 1
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(spec, "#")
    rewrites.append(f"F3 format: uuid on the {uuids} `title: uuid` strings")

    for path, item in spec["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody") if isinstance(op, dict) else None
            if not body or body.get("required"):
                continue
            schema = deref(body.get("content", {}).get("application/json", {}).get("schema"))
            if isinstance(schema, dict) and schema.get("required"):
                body["required"] = True
                rewrites.append(f"F4 requestBody required: {method.upper()} {path}")

    if restore:
        count = {"pageNumber": 0, "pageSize": 0}
        patterns = {"pageNumber": "^[0-9]{1,9}$", "pageSize": "^([1-9][0-9]{0,2}|1000)$"}
        for item in spec["paths"].values():
            for op in item.values():
                for param in op.get("parameters", []) if isinstance(op, dict) else []:
                    name = param.get("name")
                    if param.get("in") == "query" and name in patterns and param["schema"].get("type") == "string":
                        param["schema"]["pattern"] = patterns[name]
                        count[name] += 1
        rewrites.append(f"R1 pageNumber pattern {patterns['pageNumber']} on {count['pageNumber']} operations")
        rewrites.append(f"R2 pageSize pattern {patterns['pageSize']} on {count['pageSize']} operations")
        for name in POSITIVE_AMOUNTS:
            schemas[name]["properties"]["quantity"]["pattern"] = "^0*[1-9][0-9]*$"
            rewrites.append(f"R3 quantity pattern ^0*[1-9][0-9]*$: #/components/schemas/{name}")
        schemas["TradeCurrencyNegativeInbound"]["properties"]["quantity"]["pattern"] = "^-0*[1-9][0-9]*$"
        rewrites.append("R3 quantity pattern ^-0*[1-9][0-9]*$: #/components/schemas/TradeCurrencyNegativeInbound")

    json.dump(spec, open(dst, "w"), indent=1)
    for r in rewrites:
        print(f"  {r}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
