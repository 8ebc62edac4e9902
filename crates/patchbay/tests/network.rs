//! The Network face (BitGo OES) over real HTTP, on both backends: seed pages
//! 000 and 001, every operation of issue 3 and every error status.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use patchbay_core::network::{derived_uuid, proof, public_key_of, sign_message};
use serde_json::{Value, json};

mod common;
use common::{ADMIN, Answer, boot, call};

const ALICE_KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const OTHER_KEY: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const CLIENT: &str = "6f1c9a52-3c1e-4f7a-9d4b-2f0d8c1e7a01";
const P_TOKEN: &str = "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02";
const P_INACTIVE: &str = "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c03";
const P_APIKEY: &str = "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c04";
const P_GERMANY: &str = "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c05";
const C1: &str = "c0a80101-0000-4000-8000-000000000001";
const C2: &str = "c0a80101-0000-4000-8000-000000000002";
const C3: &str = "c0a80101-0000-4000-8000-000000000003";
const C_OTHER: &str = "c0a80101-0000-4000-8000-000000000009";
const BASE: &str = "/api/network/v1/enterprises";

/// A partner platform: answers `POST /bitgo/v1/connections`, failing the
/// first `fail_first` calls with a 500, and records what it received.
#[derive(Clone, Default)]
struct Partner {
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    fail_first: Arc<Mutex<usize>>,
}

async fn partner_endpoint(
    State(p): State<Partner>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let jwt = headers.get("x-bitgo-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    p.calls.lock().unwrap().push((jwt, body.0.clone()));
    {
        let mut left = p.fail_first.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "try later").into_response();
        }
    }
    let id = body.0["connectionId"].as_str().unwrap_or_default();
    axum::Json(json!({
        "clientId": body.0["clientId"], "connectionId": id,
        "partnersClientId": "pc-acme", "partnersConnectionId": format!("pconn-{}", &id[..8]),
    }))
    .into_response()
}

async fn partner_server(fail_first: usize) -> (Partner, String) {
    let p = Partner { fail_first: Arc::new(Mutex::new(fail_first)), ..Default::default() };
    let app = axum::Router::new().route("/bitgo/v1/connections", post(partner_endpoint)).with_state(p.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (p, url)
}

fn seed(callback: &str) -> String {
    let alice_pub = public_key_of(ALICE_KEY).unwrap();
    let other_pub = public_key_of(OTHER_KEY).unwrap();
    json!({"network": {
        "enterprises": [
            {"id": "ent-client", "name": "Acme", "oesLicense": true, "trustOrg": "BitGo Trust"},
            {"id": "ent-partner", "name": "Exchange", "oesLicense": true, "trustOrg": "BitGo Trust", "partnerEligible": true},
            {"id": "ent-unlicensed", "name": "NoLicence", "oesLicense": false, "trustOrg": "BitGo Trust"},
            {"id": "ent-de", "name": "Germany", "oesLicense": true, "trustOrg": "BitGo Germany", "partnerEligible": true},
            {"id": "ent-other", "name": "Other client", "oesLicense": true, "trustOrg": "BitGo Trust"}
        ],
        "users": [
            {"id": "alice", "enterprises": ["ent-client", "ent-unlicensed"],
             "tokens": [{"token": "alice-rw", "scopes": ["settlement_network_read", "settlement_network_write"]},
                        {"token": "alice-ro", "scopes": ["settlement_network_read"]},
                        {"token": "alice-none", "scopes": []}]},
            {"id": "erin", "enterprises": ["ent-partner"],
             "tokens": [{"token": "erin-rw", "scopes": ["settlement_network_read", "settlement_network_write"]}]},
            {"id": "otto", "enterprises": ["ent-other", "ent-de"],
             "tokens": [{"token": "otto-rw", "scopes": ["settlement_network_read", "settlement_network_write"]}]}
        ],
        "clients": [
            {"id": CLIENT, "enterpriseId": "ent-client", "walletId": "wallet-acme-1", "publicKey": alice_pub},
            {"id": "6f1c9a52-3c1e-4f7a-9d4b-2f0d8c1e7a09", "enterpriseId": "ent-other", "walletId": "w-o", "publicKey": other_pub}
        ],
        "partners": [
            {"id": P_TOKEN, "enterpriseId": "ent-partner", "name": "Example Exchange", "institutionIdentifier": "example-exchange",
             "connectionKeySchema": "token", "active": true, "trustOrg": "BitGo Trust", "stablePartner": true, "callbackUrl": callback,
             "supportedCurrencies": [{"ofcCurrency": "ofcbtc"}, {"ofcCurrency": "ofcusd", "backingCurrency": "fiatusd"}]},
            {"id": P_INACTIVE, "enterpriseId": "ent-partner", "name": "Dormant", "institutionIdentifier": "dormant",
             "connectionKeySchema": "token", "active": false, "trustOrg": "BitGo Trust"},
            {"id": P_APIKEY, "enterpriseId": "ent-partner", "name": "Keyed", "institutionIdentifier": "keyed",
             "connectionKeySchema": "apiKeyAndSecret", "trustOrg": "BitGo Trust"},
            {"id": P_GERMANY, "enterpriseId": "ent-de", "name": "Berlin", "institutionIdentifier": "berlin",
             "connectionKeySchema": "token", "trustOrg": "BitGo Germany"}
        ],
        "connections": [
            {"id": C1, "clientId": CLIENT, "partnerId": P_TOKEN, "name": "Desk 1", "nonce": "seed-n1",
             "connectionKey": {"schema": "token", "connectionToken": "SEEDED-SECRET-TOKEN"}, "createdAt": "2026-01-01T00:00:00Z"},
            {"id": C2, "clientId": CLIENT, "partnerId": P_TOKEN, "name": "Desk 2", "nonce": "seed-n2", "active": false,
             "connectionKey": {"schema": "token", "connectionToken": "t2"}, "createdAt": "2026-01-02T00:00:00Z",
             "partnersConnectionId": "4a1e5c2b-0000-4000-8000-00000000aaaa", "partnersClientId": "4a1e5c2b-0000-4000-8000-00000000bbbb"},
            {"id": C3, "clientId": CLIENT, "partnerId": P_APIKEY, "name": "Desk 3", "nonce": "seed-n3",
             "connectionKey": {"schema": "apiKeyAndSecret", "apiKey": "k", "apiSecret": "s"}, "createdAt": "2026-01-03T00:00:00Z"},
            {"id": C_OTHER, "clientId": "6f1c9a52-3c1e-4f7a-9d4b-2f0d8c1e7a09", "partnerId": P_TOKEN, "name": "Other desk",
             "nonce": "seed-o", "connectionKey": {"schema": "token", "connectionToken": "to"}, "createdAt": "2026-01-04T00:00:00Z"}
        ]
    }})
    .to_string()
}

struct Env {
    srv: patchbay::Running,
    http: reqwest::Client,
    partner: Partner,
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("http://{}{BASE}{path}", self.srv.addr)
    }
    async fn get(&self, token: &str, path: &str) -> Answer {
        call(self.http.get(self.url(path)).bearer_auth(token)).await
    }
    async fn send(&self, method: reqwest::Method, token: &str, path: &str, body: &Value) -> Answer {
        call(self.http.request(method, self.url(path)).bearer_auth(token).json(body)).await
    }
}

