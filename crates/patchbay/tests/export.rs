//! The Export face (iTwin Export) over real HTTP, on both backends: seed page
//! 002, every operation of issue 4, runs through both exporters, the consent
//! page, the create-run race and recovery of an interrupted run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use patchbay::Config;
use patchbay_http::export::exporter::ExporterConfig;
use patchbay_store::testing::TestDb;
use patchbay_store::worker::Registry;
use serde_json::{Value, json};

mod common;
use common::{ADMIN, Answer, call};

const T1: &str = "5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a04";
const T2: &str = "5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a05";
const M1: &str = "7dbd1c2e-3f4a-4b5c-9d6e-7f8a9b0c1d05";
const M2: &str = "7dbd1c2e-3f4a-4b5c-9d6e-7f8a9b0c1d06";
const BASE: &str = "https://pb.example";

fn seed() -> String {
    json!({"export": {
        "itwins": [{"id": T1, "displayName": "Bridge retrofit"}, {"id": T2, "displayName": "Tunnel"}],
        "imodels": [{"id": M1, "iTwinId": T1, "displayName": "Main span"}, {"id": M2, "iTwinId": T2, "displayName": "Bore"}],
        "users": [
            {"id": "bob", "tokens": [{"token": "bob-token", "scopes": ["itwin-platform"]}],
             "itwins": {T1: ["read", "modify"]}, "authorizedForRuns": true},
            {"id": "rita", "tokens": [{"token": "rita-token", "scopes": ["itwin-platform"]}], "itwins": {T1: ["read"]}},
            {"id": "nora", "tokens": [{"token": "nora-token", "scopes": ["itwin-platform"]}],
             "itwins": {T1: ["read", "modify"]}, "authorizedForRuns": false},
            {"id": "sam", "tokens": [{"token": "sam-token", "scopes": ["imodels:read"]}], "itwins": {T1: ["read"]}}
        ],
        "connections": [
            {"id": "exc-nightly-ifc", "iModelId": M1, "displayName": "nightly IFC", "authenticationType": "User", "ownerUserId": "bob"},
            {"id": "exc-service", "iModelId": M1, "displayName": "service", "authenticationType": "Service", "ownerUserId": "bob",
             "simulate": {"result": "Error", "delayMs": 10}}
        ]
    }})
    .to_string()
}

fn config(db: &TestDb, f: impl FnOnce(&mut Config)) -> Config {
    let mut c = common::config(db, Some(ADMIN));
    c.public_base_url = Some(BASE.into());
    c.data_dir = Some(std::env::temp_dir().join(format!("pb-export-{}", uuid::Uuid::new_v4().simple())));
    for t in ["IFC", "PDF"] {
        c.export.exporters.insert(t.into(), ExporterConfig::Simulate { delay_ms: 150, result: "Success".into() });
    }
    f(&mut c);
    c
}

