//! The ledger operations of the Network document described by BitGo's own spec.
//!
//! The 32 ledger operations (balances, allocations, settlements, disputes, …) take their
//! request bodies, query parameters and response bodies from BitGo's published schemas
//! (`tools/vendor-specs/bitgo-network-v1.json`, embedded), so the document says exactly
//! what the spec says — with the spec's own defects mended for an OpenAPI 3.1 reader and
//! Patchbay's stricter rules stated where the spec's schemas dropped them:
//!
//! - OpenAPI 3.0's `nullable` becomes a `null` type; `oneOf` becomes `anyOf` (the spec's
//!   `PositiveAllocationAmount` and the trade amounts are `oneOf`s of identical schemas,
//!   which no value satisfies exactly once);
//! - strings titled `uuid` get `format: uuid`;
//! - `pageNumber` and `pageSize` get the patterns Patchbay enforces; positive quantities
//!   the digits-only pattern; request bodies with required fields are required.
//!
//! BitGo's schemas are added under `BitGo`-prefixed names. The hand-written operations
//! (connections, partners, clients, supported currencies) keep their own schemas.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

const SPEC: &str = include_str!("../../../../tools/vendor-specs/bitgo-network-v1.json");
const PREFIX: &str = "BitGo";

/// Operations described by hand (seed pages 000/001 and their neighbours).
const OWN: &[&str] = &[
    "v1ClientsPostRoute",
    "v1ClientConnectionsGetRoute",
    "v1ClientConnectionsPostRoute",
    "v1ClientConnectionGetRoute",
    "v1ClientConnectionPutRoute",
    "V1ClientConnectionsSigningGetRoute",
    "V1ClientConnectionsSigningPostRoute",
    "v1PartnersGetRoute",
    "v1PartnersPostRoute",
    "v1PartnerConnectionsGetRoute",
    "v1PartnerConnectionGetRoute",
    "v1EnterpriseSupportedCurrenciesRoute",
];

/// Schemas of amounts that must be positive: their `quantity` is digits, not all zeros.
const POSITIVE: &[&str] = &[
    "PositiveBNCurrencyAmount",
    "PositivePartnerCurrencyAmount",
    "PositiveCurrencyAmount",
    "PositiveBigNumberCurrencyAmount",
];

fn spec() -> &'static Value {
    static SPEC_VALUE: OnceLock<Value> = OnceLock::new();
    SPEC_VALUE.get_or_init(|| {
        let mut v: Value = serde_json::from_str(SPEC).expect("the embedded BitGo spec is JSON");
        let schemas = &mut v["components"]["schemas"];
        for name in POSITIVE {
            if let Some(q) = schemas[name]["properties"].get_mut("quantity") {
                q["pattern"] = json!("^0*[1-9][0-9]{0,37}$");
            }
        }
        // Patchbay's rules where the schemas are silent (docs/compatibility.md): currencies
        // are non-empty; settlement amounts name connections, at least one, each with at
        // least one currency and signed non-zero amounts; expected transfers likewise.
        let signed = json!({"type": "string", "pattern": "^-?0*[1-9][0-9]{0,37}$"});
        schemas["BNSupportedCurrency"]["minLength"] = json!(1);
        for name in ["UnmappedPartySettlementAmountsRecord", "PartySettlementAmountsRecord"] {
            let m = &mut schemas[name];
            m["minProperties"] = json!(1);
            m["propertyNames"] = json!({"format": "uuid"});
            m["additionalProperties"]["minProperties"] = json!(1);
            m["additionalProperties"]["additionalProperties"] = signed.clone();
        }
        let m = &mut schemas["UnmappedCounterpartyPartySettlementAmountsRecord"];
        m["minProperties"] = json!(1);
        m["propertyNames"] = json!({"format": "uuid"});
        m["additionalProperties"]["minProperties"] = json!(1);
        m["additionalProperties"]["propertyNames"] = json!({"format": "uuid"});
        m["additionalProperties"]["additionalProperties"]["minProperties"] = json!(1);
        m["additionalProperties"]["additionalProperties"]["additionalProperties"] = signed.clone();
        schemas["ExpectedTransfersRequest"]["additionalProperties"] = signed.clone();
        mend(&mut v);
        v
    })
}

/// The 3.0 → 3.1 and defect repairs, and `$ref`s renamed to the prefixed schemas.
fn mend(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                *r = format!("#/components/schemas/{PREFIX}{name}");
            }
            if let Some(branches) = m.remove("oneOf") {
                m.insert("anyOf".into(), branches);
            }
            if m.remove("nullable") == Some(Value::Bool(true)) {
                match m.get("type").cloned() {
                    Some(Value::String(t)) => {
                        m.insert("type".into(), json!([t, "null"]));
                        if let Some(Value::Array(e)) = m.get_mut("enum") {
                            e.push(Value::Null);
                        }
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(m));
                        m.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                    }
                }
            }
            if m.get("title").and_then(Value::as_str) == Some("uuid") && m.get("type") == Some(&json!("string")) {
                m.insert("format".into(), json!("uuid"));
            }
            // `format: integer` on a string is no format a 3.1 reader knows.
            if m.get("format") == Some(&json!("integer")) && m.get("type") == Some(&json!("string")) {
                m.remove("format");
                m.insert("pattern".into(), json!("^[0-9]{1,9}$"));
            }
            for (_, x) in m.iter_mut() {
                mend(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mend),
        _ => {}
    }
}