async fn env(db: &patchbay_store::testing::TestDb, fail_first: usize) -> Env {
    let (partner, url) = partner_server(fail_first).await;
    let srv = boot(db, Some(ADMIN)).await;
    let http = reqwest::Client::new();
    let r = call(http.post(format!("http://{}/admin/v1/seed", srv.addr)).bearer_auth(ADMIN).body(seed(&url))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    Env { srv, http, partner }
}

fn err(msg: &str) -> Value {
    json!({ "error": msg })
}

fn ids(a: &Answer) -> Vec<String> {
    a.body["connections"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

both_backends!(get_client_connection_seed_001, |db| {
    let e = env(&db, 0).await;
    let a = e.get("alice-ro", &format!("/ent-client/clients/connections/{C1}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.headers["content-type"], "application/json");
    let c = &a.body["connection"];
    let updated = c["updatedAt"].as_str().unwrap().to_string();
    assert!(updated.len() == 24 && updated.ends_with('Z'), "{updated}");
    assert_eq!(
        a.body,
        json!({"connection": {
            "id": C1, "name": "Desk 1", "clientId": CLIENT, "partnerId": P_TOKEN,
            "networkAccountId": derived_uuid("networkAccount", C1),
            "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": updated, "active": true,
            "proof": proof(&format!("seed:{C1}"), "seed-n1"), "nonce": "seed-n1",
            "partnersConnectionId": null, "partnersClientId": null, "initialized": false
        }})
    );
    assert!(!a.body.to_string().contains("SEEDED-SECRET-TOKEN"), "the connection key is never returned");
    let init = e.get("alice-ro", &format!("/ent-client/clients/connections/{C2}")).await;
    assert_eq!(init.body["connection"]["initialized"], true);
    assert_eq!(init.body["connection"]["partnersClientId"], "4a1e5c2b-0000-4000-8000-00000000bbbb");
    // Errors of seed 001.
    assert_eq!(e.get("alice-ro", "/ent-client/clients/connections/not-a-uuid").await.status, 400);
    let a = e.get("alice-ro", "/ent-client/clients/connections/not-a-uuid").await;
    assert_eq!(a.body, err("Invalid UUID format for connectionId: \"not-a-uuid\"."));
    let a = call(e.http.get(e.url(&format!("/ent-client/clients/connections/{C1}")))).await;
    assert_eq!((a.status, a.body), (401, err("Unauthorized: a bearer access token is required.")));
    let a = e.get("nobody", &format!("/ent-client/clients/connections/{C1}")).await;
    assert_eq!((a.status, a.body), (401, err("Unauthorized: the access token is invalid or expired.")));
    let a = e.get("erin-rw", &format!("/ent-client/clients/connections/{C1}")).await;
    assert_eq!((a.status, a.body), (401, err("Caller is not a member of the enterprise.")));
    let a = e.get("alice-ro", &format!("/ent-unlicensed/clients/connections/{C1}")).await;
    assert_eq!((a.status, a.body), (403, err("Enterprise does not have OES license.")));
    let a = e.get("alice-none", &format!("/ent-client/clients/connections/{C1}")).await;
    assert_eq!((a.status, a.body), (403, err("The access token lacks the settlement_network_read scope.")));
    let a = e.get("alice-ro", &format!("/ent-nowhere/clients/connections/{C1}")).await;
    assert_eq!((a.status, a.body), (404, err("Enterprise ent-nowhere not found.")));
    // Another client's connection is not found, not forbidden.
    let a = e.get("alice-ro", &format!("/ent-client/clients/connections/{C_OTHER}")).await;
    assert_eq!((a.status, a.body), (404, err(&format!("Connection {C_OTHER} not found."))));
    let a = e.get("alice-ro", &format!("/ent-client/clients/connections/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(a.status, 404);
    let a = call(e.http.get(format!("http://{}{BASE}//clients/connections/{C1}", e.srv.addr)).bearer_auth("alice-ro"))
        .await;
    assert_eq!((a.status, a.body), (400, err("enterpriseId must not be empty.")));
    e.srv.shutdown().await.unwrap();
});

both_backends!(list_partner_connections_seed_000, |db| {
    let e = env(&db, 0).await;
    let all = e.get("erin-rw", "/ent-partner/partners/connections").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(ids(&all), [C1, C2, C3, C_OTHER], "ordered by createdAt, then id");
    assert_eq!(all.body.as_object().unwrap().len(), 1, "only the array key");
    let keys: Vec<&String> = all.body["connections"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 13);
    // Every filter, in each accepted form.
    let q = |s: &str| format!("/ent-partner/partners/connections?{s}");
    assert_eq!(ids(&e.get("erin-rw", &q("active=false")).await), [C2]);
    assert_eq!(ids(&e.get("erin-rw", &q(&format!("clientIds={CLIENT}&active=true"))).await), [C1, C3]);
    assert_eq!(ids(&e.get("erin-rw", &q(&format!("connectionIds={C1}&connectionIds={C3}"))).await), [C1, C3]);
    assert_eq!(ids(&e.get("erin-rw", &q(&format!("connectionIds[]={C1}&connectionIds[]={C3}"))).await), [C1, C3]);
    assert_eq!(ids(&e.get("erin-rw", &q(&format!("connectionIds={C1},{C_OTHER}"))).await), [C1, C_OTHER]);
    assert_eq!(ids(&e.get("erin-rw", &q(&format!("partnerIds={P_APIKEY}"))).await), [C3]);
    assert_eq!(ids(&e.get("erin-rw", &q("partnersClientIds=4a1e5c2b-0000-4000-8000-00000000bbbb")).await), [C2]);
    assert_eq!(ids(&e.get("erin-rw", &q("partnersConnectionIds=4a1e5c2b-0000-4000-8000-00000000aaaa")).await), [C2]);
    assert!(ids(&e.get("erin-rw", &q("partnersConnectionIds=unknown")).await).is_empty());
    // Paging: zero-based pageNumber skips pageSize * pageNumber.
    assert_eq!(ids(&e.get("erin-rw", &q("pageSize=2")).await), [C1, C2]);
    assert_eq!(ids(&e.get("erin-rw", &q("pageSize=2&pageNumber=1")).await), [C3, C_OTHER]);
    assert!(ids(&e.get("erin-rw", &q("pageSize=2&pageNumber=2")).await).is_empty());
    // BitGoJS sends filters as a JSON body on GET; merged with the query.
    let body = json!({"connectionIds": [C1, C2], "active": "true"});
    let a = call(e.http.get(e.url("/ent-partner/partners/connections?pageSize=10")).bearer_auth("erin-rw").json(&body))
        .await;
    assert_eq!(ids(&a), [C1]);
    // Invalid query values: 400 with {"error"}.
    for (query, msg) in [
        ("pageSize=0", "Invalid value for pageSize: expected an integer from 1 to 1000."),
        ("pageSize=1001", "Invalid value for pageSize: expected an integer from 1 to 1000."),
        ("pageNumber=-1", "Invalid value for pageNumber: expected a non-negative integer."),
        ("pageNumber=abc", "Invalid value for pageNumber: expected a non-negative integer."),
        ("active=maybe", "Invalid value for active: expected true or false."),
        ("clientIds=123", "Invalid value for clientIds: \"123\" is not a UUID."),
        ("partnersClientIds=", "Invalid value for partnersClientIds: values must not be empty."),
    ] {
        let a = e.get("erin-rw", &q(query)).await;
        assert_eq!((a.status, a.body), (400, err(msg)), "{query}");
    }
    for query in ["partnersClientIds=a%00", "partnersConnectionIds=%00"] {
        let a = e.get("erin-rw", &q(query)).await;
        assert_eq!((a.status, ids(&a)), (200, Vec::<String>::new()), "{query}: {}", a.body);
    }
    let a = call(e.http.get(e.url("/ent-partner/partners/connections")).bearer_auth("erin-rw").body("[1,2]")).await;
    assert_eq!((a.status, a.body), (400, err("The request body must be a JSON object of filters.")));
    // Errors of seed 000.
    assert_eq!(e.get("alice-ro", "/ent-partner/partners/connections").await.status, 401);
    assert_eq!(e.get("alice-ro", "/ent-unlicensed/partners/connections").await.status, 403);
    assert_eq!(e.get("erin-rw", "/ent-missing/partners/connections").await.status, 404);
    let a = call(e.http.get(format!("http://{}{BASE}//partners/connections", e.srv.addr)).bearer_auth("erin-rw")).await;
    assert_eq!(a.status, 400);
    // A partner only sees connections to its own partners; the client's side sees its own.
    assert!(ids(&e.get("otto-rw", "/ent-de/partners/connections").await).is_empty());
    let a = e.get("erin-rw", &format!("/ent-partner/partners/connections/{C_OTHER}")).await;
    assert_eq!((a.status, a.body["connection"]["name"].as_str()), (200, Some("Other desk")));
    assert_eq!(e.get("otto-rw", &format!("/ent-de/partners/connections/{C1}")).await.status, 404);
    assert_eq!(e.get("erin-rw", "/ent-partner/partners/connections/xyz").await.status, 400);
    e.srv.shutdown().await.unwrap();
});

both_backends!(list_client_connections_filters, |db| {
    let e = env(&db, 0).await;
    assert_eq!(ids(&e.get("alice-ro", "/ent-client/clients/connections").await), [C1, C2, C3]);
    assert_eq!(ids(&e.get("otto-rw", "/ent-other/clients/connections").await), [C_OTHER]);
    assert_eq!(
        ids(&e.get("alice-ro", "/ent-client/clients/connections?names=Desk%202&names=Desk%203").await),
        [C2, C3]
    );
    assert_eq!(
        ids(&e.get("alice-ro", "/ent-client/clients/connections?active=true&pageSize=1&pageNumber=1").await),
        [C3]
    );
    assert_eq!(
        ids(&e.get("alice-ro", &format!("/ent-client/clients/connections?partnerIds={P_TOKEN}")).await),
        [C1, C2]
    );
    // BitGoJS types the filters as strings in the body.
    let body = json!({"active": "false", "names": "Desk 2"});
    let a = call(e.http.get(e.url("/ent-client/clients/connections")).bearer_auth("alice-ro").json(&body)).await;
    assert_eq!(ids(&a), [C2]);
    assert_eq!(e.get("alice-ro", "/ent-client/clients/connections?names=").await.status, 400);
    // A NUL matches no stored name (on PostgreSQL it was a database error, a 500).
    let a = e.get("alice-ro", "/ent-client/clients/connections?names=Desk%002").await;
    assert_eq!((a.status, ids(&a)), (200, Vec::<String>::new()), "{}", a.body);
    assert_eq!(ids(&e.get("alice-ro", "/ent-client/clients/connections?names=Desk%202&names=x%00").await), [C2]);
    let body = json!({"names": ["Desk\u{0}"]});
    let a = call(e.http.get(e.url("/ent-client/clients/connections")).bearer_auth("alice-ro").json(&body)).await;
    assert_eq!((a.status, ids(&a)), (200, Vec::<String>::new()), "{}", a.body);
    e.srv.shutdown().await.unwrap();
});

fn connect_body(partner: &str, name: &str, nonce: &str, token: &str, key: &str) -> Value {
    let payload = format!(
        r#"{{"partnerId":"{partner}","name":"{name}","nonce":"{nonce}","connectionKey":{{"schema":"token","connectionToken":"{token}"}}}}"#
    );
    let signature = sign_message(payload.as_bytes(), key).unwrap();
    json!({"partnerId": partner, "name": name, "nonce": nonce,
           "connectionKey": {"schema": "token", "connectionToken": token},
           "payload": payload, "signature": signature, "encrypt": false})
}

both_backends!(connect_to_partner_then_partner_initialises, |db| {
    let e = env(&db, 1).await;
    // The signing payload, by GET (read scope) and POST (write scope).
    let req = json!({"partnerId": P_TOKEN, "name": "Desk 9", "nonce": "n-9",
                     "connectionKey": {"connectionToken": "tok-9", "schema": "token"}});
    let expected = r#"{"partnerId":"9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02","name":"Desk 9","nonce":"n-9","connectionKey":{"schema":"token","connectionToken":"tok-9"}}"#;
    let a = call(e.http.get(e.url("/ent-client/clients/connections/signing")).bearer_auth("alice-ro").json(&req)).await;
    assert_eq!((a.status, a.body.clone()), (200, json!({"payload": expected})));
    let a = e.send(reqwest::Method::POST, "alice-rw", "/ent-client/clients/connections/signing", &req).await;
    assert_eq!(a.body, json!({"payload": expected}));
    let a = e.send(reqwest::Method::POST, "alice-ro", "/ent-client/clients/connections/signing", &req).await;
    assert_eq!((a.status, a.body), (403, err("The access token lacks the settlement_network_write scope.")));
    // Sign exactly that payload and connect.
    let signature = sign_message(expected.as_bytes(), ALICE_KEY).unwrap();
    let mut body = req.clone();
    body["payload"] = json!(expected);
    body["signature"] = json!(signature);
    let a = e.send(reqwest::Method::POST, "alice-rw", "/ent-client/clients/connections", &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let c = a.body["connection"].clone();
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["name"], "Desk 9");
    assert_eq!(c["clientId"], CLIENT);
    assert_eq!(c["partnerId"], P_TOKEN);
    assert_eq!(c["nonce"], "n-9");
    assert_eq!(c["active"], true);
    assert_eq!(c["initialized"], false);
    assert_eq!(c["partnersConnectionId"], Value::Null);
    assert_eq!(c["proof"], proof(expected, &signature));
    assert_eq!(c["createdAt"], c["updatedAt"]);
    assert!(uuid::Uuid::parse_str(c["networkAccountId"].as_str().unwrap()).is_ok());
    assert!(!a.body.to_string().contains("tok-9"));
    // The same nonce again: 400.
    let a = e.send(reqwest::Method::POST, "alice-rw", "/ent-client/clients/connections", &body).await;
    assert_eq!((a.status, a.body), (400, err("The nonce has already been used.")));
    // The partner is called (first attempt fails with 500, then retried) and initialises it.
    let mut got = Value::Null;
    for _ in 0..300 {
        let a = e.get("alice-ro", &format!("/ent-client/clients/connections/{id}")).await;
        if a.body["connection"]["initialized"] == true {
            got = a.body["connection"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got["partnersClientId"], "pc-acme", "initialised: {got}");
    assert_eq!(got["partnersConnectionId"], format!("pconn-{}", &id[..8]));
    let calls = e.partner.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "one failure, one success");
    assert_eq!(
        calls[1].1,
        json!({"clientId": CLIENT, "clientWalletId": "wallet-acme-1", "connectionId": id, "partnerId": P_TOKEN, "connectionToken": "tok-9"})
    );
    // The JWT verifies with the published key; jti differs per call; exp - iat = 60.
    let pem = e
        .http
        .get(format!("http://{}/admin/v1/network/signing-key", e.srv.addr))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(pem.headers()["content-type"], "application/x-pem-file");
    let pem = pem.text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "jti"]);
    let mut jtis = Vec::new();
    for (jwt, _) in &calls {
        let data = jsonwebtoken::decode::<Value>(jwt, &key, &validation).expect("JWT verifies");
        assert_eq!(data.claims["exp"].as_i64().unwrap() - data.claims["iat"].as_i64().unwrap(), 60);
        jtis.push(data.claims["jti"].as_str().unwrap().to_string());
    }
    assert_ne!(jtis[0], jtis[1]);
    // Partner side sees it, initialised.
    let a = e.get("erin-rw", &format!("/ent-partner/partners/connections/{id}")).await;
    assert_eq!(a.body["connection"]["initialized"], true);
    e.srv.shutdown().await.unwrap();
});

both_backends!(connect_checks_in_order, |db| {
    let e = env(&db, 0).await;
    let post = |body: Value| {
        let e = &e;
        async move { e.send(reqwest::Method::POST, "alice-rw", "/ent-client/clients/connections", &body).await }
    };
    // 1. Body shape: 400.
    let good = connect_body(P_TOKEN, "D", "n-1", "t", ALICE_KEY);
    for (field, msg) in [
        ("partnerId", "partnerId is required."),
        ("name", "name is required."),
        ("connectionKey", "connectionKey is required."),
        ("nonce", "nonce is required."),
        ("payload", "payload is required."),
        ("signature", "signature is required."),
    ] {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(field);
        let a = post(b).await;
        assert_eq!((a.status, a.body), (400, err(msg)), "{field}");
    }
    let mut b = good.clone();
    b["partnerId"] = json!("nope");
    assert_eq!(post(b).await.body, err("Invalid UUID format for partnerId."));
    let mut b = good.clone();
    b["name"] = json!("");
    assert_eq!(post(b).await.body, err("name must not be empty."));
    // A NUL cannot be stored (PostgreSQL text): refused before anything else on both backends.
    let a = post(connect_body(P_TOKEN, "D\u{0}", "n-1", "t", ALICE_KEY)).await;
    assert_eq!((a.status, a.body), (400, err("name must not contain a NUL character.")));
    let a = post(connect_body(P_TOKEN, "D", "n\u{0}1", "t", ALICE_KEY)).await;
    assert_eq!((a.status, a.body), (400, err("nonce must not contain a NUL character.")));
    let mut b = good.clone();
    b["connectionKey"] = json!({"schema": "clientIdAndSecret"});
    assert_eq!(post(b).await.status, 400);
    let a = call(e.http.post(e.url("/ent-client/clients/connections")).bearer_auth("alice-rw").body("not json")).await;
    assert_eq!((a.status, a.body), (400, err("The request body must be a JSON object.")));
    // 2. Unknown partner: 404.
    let missing = "9a2b4c6d-8e0f-4a1b-8c3d-000000000000";
    let a = post(connect_body(missing, "D", "n-1", "t", ALICE_KEY)).await;
    assert_eq!((a.status, a.body), (404, err(&format!("Partner {missing} not found."))));
    // 3. Inactive, schema mismatch, other trust org: 422.
    let a = post(connect_body(P_INACTIVE, "D", "n-1", "t", ALICE_KEY)).await;
    assert_eq!((a.status, a.body), (422, err("The partner is not active.")));
    let a = post(connect_body(P_APIKEY, "D", "n-1", "t", ALICE_KEY)).await;
    assert_eq!(
        (a.status, a.body),
        (
            422,
            err("connectionKey.schema \"token\" does not match the partner's connectionKeySchema \"apiKeyAndSecret\".")
        )
    );
    let a = post(connect_body(P_GERMANY, "D", "n-1", "t", ALICE_KEY)).await;
    assert_eq!((a.status, a.body), (422, err("The client and the partner belong to different trust orgs.")));
    // 4. Payload must carry the same data: 400.
    let mut b = good.clone();
    b["name"] = json!("Another name");
    assert_eq!(post(b).await.body, err("Payload does not match request data: name."));
    let mut b = good.clone();
    b["connectionKey"]["connectionToken"] = json!("other");
    assert_eq!(post(b).await.body, err("Payload does not match request data: connectionKey."));
    let mut b = good.clone();
    b["payload"] = json!("not json");
    assert_eq!(post(b).await.body, err("Invalid payload format: payload must be a JSON object string."));
    // 5. Signature: wrong key, tampered payload, malformed: 401.
    let a = post(connect_body(P_TOKEN, "D", "n-1", "t", OTHER_KEY)).await;
    assert_eq!((a.status, a.body), (401, err("Payload/Signature are not valid.")));
    let mut b = good.clone();
    b["payload"] = json!(b["payload"].as_str().unwrap().replace("\"D\"", "\"D\" "));
    assert_eq!(post(b).await.status, 401, "re-spaced payload: same fields, different bytes");
    let mut b = good.clone();
    b["signature"] = json!("abcd");
    assert_eq!(post(b).await.status, 401);
    // The seeded nonce of this client is taken too.
    let a = post(connect_body(P_TOKEN, "D", "seed-n1", "t", ALICE_KEY)).await;
    assert_eq!((a.status, a.body), (400, err("The nonce has already been used.")));
    // A good request succeeds; the read-only token may not write.
    assert_eq!(post(good.clone()).await.status, 200);
    let a = e.send(reqwest::Method::POST, "alice-ro", "/ent-client/clients/connections", &good).await;
    assert_eq!(a.status, 403);
    // An enterprise without an OES client cannot connect.
    let a = e.send(reqwest::Method::POST, "erin-rw", "/ent-partner/clients/connections", &good).await;
    assert_eq!((a.status, a.body), (404, err("The enterprise is not onboarded as an OES client.")));
    e.srv.shutdown().await.unwrap();
});

both_backends!(update_connection_name_and_active, |db| {
    let e = env(&db, 0).await;
    let path = format!("/ent-client/clients/connections/{C1}");
    let a = e.send(reqwest::Method::PUT, "alice-rw", &path, &json!({"active": false})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        (a.body["connection"]["active"].clone(), a.body["connection"]["name"].clone()),
        (json!(false), json!("Desk 1"))
    );
    assert_ne!(a.body["connection"]["updatedAt"], a.body["connection"]["createdAt"]);
    let a = e.send(reqwest::Method::PUT, "alice-rw", &path, &json!({"name": "Renamed"})).await;
    assert_eq!(
        (a.body["connection"]["active"].clone(), a.body["connection"]["name"].clone()),
        (json!(false), json!("Renamed"))
    );
    // Deactivated connections stay readable and listable with active=false.
    assert_eq!(ids(&e.get("alice-ro", "/ent-client/clients/connections?active=false").await), [C1, C2]);
    for (body, msg) in [
        (json!({"active": "no"}), "active must be a boolean."),
        (json!({"name": ""}), "name must be a non-empty string."),
        (json!({"name": 5}), "name must be a non-empty string."),
        // Refused on both backends (PostgreSQL text cannot hold a NUL: it was a 500 there).
        (json!({"name": "Desk\u{0}1", "active": true}), "name must not contain a NUL character."),
    ] {
        let a = e.send(reqwest::Method::PUT, "alice-rw", &path, &body).await;
        assert_eq!((a.status, a.body), (400, err(msg)));
    }
    // Nothing was written by the refused updates.
    let a = e.get("alice-ro", &path).await;
    assert_eq!(
        (a.body["connection"]["name"].clone(), a.body["connection"]["active"].clone()),
        (json!("Renamed"), json!(false))
    );
    let a = e
        .send(
            reqwest::Method::PUT,
            "alice-rw",
            &format!("/ent-client/clients/connections/{C_OTHER}"),
            &json!({"active": true}),
        )
        .await;
    assert_eq!(a.status, 404);
    assert_eq!(e.send(reqwest::Method::PUT, "alice-ro", &path, &json!({"active": true})).await.status, 403);
    e.srv.shutdown().await.unwrap();
});

both_backends!(partners_directory_and_onboarding, |db| {
    let e = env(&db, 0).await;
    let a = e.get("alice-ro", "/ent-client/partners").await;
    assert_eq!(a.status, 200);
    let names: Vec<&str> = a.body["partners"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Example Exchange", "Dormant", "Keyed", "Berlin"]);
    assert_eq!(
        a.body["partners"][0],
        json!({"id": P_TOKEN, "name": "Example Exchange", "institutionIdentifier": "example-exchange",
               "connectionKeySchema": "token", "active": true, "trustOrg": "BitGo Trust", "stablePartner": true,
               "enterpriseId": "ent-partner"})
    );
    let a = e.get("alice-ro", "/ent-client/partners?filterByTrustOrg=true&active=true").await;
    assert_eq!(a.body["partners"].as_array().unwrap().len(), 2);
    let a = e.get("alice-ro", &format!("/ent-client/partners?ids={P_APIKEY}&institutionIdentifiers=keyed")).await;
    assert_eq!(a.body["partners"][0]["id"], P_APIKEY);
    assert_eq!(e.get("alice-ro", "/ent-client/partners?ids=x").await.status, 400);
    // Create a partner: 422 unless eligible.
    let body = json!({"name": "New Venue", "broker": false, "institutionIdentifier": "new-venue", "connectionKeySchema": "token"});
    let a = e.send(reqwest::Method::POST, "alice-rw", "/ent-client/partners", &body).await;
    assert_eq!((a.status, a.body), (422, err("No partner configuration has been provisioned for this enterprise.")));
    let a = e.send(reqwest::Method::POST, "erin-rw", "/ent-partner/partners", &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let p = &a.body["partner"];
    assert_eq!(
        (p["enterpriseId"].as_str(), p["trustOrg"].as_str(), p["active"].as_bool()),
        (Some("ent-partner"), Some("BitGo Trust"), Some(true))
    );
    assert_eq!((p["broker"].as_bool(), p["allocationPoliciesEnabled"].as_bool()), (Some(false), Some(false)));
    assert!(p["clientId"].is_string());
    let a = e.send(reqwest::Method::POST, "erin-rw", "/ent-partner/partners", &json!({"name": "x"})).await;
    assert_eq!((a.status, a.body), (400, err("institutionIdentifier is required.")));
    // Onboarding is idempotent: the existing client comes back.
    let a = e.send(reqwest::Method::POST, "alice-rw", "/ent-client/clients", &json!({})).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        (a.body["client"]["id"].as_str(), a.body["client"]["walletId"].as_str()),
        (Some(CLIENT), Some("wallet-acme-1"))
    );
    assert_eq!(a.body["client"]["trustOrg"], "BitGo Trust");
    let a = e.send(reqwest::Method::POST, "otto-rw", "/ent-de/clients", &json!({"publicKey": "nope"})).await;
    assert_eq!(a.status, 400);
    let a = e
        .send(reqwest::Method::POST, "otto-rw", "/ent-de/clients", &json!({"publicKey": public_key_of(OTHER_KEY)}))
        .await;
    assert_eq!((a.status, a.body["client"]["enterpriseId"].as_str()), (200, Some("ent-de")));
    e.srv.shutdown().await.unwrap();
});

both_backends!(rate_limited_callers_get_429_in_the_network_shape, |db| {
    let (_partner, url) = partner_server(0).await;
    let mut c = common::config(&db, Some(ADMIN));
    c.rate_limits.network = Some(patchbay_core::ratelimit::RateQuota { per_second: 1, burst: 2 });
    let srv = patchbay::start(&c, patchbay_store::worker::Registry::new()).await.unwrap();
    let http = reqwest::Client::new();
    let r = call(http.post(format!("http://{}/admin/v1/seed", srv.addr)).bearer_auth(ADMIN).body(seed(&url))).await;
    assert_eq!(r.status, 200);
    let get =
        || call(http.get(format!("http://{}{BASE}/ent-client/clients/connections", srv.addr)).bearer_auth("alice-ro"));
    assert_eq!(get().await.status, 200);
    assert_eq!(get().await.status, 200);
    let a = get().await;
    assert_eq!(a.status, 429);
    assert_eq!(a.headers["retry-after"], "1");
    assert_eq!(a.body, err("Rate limit exceeded; retry after 1 seconds."));
    // Another principal has its own bucket.
    let other =
        call(http.get(format!("http://{}{BASE}/ent-partner/partners/connections", srv.addr)).bearer_auth("erin-rw"))
            .await;
    assert_eq!(other.status, 200);
    srv.shutdown().await.unwrap();
});

both_backends!(schemathesis_findings_stay_fixed, |db| {
    let e = env(&db, 0).await;
    // A lone comma carries no values (it is not an empty value).
    let a = e.get("alice-ro", "/ent-client/partners?institutionIdentifiers=%2C").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(e.get("alice-ro", "/ent-client/partners?institutionIdentifiers=").await.status, 400);
    // The onboarding body is validated even when the client exists.
    let a = e.send(reqwest::Method::POST, "alice-rw", "/ent-client/clients", &json!({"walletId": {}})).await;
    assert_eq!((a.status, a.body), (400, err("walletId must be a non-empty string.")));
    e.srv.shutdown().await.unwrap();
});

both_backends!(supported_currencies_per_partner, |db| {
    let e = env(&db, 0).await;
    let path = format!(
        "/ent-client/supportedCurrencies?partnerIds={P_TOKEN},{P_APIKEY}&partnerIds=9a2b4c6d-8e0f-4a1b-8c3d-000000000000"
    );
    let a = e.get("alice-ro", &path).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body,
        json!({"supportedCurrencies": {
            P_TOKEN: [{"ofcCurrency": "ofcbtc", "backingCurrency": "btc", "partnerNames": ["Example Exchange"]},
                      {"ofcCurrency": "ofcusd", "backingCurrency": "fiatusd", "partnerNames": ["Example Exchange"]}],
            P_APIKEY: []},
            "domain": "bitgo-network"})
    );
    // BitGoJS sends its parameters as a GET body.
    let a = call(
        e.http
            .get(e.url("/ent-client/supportedCurrencies"))
            .bearer_auth("alice-ro")
            .json(&json!({"partnerIds": [P_TOKEN]})),
    )
    .await;
    assert_eq!(a.body["supportedCurrencies"][P_TOKEN][0]["ofcCurrency"], "ofcbtc");
    for (q, msg) in [("", "partnerIds is required."), ("?partnerIds=nope", "")] {
        let a = e.get("alice-ro", &format!("/ent-client/supportedCurrencies{q}")).await;
        assert_eq!(a.status, 400, "{q}: {}", a.body);
        if !msg.is_empty() {
            assert_eq!(a.body, err(msg));
        }
    }
    assert_eq!(e.get("nobody", &format!("/ent-client/supportedCurrencies?partnerIds={P_TOKEN}")).await.status, 401);
    e.srv.shutdown().await.unwrap();
});
