//! The generated OpenAPI documents: OpenAPI 3.1, every route of each face
//! documented, and every `$ref` resolvable.

use patchbay_http::{admin::AdminApi, export::ExportApi, openapi::document};
use serde_json::Value;

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

fn check(doc: &Value, operations: usize) {
    assert_eq!(doc["openapi"], "3.1.0");
    let count: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(count, operations, "{}", doc["info"]["title"]);
    let mut all = Vec::new();
    refs(doc, &mut all);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected ref {r}"));
        assert!(doc["components"]["schemas"].get(name).is_some(), "unresolvable {r}");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

#[test]
fn every_face_is_documented() {
    check(&patchbay_http::network::openapi_json(), 44);
    check(&document::<ExportApi>(), 9);
    // v1's 24 operations, the 10 of them v2 serves too, and v2's assignments and organisations.
    check(&patchbay_http::integrations::openapi_json(), 38);
    // Seeds, the signing key, webhook secrets; and the sandbox's 21 controls.
    check(&document::<AdminApi>(), 24);
}

#[test]
fn integrations_document_lists_the_catalogue() {
    let doc = patchbay_http::integrations::openapi_json();
    let names = doc["components"]["schemas"]["ConnectorName"]["enum"].as_array().unwrap();
    assert_eq!(names.len(), 171);
    for path in ["/v2/connection", "/v2/connection/{id}/assignment/{repl_id}", "/v2/organization/{org_id}"] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    assert_eq!(doc["paths"]["/v2/connection"]["get"]["operationId"], "listConnectionsV2");
    let data = doc["components"]["schemas"]["ConnectionData"]["oneOf"].as_array().unwrap();
    assert_eq!(data.len(), names.len());
    let github = data.iter().find(|d| d["properties"]["connector_name"]["enum"][0] == "github").unwrap();
    assert_eq!(github["properties"]["settings"]["required"][0], "oauth");
}