/// BitGo's operations by id: (path, method, operation).
fn vendor_operations() -> Map<String, Value> {
    let mut out = Map::new();
    for (path, ops) in spec()["paths"].as_object().into_iter().flatten() {
        for (method, op) in ops.as_object().into_iter().flatten() {
            if let Some(id) = op["operationId"].as_str() {
                out.insert(id.to_string(), json!({"path": path, "method": method, "op": op}));
            }
        }
    }
    out
}

/// Replaces the ledger operations' parameters, bodies and response schemas with BitGo's.
pub fn describe(doc: &mut Value) {
    let vendor = vendor_operations();
    let mut used = false;
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for (_, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (_, op) in item.iter_mut() {
            let Some(id) = op["operationId"].as_str().map(str::to_string) else { continue };
            if OWN.contains(&id.as_str()) {
                continue;
            }
            let Some(theirs) = vendor.get(&id) else { continue };
            let theirs = &theirs["op"];
            used = true;
            // Query parameters as BitGo gives them (path parameters stay ours: same names).
            let mut params: Vec<Value> = op["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|p| p["in"] == "path")
                .collect();
            for p in theirs["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    continue;
                }
                let mut p = p.clone();
                match p["name"].as_str() {
                    Some("pageSize") => p["schema"] = json!({"type": "string", "pattern": "^([1-9][0-9]{0,2}|1000)$"}),
                    Some("pageNumber") => p["schema"] = json!({"type": "string", "pattern": "^[0-9]{1,9}$"}),
                    _ => {}
                }
                params.push(p);
            }
            op["parameters"] = Value::Array(params);
            if let Some(body) = theirs.get("requestBody") {
                let mut body = body.clone();
                let props = &mut body["content"]["application/json"]["schema"]["properties"];
                if props["deposits"].is_object() {
                    props["deposits"]["minItems"] = json!(1);
                }
                if props["expectedTransfers"].is_object() && props["expectedTransfers"].get("$ref").is_none() {
                    props["expectedTransfers"]["additionalProperties"] =
                        json!({"type": "string", "pattern": "^-?0*[1-9][0-9]{0,37}$"});
                }
                let required =
                    body["content"]["application/json"]["schema"]["required"].as_array().is_some_and(|r| !r.is_empty());
                body["required"] = json!(required);
                op["requestBody"] = body;
            } else if let Some(m) = op.as_object_mut() {
                m.remove("requestBody");
            }
            // Each status BitGo lists: its schema (ours keep their descriptions and headers).
            for (status, resp) in theirs["responses"].as_object().into_iter().flatten() {
                let schema = &resp["content"]["application/json"]["schema"];
                if schema.is_null() {
                    continue;
                }
                let ours = &mut op["responses"][status];
                if ours.is_null() {
                    *ours = json!({"description": resp["description"].as_str().unwrap_or("Answer")});
                }
                ours["content"] = json!({"application/json": {"schema": schema}});
            }
        }
    }
    if used {
        let schemas = doc["components"]["schemas"].as_object_mut();
        if let Some(schemas) = schemas {
            for (name, schema) in spec()["components"]["schemas"].as_object().into_iter().flatten() {
                schemas.insert(format!("{PREFIX}{name}"), schema.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_operations_carry_bitgos_schemas() {
        let mut doc = crate::openapi::document::<super::super::NetworkApi>();
        describe(&mut doc);
        let base = "/api/network/v1/enterprises/{enterpriseId}";
        let create = &doc["paths"][format!("{base}/clients/connections/{{connectionId}}/allocations")]["post"];
        let body = &create["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["required"], json!(["amount", "clientExternalId", "nonce", "payload", "signature"]));
        assert_eq!(create["requestBody"]["required"], true);
        let amount = &doc["components"]["schemas"]["BitGoPositiveBNCurrencyAmount"];
        assert_eq!(amount["properties"]["quantity"]["pattern"], "^0*[1-9][0-9]{0,37}$");
        // No `nullable` or `oneOf` is left in what came from BitGo.
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            if name.starts_with(PREFIX) {
                let text = schema.to_string();
                assert!(!text.contains("\"nullable\"") && !text.contains("\"oneOf\""), "{name}");
            }
        }
        let list = &doc["paths"][format!("{base}/clients/allocations")]["get"]["parameters"];
        let names: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"sortDirection") && names.contains(&"enterpriseId"), "{names:?}");
        // The hand-written operations keep their own schemas.
        let own = &doc["paths"][format!("{base}/clients/connections")]["post"]["requestBody"];
        assert_eq!(own["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ConnectRequest");
    }
}
