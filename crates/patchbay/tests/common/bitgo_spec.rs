//! Answers checked against BitGo's own published spec
//! (`tools/vendor-specs/bitgo-network-v1.json`, the shared reference copy, cut
//! unchanged from BitGo's api.yaml): the response schema of the operation and status,
//! with OpenAPI 3.0's `nullable` read as JSON Schema's `null` type.
#![allow(dead_code)]

use std::sync::OnceLock;

use serde_json::{Value, json};

fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        // A copy of the shared reference file, kept in the repository (tools/vendor-specs).
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/vendor-specs/bitgo-network-v1.json");
        let text = std::fs::read_to_string(path).expect("BitGo's network spec");
        let mut v: Value = serde_json::from_str(&text).unwrap();
        nullable(&mut v);
        v
    })
}

/// `{type: T, nullable: true}` → `{type: [T, "null"]}`; a nullable `oneOf`/`allOf` gains a null branch.
/// `oneOf` is read as `anyOf`: the spec's `PositiveAllocationAmount` is a `oneOf` of two
/// identical schemas, which no value (BitGo's own answers included) satisfies exactly once.
fn nullable(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(branches) = m.remove("oneOf") {
                m.insert("anyOf".into(), branches);
            }
            if m.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = m.get("type").cloned() {
                    m.insert("type".into(), json!([t, "null"]));
                    if let Some(Value::Array(e)) = m.get_mut("enum") {
                        e.push(Value::Null);
                    }
                } else {
                    let inner = Value::Object(std::mem::take(m));
                    m.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                }
            }
            for (_, x) in m.iter_mut() {
                nullable(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(nullable),
        _ => {}
    }
}

/// Panics unless `body` is valid for the operation's `status` response in BitGo's spec.
pub fn check(method: &str, path_template: &str, status: u16, body: &Value) {
    let s = spec();
    let full = format!("/api/network/v1/enterprises/{{enterpriseId}}{path_template}");
    let op = &s["paths"][&full][method.to_ascii_lowercase()];
    assert!(op.is_object(), "no operation {method} {full} in BitGo's spec");
    let schema = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "BitGo's spec gives no {status} answer for {method} {full}");
    let doc = json!({"$ref": "#/x", "x": schema, "components": s["components"]});
    let validator = jsonschema::validator_for(&doc).expect("the spec compiles");
    let errors: Vec<String> = validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{method} {path_template} {status} does not match BitGo's spec: {errors:?}\n{body:#}");
}