struct Env {
    srv: patchbay::Running,
    http: reqwest::Client,
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.srv.addr)
    }
    async fn get(&self, token: &str, path: &str) -> Answer {
        call(self.http.get(self.url(path)).bearer_auth(token)).await
    }
    async fn post(&self, token: &str, path: &str, body: &Value) -> Answer {
        call(self.http.post(self.url(path)).bearer_auth(token).json(body)).await
    }
    async fn wait_completed(&self, conn: &str, run: &str) -> Value {
        for _ in 0..400 {
            let a = self.get("bob-token", &format!("/export/connections/{conn}/runs/{run}")).await;
            if a.body["run"]["state"] == "Completed" {
                return a.body["run"].clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("run {run} did not complete");
    }
}

async fn env_with(db: &TestDb, f: impl FnOnce(&mut Config)) -> Env {
    let c = config(db, f);
    let srv = patchbay::start(&c, Registry::new()).await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = call(http.post(format!("http://{}/admin/v1/seed", srv.addr)).bearer_auth(ADMIN).body(seed())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    Env { srv, http }
}

async fn env(db: &TestDb) -> Env {
    env_with(db, |_| {}).await
}

fn run_id_of(location: &str) -> String {
    location.rsplit('/').next().unwrap().to_string()
}

both_backends!(list_connections_seed_002, |db| {
    let e = env(&db).await;
    let a = e.get("bob-token", &format!("/export/connections?imodelId={M1}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.headers["content-type"], "application/json");
    assert_eq!(
        a.body,
        json!({
            "connections": [
                {"id": "exc-nightly-ifc", "displayName": "nightly IFC", "iModelId": M1, "iTwinId": T1, "authenticationType": "User",
                 "_links": {"iModel": {"href": format!("{BASE}/imodels/{M1}")}, "iTwin": {"href": format!("{BASE}/itwins/{T1}")}}},
                {"id": "exc-service", "displayName": "service", "iModelId": M1, "iTwinId": T1, "authenticationType": "Service",
                 "_links": {"iModel": {"href": format!("{BASE}/imodels/{M1}")}, "iTwin": {"href": format!("{BASE}/itwins/{T1}")}}}
            ],
            "_links": {"self": {"href": format!("{BASE}/export/connections?imodelId={M1}&$skip=0&$top=100")}}
        })
    );
    // iModelId spelled either way, value in any case; Accept negotiation.
    let a = e.get("bob-token", &format!("/export/connections?iModelId={}", M1.to_uppercase())).await;
    assert_eq!(a.body["connections"].as_array().unwrap().len(), 2);
    for accept in ["application/vnd.bentley.itwin-platform.v1+json", "application/json", "*/*"] {
        let a = call(
            e.http
                .get(e.url(&format!("/export/connections?imodelId={M1}")))
                .bearer_auth("bob-token")
                .header("accept", accept),
        )
        .await;
        assert_eq!(a.status, 200, "{accept}");
    }
    let a = call(
        e.http
            .get(e.url(&format!("/export/connections?imodelId={M1}")))
            .bearer_auth("bob-token")
            .header("accept", "application/vnd.bentley.itwin-platform.v2+json"),
    )
    .await;
    assert_eq!(a.status, 406);
    assert_eq!(a.body["error"]["code"], "NotAcceptable");
    // Errors of seed 002, exactly.
    let a = call(e.http.get(e.url(&format!("/export/connections?imodelId={M1}")))).await;
    assert_eq!(
        (a.status, a.body),
        (
            401,
            json!({"error": {"code": "HeaderNotFound", "message": "Header Authorization was not found in the request. Access denied."}})
        )
    );
    let a = e.get("wrong-token", &format!("/export/connections?imodelId={M1}")).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (401, Some("Unauthorized")));
    let a = e.get("sam-token", &format!("/export/connections?imodelId={M1}")).await;
    assert_eq!(
        (a.status, a.body["error"]["message"].as_str()),
        (401, Some("The access token does not have the required scope itwin-platform."))
    );
    let a = e.get("bob-token", &format!("/export/connections?imodelId={M2}")).await;
    assert_eq!(
        (a.status, a.body),
        (
            403,
            json!({"error": {"code": "InsufficientPermissions", "message": "The user has insufficient permissions for the requested operation."}})
        )
    );
    let a = e.get("bob-token", "/export/connections?imodelId=7dbd1c2e-3f4a-4b5c-9d6e-000000000000").await;
    assert_eq!(
        (a.status, a.body),
        (404, json!({"error": {"code": "ConnectionNotFound", "message": "Requested iModelId is not available."}}))
    );
    let a = e.get("bob-token", "/export/connections?imodelId=not-valid&$top=5000").await;
    assert_eq!(
        (a.status, a.body),
        (
            422,
            json!({"error": {"code": "InvalidConnectionsRequest", "message": "Cannot perform operation.", "details": [
            {"code": "InvalidValue", "message": "Page size is out of limits.", "target": "$top"},
            {"code": "InvalidValue", "message": "Provided imodelId value is not valid.", "target": "imodelId"}]}})
        )
    );
    let a = e.get("bob-token", "/export/connections?$skip=-1").await;
    let targets: Vec<&str> =
        a.body["error"]["details"].as_array().unwrap().iter().map(|d| d["target"].as_str().unwrap()).collect();
    assert_eq!((a.status, targets), (422, vec!["$skip", "imodelId"]));
    e.srv.shutdown().await.unwrap();
});

both_backends!(connections_create_get_delete_and_paging_links, |db| {
    let e = env(&db).await;
    let a = e
        .post(
            "bob-token",
            "/export/connections",
            &json!({"iModelId": M1, "displayName": "weekly", "authenticationType": "Service"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let c = a.body["connection"].clone();
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 43, "opaque base64url id");
    assert_eq!(a.headers["location"], format!("{BASE}/export/connections/{id}").as_str());
    assert_eq!(
        (c["displayName"].as_str(), c["authenticationType"].as_str(), c["iTwinId"].as_str()),
        (Some("weekly"), Some("Service"), Some(T1))
    );
    assert!(c["_links"].get("lastRun").is_none(), "no lastRun before a run exists");
    let a = e.post("bob-token", "/export/connections", &json!({"iModelId": M1})).await;
    assert_eq!(
        (a.status, a.body["connection"]["displayName"].as_str(), a.body["connection"]["authenticationType"].as_str()),
        (201, Some("Main span"), Some("User"))
    );
    // Paging: 4 connections on M1.
    let page = |q: &str| format!("/export/connections?imodelId={M1}&{q}");
    let a = e.get("bob-token", &page("$top=3")).await;
    assert_eq!(a.body["connections"].as_array().unwrap().len(), 3);
    assert_eq!(
        a.body["_links"],
        json!({"self": {"href": format!("{BASE}/export/connections?imodelId={M1}&$skip=0&$top=3")},
               "next": {"href": format!("{BASE}/export/connections?imodelId={M1}&$skip=3&$top=3")}})
    );
    let a = e.get("bob-token", &page("$top=3&$skip=3")).await;
    assert_eq!(a.body["connections"].as_array().unwrap().len(), 1);
    assert_eq!(
        a.body["_links"],
        json!({"self": {"href": format!("{BASE}/export/connections?imodelId={M1}&$skip=3&$top=3")},
               "prev": {"href": format!("{BASE}/export/connections?imodelId={M1}&$skip=0&$top=3")}})
    );
    // Create errors.
    let a =
        e.post("bob-token", "/export/connections", &json!({"displayName": "x", "authenticationType": "Robot"})).await;
    assert_eq!(
        (a.status, a.body),
        (
            422,
            json!({"error": {"code": "InvalidExportConnectionRequest", "message": "Cannot perform operation.", "details": [
            {"code": "MissingRequiredProperty", "message": "Required property iModelId is missing.", "target": "iModelId"},
            {"code": "InvalidValue", "message": "authenticationType must be one of User, Service.", "target": "authenticationType"}]}})
        )
    );
    let a =
        e.post("bob-token", "/export/connections", &json!({"iModelId": "7dbd1c2e-3f4a-4b5c-9d6e-000000000000"})).await;
    assert_eq!(
        (a.status, a.body),
        (404, json!({"error": {"code": "iModelNotFound", "message": "Requested iModel is not available."}}))
    );
    assert_eq!(e.post("rita-token", "/export/connections", &json!({"iModelId": M1})).await.status, 403);
    // A NUL in the stored name: refused on both backends (PostgreSQL text cannot hold one).
    let a = e.post("bob-token", "/export/connections", &json!({"iModelId": M1, "displayName": "a\u{0}b"})).await;
    assert_eq!(
        (a.status, a.body),
        (
            422,
            json!({"error": {"code": "InvalidExportConnectionRequest", "message": "Cannot perform operation.", "details": [
            {"code": "InvalidValue", "message": "Provided displayName value is not valid.", "target": "displayName"}]}})
        )
    );
    let a = call(e.http.post(e.url("/export/connections")).bearer_auth("bob-token").body("nope")).await;
    assert_eq!((a.status, a.body["error"]["details"][0]["target"].as_str()), (422, Some("body")));
    // Get and delete.
    let a = e.get("rita-token", &format!("/export/connections/{id}")).await;
    assert_eq!((a.status, a.body["connection"]["id"].as_str()), (200, Some(id.as_str())));
    let missing = json!({"error": {"code": "ConnectionNotFound", "message": "Requested Connection is not available."}});
    assert_eq!(e.get("bob-token", "/export/connections/nope").await.body, missing);
    let a = e.get("bob-token", "/export/connections/bad%20id").await;
    assert_eq!(
        (a.status, a.body),
        (
            422,
            json!({"error": {"code": "InvalidExportConnectionRequest", "message": "Cannot perform operation.", "details": [
            {"code": "InvalidValue", "message": "Provided connectionId value is not valid.", "target": "connectionId"}]}})
        )
    );
    assert_eq!(
        call(e.http.delete(e.url(&format!("/export/connections/{id}"))).bearer_auth("rita-token")).await.status,
        403
    );
    let a = call(e.http.delete(e.url(&format!("/export/connections/{id}"))).bearer_auth("bob-token")).await;
    assert_eq!((a.status, a.body), (204, Value::String(String::new())));
    assert_eq!(
        call(e.http.delete(e.url(&format!("/export/connections/{id}"))).bearer_auth("bob-token")).await.status,
        404
    );
    e.srv.shutdown().await.unwrap();
});

both_backends!(runs_execute_with_the_simulate_exporter, |db| {
    let e = env(&db).await;
    let conn = "exc-nightly-ifc";
    let a = e
        .post(
            "bob-token",
            &format!("/export/connections/{conn}/runs"),
            &json!({"exportType": "IFC", "ifcVersion": "IFC4.3", "unknown": 1}),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let location = a.headers["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{BASE}/export/connections/{conn}/runs/")));
    let run = run_id_of(&location);
    // The run exists as soon as 202 returns.
    let list = e.get("bob-token", &format!("/export/connections/{conn}/runs")).await;
    assert_eq!(list.body["runs"][0]["id"], run.as_str());
    assert_ne!(list.body["runs"][0]["state"], "Completed");
    assert_eq!(list.body["runs"][0]["result"], "Undetermined");
    // An active run: 303 to it, and the connection cannot be deleted.
    let again = e.post("bob-token", &format!("/export/connections/{conn}/runs"), &json!({"exportType": "PDF"})).await;
    assert_eq!((again.status, again.headers["location"].to_str().unwrap()), (303, location.as_str()));
    let del = call(e.http.delete(e.url(&format!("/export/connections/{conn}"))).bearer_auth("bob-token")).await;
    assert_eq!(
        (del.status, del.body),
        (
            409,
            json!({"error": {"code": "ConnectionAlreadyInUse", "message": "Connection is already being processed."}})
        )
    );
    let done = e.wait_completed(conn, &run).await;
    assert_eq!(
        (done["state"].as_str(), done["result"].as_str(), done["connectionId"].as_str()),
        (Some("Completed"), Some("Success"), Some(conn))
    );
    let start = done["startDateTime"].as_str().unwrap();
    assert!(start.len() == 28 && start.ends_with('Z') && start.as_bytes()[19] == b'.', "7 fractional digits: {start}");
    let task = &done["jobs"][0]["tasks"][0];
    assert_eq!(
        (task["state"].as_str(), task["result"].as_str(), task["retryAttempts"].as_i64()),
        (Some("Completed"), Some("Success"), Some(0))
    );
    let file = task["exportOutputFileId"].as_str().unwrap().to_string();
    assert!(task.get("error").is_none());
    // The produced file (extension endpoint).
    let f = e.http.get(e.url(&format!("/export/files/{file}"))).bearer_auth("rita-token").send().await.unwrap();
    assert_eq!(f.status(), 200);
    assert!(f.text().await.unwrap().starts_with("ISO-10303-21;"));
    // lastRun link; a second run; newest first; paging; 404 RunNotFound.
    let c = e.get("bob-token", &format!("/export/connections/{conn}")).await;
    assert_eq!(c.body["connection"]["_links"]["lastRun"]["href"], location.as_str());
    let a = e.post("bob-token", &format!("/export/connections/{conn}/runs"), &json!({"exportType": "PDF"})).await;
    assert_eq!(a.status, 202);
    let second = run_id_of(a.headers["location"].to_str().unwrap());
    e.wait_completed(conn, &second).await;
    let list = e.get("bob-token", &format!("/export/connections/{conn}/runs?$top=1")).await;
    assert_eq!(list.body["runs"][0]["id"], second.as_str());
    assert_eq!(
        list.body["_links"],
        json!({"self": {"href": format!("{BASE}/export/connections/{conn}/runs?$skip=0&$top=1")},
               "next": {"href": format!("{BASE}/export/connections/{conn}/runs?$skip=1&$top=1")}})
    );
    let list = e.get("bob-token", &format!("/export/connections/{conn}/runs?$top=1&$skip=1")).await;
    assert_eq!(list.body["runs"][0]["id"], run.as_str());
    assert!(list.body["_links"].get("next").is_none());
    let a = e.get("bob-token", &format!("/export/connections/{conn}/runs/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(
        (a.status, a.body),
        (404, json!({"error": {"code": "RunNotFound", "message": "Requested Run is not available."}}))
    );
    assert_eq!(e.get("bob-token", &format!("/export/connections/{conn}/runs?$top=0")).await.status, 422);
    // Per-connection simulate override: the service connection fails with a task error.
    let a = e.post("bob-token", "/export/connections/exc-service/runs", &json!({"exportType": "IFC"})).await;
    assert_eq!(a.status, 202);
    let failed = e.wait_completed("exc-service", &run_id_of(a.headers["location"].to_str().unwrap())).await;
    assert_eq!(failed["result"], "Error");
    let err = &failed["jobs"][0]["tasks"][0]["error"];
    assert_eq!(
        (err["errorCode"].as_str(), err["system"].as_str(), err["canUserFix"].as_bool()),
        (Some("TAE_EXP_1000"), Some("Exporter"), Some(false))
    );
    assert!(failed["jobs"][0]["tasks"][0].get("exportOutputFileId").is_none());
    e.srv.shutdown().await.unwrap();
});

both_backends!(run_body_validation, |db| {
    let e = env(&db).await;
    let path = "/export/connections/exc-nightly-ifc/runs";
    let targets = |a: &Answer| -> Vec<String> {
        a.body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["target"].as_str().unwrap().to_string())
            .collect()
    };
    let a = e.post("bob-token", path, &json!({})).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (422, Some("InvalidExportConnectionRunRequest")));
    assert_eq!(targets(&a), ["exportType"]);
    let a = e.post("bob-token", path, &json!({"exportType": "LandXML"})).await;
    assert_eq!(targets(&a), ["exportType"]);
    let a = e
        .post(
            "bob-token",
            path,
            &json!({"exportType": "PDF", "ifcVersion": "IFC4.3", "inputOptions": {"modelIds": []}}),
        )
        .await;
    assert_eq!(targets(&a), ["ifcVersion", "inputOptions.modelIds"]);
    let a = e.post("bob-token", path, &json!({"exportType": "IFC", "ifcVersion": "IFC5"})).await;
    assert_eq!(targets(&a), ["ifcVersion"]);
    let a = e
        .post(
            "bob-token",
            path,
            &json!({"exportType": "IFC", "outputOptions": {"location": "USER_BLOB_STORAGE", "logsSasUrl": "nope"}}),
        )
        .await;
    assert_eq!(targets(&a), ["outputOptions.outputSasUrl", "outputOptions.logsSasUrl"]);
    let a = e.post("bob-token", path, &json!({"exportType": "IFC", "inputOptions": {"changesetId": "xyz"}})).await;
    assert_eq!(targets(&a), ["inputOptions.changesetId"]);
    assert_eq!(e.post("rita-token", path, &json!({"exportType": "IFC"})).await.status, 403);
    assert_eq!(
        e.post("bob-token", "/export/connections/missing/runs", &json!({"exportType": "IFC"})).await.status,
        404
    );
    e.srv.shutdown().await.unwrap();
});

both_backends!(concurrent_creates_give_one_run, |db| {
    let e = env_with(&db, |c| {
        c.export.exporters.insert("IFC".into(), ExporterConfig::Simulate { delay_ms: 2_000, result: "Success".into() });
    })
    .await;
    let path = "/export/connections/exc-nightly-ifc/runs";
    let body = json!({"exportType": "IFC"});
    let (a, b, c) = tokio::join!(
        e.post("bob-token", path, &body),
        e.post("bob-token", path, &body),
        e.post("bob-token", path, &body)
    );
    let mut statuses = vec![a.status, b.status, c.status];
    statuses.sort();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    assert!(statuses[1..].iter().all(|s| *s == 303 || *s == 409), "{statuses:?}");
    let list = e.get("bob-token", "/export/connections/exc-nightly-ifc/runs").await;
    assert_eq!(list.body["runs"].as_array().unwrap().len(), 1);
    e.srv.shutdown().await.unwrap();
});

both_backends!(consent_page_grants_background_runs, |db| {
    let e = env(&db).await;
    let path = "/export/connections/exc-nightly-ifc/runs";
    let a = e.post("nora-token", path, &json!({"exportType": "IFC"})).await;
    assert_eq!(a.status, 422);
    assert_eq!(a.body["error"]["details"][0]["code"], "UserNotAuthorized");
    // A Service connection needs no grant.
    let a = e.post("nora-token", "/export/connections/exc-service/runs", &json!({"exportType": "IFC"})).await;
    assert_eq!(a.status, 202);
    let a = e.get("nora-token", "/export/authorizationinformation?redirectUrl=not%20a%20url").await;
    assert_eq!(
        (a.status, a.body),
        (
            422,
            json!({"error": {"code": "InvalidAuthorizationInformationRequest", "message": "Cannot perform operation.",
            "details": [{"code": "InvalidValue", "message": "redirectUrl must be a valid URL.", "target": "$redirectUrl"}]}})
        )
    );
    let a = e.get("nora-token", "/export/authorizationInformation?redirectUrl=https://app.example/done").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["authorizationInformation"]["isUserAuthorized"], false);
    let url = a.body["authorizationInformation"]["_links"]["authorizationUrl"]["href"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{BASE}/export/authorize?redirect_url=https%3A%2F%2Fapp.example%2Fdone&consent=")),
        "{url}"
    );
    // Drive the consent page through its form, as a browser would.
    let local = url.replace(BASE, &format!("http://{}", e.srv.addr));
    let page = e.http.get(&local).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<form method=\"post\" action=\"/export/authorize\">") && html.contains("Allow"));
    let consent = html.split("name=\"consent\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let post = e
        .http
        .post(e.url("/export/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("consent={consent}&decision=allow"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 303);
    assert_eq!(post.headers()["location"], "https://app.example/done");
    // The link is single-use.
    assert_eq!(e.http.get(&local).send().await.unwrap().status(), 400);
    let a = e.get("nora-token", "/export/authorizationinformation?redirectUrl=https://app.example/done").await;
    assert_eq!(a.body["authorizationInformation"]["isUserAuthorized"], true);
    let a = e.post("nora-token", path, &json!({"exportType": "IFC"})).await;
    assert_eq!(a.status, 202, "{}", a.body);
    e.srv.shutdown().await.unwrap();
});

both_backends!(command_exporter_runs_a_real_program, |db| {
    let e = env_with(&db, |c| {
        c.export.exporters.insert(
            "IFC".into(),
            ExporterConfig::Command {
                argv: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "echo exporting \"$1\"; printf 'IFC of %s %s' \"$1\" \"$3\" > \"$2\"".into(),
                    "sh".into(),
                    "{imodelId}".into(),
                    "{output}".into(),
                    "{ifcVersion}".into(),
                ],
                timeout_secs: 30,
                retries: 0,
            },
        );
        c.export.exporters.insert(
            "PDF".into(),
            ExporterConfig::Command {
                argv: vec!["/bin/sh".into(), "-c".into(), "echo broken >&2; exit 3".into()],
                timeout_secs: 30,
                retries: 1,
            },
        );
    })
    .await;
    let conn = "exc-nightly-ifc";
    let a = e
        .post(
            "bob-token",
            &format!("/export/connections/{conn}/runs"),
            &json!({"exportType": "IFC", "ifcVersion": "IFC2x3"}),
        )
        .await;
    let run = e.wait_completed(conn, &run_id_of(a.headers["location"].to_str().unwrap())).await;
    assert_eq!(run["result"], "Success", "{run}");
    let file = run["jobs"][0]["tasks"][0]["exportOutputFileId"].as_str().unwrap();
    let body = e
        .http
        .get(e.url(&format!("/export/files/{file}")))
        .bearer_auth("bob-token")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, format!("IFC of {M1} IFC2x3"));
    // A failing program is retried once, then the run fails with its exit code and logs.
    let a = e.post("bob-token", &format!("/export/connections/{conn}/runs"), &json!({"exportType": "PDF"})).await;
    let run = e.wait_completed(conn, &run_id_of(a.headers["location"].to_str().unwrap())).await;
    let task = &run["jobs"][0]["tasks"][0];
    assert_eq!((run["result"].as_str(), task["retryAttempts"].as_i64()), (Some("Error"), Some(1)));
    assert_eq!(task["error"]["bridgeExitCode"], 3);
    assert_eq!(task["error"]["message"], "the exporter exited with code 3");
    assert!(task["error"]["details"].as_str().unwrap().contains("broken"));
    e.srv.shutdown().await.unwrap();
});

both_backends!(command_exporter_times_out, |db| {
    let e = env_with(&db, |c| {
        c.export.exporters.insert(
            "IFC".into(),
            ExporterConfig::Command { argv: vec!["/bin/sleep".into(), "30".into()], timeout_secs: 1, retries: 0 },
        );
    })
    .await;
    let a = e.post("bob-token", "/export/connections/exc-nightly-ifc/runs", &json!({"exportType": "IFC"})).await;
    let run = e.wait_completed("exc-nightly-ifc", &run_id_of(a.headers["location"].to_str().unwrap())).await;
    assert_eq!(run["result"], "TimedOut");
    assert_eq!(run["jobs"][0]["tasks"][0]["error"]["errorCode"], "TAE_EXP_1001");
    e.srv.shutdown().await.unwrap();
});

both_backends!(user_blob_storage_receives_output_and_logs, |db| {
    let received: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::put(move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let kind = headers.get("x-ms-blob-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                sink.lock().unwrap().push((uri.to_string(), kind, body));
                axum::http::StatusCode::CREATED
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let blob = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let e = env(&db).await;
    let body = json!({"exportType": "IFC", "outputOptions": {"location": "USER_BLOB_STORAGE",
        "outputSasUrl": format!("{blob}/out/model.ifc?sig=abc"), "logsSasUrl": format!("{blob}/logs/run.log?sig=def")}});
    let a = e.post("bob-token", "/export/connections/exc-nightly-ifc/runs", &body).await;
    let run = e.wait_completed("exc-nightly-ifc", &run_id_of(a.headers["location"].to_str().unwrap())).await;
    assert_eq!(run["result"], "Success");
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter().any(|(u, k, b)| u == "/out/model.ifc?sig=abc" && k == "BlockBlob" && b.starts_with("ISO-10303-21;"))
    );
    assert!(got.iter().any(|(u, _, b)| u == "/logs/run.log?sig=def" && b.contains("simulated IFC export")));
    e.srv.shutdown().await.unwrap();
});

both_backends!(an_interrupted_run_is_resumed_after_restart, |db| {
    // A run whose worker died while Executing: its job is held by a dead worker's lease.
    let c = config(&db, |c| c.jobs.lease_secs = 1);
    {
        let first = patchbay::start(&c, Registry::new()).await.unwrap();
        let r = call(
            reqwest::Client::new().post(format!("http://{}/admin/v1/seed", first.addr)).bearer_auth(ADMIN).body(seed()),
        )
        .await;
        assert_eq!(r.status, 200);
        first.shutdown().await.unwrap();
    }
    let store = patchbay_store::connect(&db.url).await.unwrap();
    let now = patchbay_core::Clock::now_ms(&patchbay_core::SystemClock);
    let mut run = patchbay_store::ExRun {
        tenant: T1.into(),
        id: uuid::Uuid::new_v4().to_string(),
        connection_id: "exc-nightly-ifc".into(),
        state: "Queued".into(),
        result: "Undetermined".into(),
        request: json!({"exportType": "IFC", "inputOptions": {}, "outputOptions": {"location": "STORAGE"}}),
        jobs: patchbay_http::export::runner::initial_jobs(&patchbay_core::Entropy::system()),
        start_at: None,
        end_at: None,
        created_at: now,
        updated_at: now,
    };
    let job = patchbay_http::export::runner::job(T1, "exc-nightly-ifc", &run.id, now);
    assert_eq!(store.ex_create_run(&run, &job).await.unwrap(), patchbay_store::RunCreated::Created);
    let claimed = store.claim_job("dead-worker", now, 1_000).await.unwrap().unwrap();
    assert_eq!(claimed.id, job.id);
    run.state = "Executing".into();
    run.start_at = Some(now);
    assert!(store.ex_save_run(&run).await.unwrap());
    store.close().await;
    // The restarted server picks the job up once the lease expires and finishes the run.
    let srv = patchbay::start(&c, Registry::new()).await.unwrap();
    let e = Env { srv, http: reqwest::Client::new() };
    let done = e.wait_completed("exc-nightly-ifc", &run.id).await;
    assert_eq!(done["result"], "Success");
    e.srv.shutdown().await.unwrap();
});
