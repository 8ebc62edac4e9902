//! `GET /v1/openapi.json`: the Integrations face's operations as OpenAPI 3.1.

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

fn op(id: &str, summary: &str, params: &[(&str, &str, &str, bool)], body: bool) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|(name, location, ty, required)| {
            json!({"name": name, "in": location, "required": required, "schema": {"type": ty}})
        })
        .collect();
    let mut o = json!({
        "operationId": id,
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": parameters,
        "responses": {
            "200": {"description": "Successful response", "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"$ref": "#/components/responses/error"},
            "401": {"$ref": "#/components/responses/error"},
            "403": {"$ref": "#/components/responses/error"},
            "404": {"$ref": "#/components/responses/error"},
            "500": {"$ref": "#/components/responses/error"}
        }
    });
    if body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}});
    }
    o
}

pub async fn document() -> Response {
    let page = [("limit", "query", "integer", false), ("offset", "query", "integer", false)];
    let mut list_conn = page.to_vec();
    list_conn.extend([
        ("connector_names", "query", "string", false),
        ("customer_id", "query", "string", false),
        ("connector_config_id", "query", "string", false),
        ("search_query", "query", "string", false),
        ("include_secrets", "query", "boolean", false),
        ("refresh_policy", "query", "string", false),
        ("expand", "query", "string", false),
    ]);
    let id = ("id", "path", "string", true);
    let doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "Patchbay — OpenInt v1 compatible API", "version": env!("CARGO_PKG_VERSION")},
        "servers": [{"url": "/v1"}],
        "paths": {
            "/connection": {
                "get": op("listConnections", "List connections", &list_conn, false),
                "post": op("createConnection", "Import an existing connection", &[], true)
            },
            "/connection/{id}": {
                "get": op("getConnection", "Get a connection", &[id, ("include_secrets", "query", "boolean", false),
                    ("refresh_policy", "query", "string", false), ("expand", "query", "string", false)], false),
                "delete": op("deleteConnection", "Delete a connection", &[id], false)
            },
            "/connection/{id}/check": {"post": op("checkConnection", "Verify that a connection is healthy", &[id], false)},
            "/connector": {"get": op("listConnectors", "List connectors", &page, false)},
            "/connector-config": {
                "get": op("listConnectorConfigs", "List connector configs", &page, false),
                "post": op("createConnectorConfig", "Create a connector config", &[], true)
            },
            "/connector-config/{id}": {
                "get": op("getConnectorConfig", "Get a connector config", &[id], false),
                "put": op("updateConnectorConfig", "Update a connector config", &[id], true),
                "delete": op("deleteConnectorConfig", "Delete a connector config", &[id], false)
            },
            "/customer": {
                "get": op("listCustomers", "List customers", &page, false),
                "put": op("upsertCustomer", "Create or update a customer", &[], true)
            },
            "/customer/{customer_id}/token": {
                "post": op("createToken", "Create a customer authentication token", &[("customer_id", "path", "string", true)], true)
            },
            "/event": {"get": op("listEvents", "List events", &page, false)},
            "/viewer": {"get": op("getCurrentUser", "The current viewer", &[], false)}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"error": {"description": "Error", "content": {"application/json": {"schema": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "issues": {"type": "array", "items": {"type": "object"}}}}}}}}
        }
    });
    axum::Json(doc).into_response()
}
