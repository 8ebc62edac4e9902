//! The OES ledger over real HTTP on both backends: balances, allocations and
//! deallocations (signed by the client, cleared or released by the partner),
//! exact amounts, nonces and idempotence, and 50 concurrent allocations at one
//! balance. Every answer is checked against BitGo's own spec.

use patchbay_core::network::{public_key_of, sign_message};
use serde_json::{Value, json};

#[path = "common/bitgo_spec.rs"]
mod bitgo_spec;
mod common;
use common::{ADMIN, Answer, boot, call};

const ALICE_KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const ERIN_KEY: &str = "3333333333333333333333333333333333333333333333333333333333333333";
const CLIENT: &str = "6f1c9a52-3c1e-4f7a-9d4b-2f0d8c1e7a01";
const PARTNER_CLIENT: &str = "6f1c9a52-3c1e-4f7a-9d4b-2f0d8c1e7a02";
const P_ASYNC: &str = "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02";
const P_SYNC: &str = "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c06";
const C1: &str = "c0a80101-0000-4000-8000-000000000001";
const C2: &str = "c0a80101-0000-4000-8000-000000000002";
const BASE: &str = "/api/network/v1/enterprises";
/// 2^70 base units: far past what a float holds exactly.
const BIG: &str = "1180591620717411303424";

fn seed() -> String {
    json!({"network": {
        "enterprises": [
            {"id": "ent-client", "name": "Acme", "oesLicense": true, "trustOrg": "BitGo Trust"},
            {"id": "ent-partner", "name": "Exchange", "oesLicense": true, "trustOrg": "BitGo Trust", "partnerEligible": true}
        ],
        "users": [
            {"id": "alice", "enterprises": ["ent-client"],
             "tokens": [{"token": "alice-rw", "scopes": ["settlement_network_read", "settlement_network_write"]},
                        {"token": "alice-ro", "scopes": ["settlement_network_read"]}]},
            {"id": "erin", "enterprises": ["ent-partner"],
             "tokens": [{"token": "erin-rw", "scopes": ["settlement_network_read", "settlement_network_write"]}]}
        ],
        "clients": [
            {"id": CLIENT, "enterpriseId": "ent-client", "walletId": "wallet-acme-1",
             "publicKey": public_key_of(ALICE_KEY).unwrap(),
             "funds": {"ofcusd": "1000", "ofceth": BIG}},
            {"id": PARTNER_CLIENT, "enterpriseId": "ent-partner", "walletId": "wallet-exchange",
             "publicKey": public_key_of(ERIN_KEY).unwrap()}
        ],
        "partners": [
            {"id": P_ASYNC, "enterpriseId": "ent-partner", "name": "Example Exchange", "institutionIdentifier": "example-exchange",
             "connectionKeySchema": "token", "trustOrg": "BitGo Trust", "asyncAllocations": true,
             "supportedCurrencies": [{"ofcCurrency": "ofcusd"}, {"ofcCurrency": "ofceth"}],
             "funds": {"ofcusd": "5000"}},
            {"id": P_SYNC, "enterpriseId": "ent-partner", "name": "Instant Exchange", "institutionIdentifier": "instant",
             "connectionKeySchema": "token", "trustOrg": "BitGo Trust"}
        ],
        "connections": [
            {"id": C1, "clientId": CLIENT, "partnerId": P_ASYNC, "name": "Desk 1", "nonce": "seed-n1",
             "connectionKey": {"schema": "token", "connectionToken": "t1"}, "createdAt": "2026-01-01T00:00:00Z",
             "partnersConnectionId": "4a1e5c2b-0000-4000-8000-00000000aaaa", "partnersClientId": "4a1e5c2b-0000-4000-8000-00000000bbbb"},
            {"id": C2, "clientId": CLIENT, "partnerId": P_SYNC, "name": "Desk 2", "nonce": "seed-n2",
             "connectionKey": {"schema": "token", "connectionToken": "t2"}, "createdAt": "2026-01-02T00:00:00Z",
             "funds": {"ofcusd": "7"}}
        ]
    }})
    .to_string()
}

struct Env {
    srv: patchbay::Running,
    http: reqwest::Client,
}

impl Env {
    async fn new(db: &patchbay_store::testing::TestDb) -> Env {
        let srv = boot(db, Some(ADMIN)).await;
        let http = reqwest::Client::new();
        let a = http.post(format!("http://{}/admin/v1/seed", srv.addr)).bearer_auth(ADMIN).body(seed()).send().await;
        assert_eq!(a.unwrap().status(), 200);
        Env { srv, http }
    }
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

/// A signed allocation or deallocation body, its payload in the SDK's field order.
fn signed_step(conn: &str, currency: &str, qty: &str, external: &str, nonce: &str, key: &str) -> Value {
    let payload = format!(
        r#"{{"connectionId":"{conn}","amount":{{"currency":"{currency}","quantity":"{qty}"}},"clientExternalId":"{external}","nonce":"{nonce}"}}"#
    );
    let signature = sign_message(payload.as_bytes(), key).unwrap();
    json!({"amount": {"currency": currency, "quantity": qty}, "clientExternalId": external, "nonce": nonce,
           "payload": payload, "signature": signature})
}

/// The partner's signed clear or release.
fn partner_update(kind: &str, id: &str, conn: &str, qty: &str, status: &str, nonce: &str) -> Value {
    let (id_key, pid_key) = if kind == "allocation" {
        ("allocationId", "partnersAllocationId")
    } else {
        ("deallocationId", "partnersDeallocationId")
    };
    let mut body = json!({id_key: id, "amount": {"currency": "ofcusd", "quantity": qty}, "clientId": CLIENT,
        "connectionId": conn, "partnersClientId": "pcl", "partnersConnectionId": "pcn", pid_key: format!("p-{id}"),
        "status": status, "nonce": nonce});
    let payload = body.to_string();
    body["signature"] = json!(sign_message(payload.as_bytes(), ERIN_KEY).unwrap());
    body["payload"] = json!(payload);
    body
}

fn balance(b: &Value, currency: &str) -> (String, String) {
    let x = &b[currency];
    (x["available"].as_str().unwrap_or("-").to_string(), x["held"].as_str().unwrap_or("-").to_string())
}

fn s(a: &str, h: &str) -> (String, String) {
    (a.to_string(), h.to_string())
}

const ALLOC: &str = "/clients/connections/{connectionId}/allocations";
const DEALLOC: &str = "/clients/connections/{connectionId}/deallocations";

both_backends!(allocations_move_funds_exactly_through_their_states, |db| {
    let e = Env::new(&db).await;
    let acct1 = patchbay_core::network::derived_uuid("networkAccount", C1);
    let acct2 = patchbay_core::network::derived_uuid("networkAccount", C2);

    // Seeded funds.
    let b = e.get("alice-ro", "/ent-client/clients/balances").await;
    assert_eq!(b.status, 200, "{}", b.body);
    bitgo_spec::check("GET", "/clients/balances", 200, &b.body);
    assert_eq!(b.body["clientId"], CLIENT);
    assert_eq!(balance(&b.body["balances"], "ofcusd"), s("1000", "0"));
    assert_eq!(balance(&b.body["balances"], "ofceth"), s(BIG, "0"));
    assert_eq!(b.body["networkBalances"][&acct1]["partnersConnectionId"], "4a1e5c2b-0000-4000-8000-00000000aaaa");
    assert_eq!(b.body["networkBalances"][&acct1]["partnerInstitutionIdentifier"], "example-exchange");
    assert_eq!(balance(&b.body["networkBalances"][&acct2]["balances"], "ofcusd"), s("7", "0"));
    let p = e.get("erin-rw", "/ent-partner/partners/balances").await;
    assert_eq!(p.status, 200, "{}", p.body);
    bitgo_spec::check("GET", "/partners/balances", 200, &p.body);
    assert_eq!(balance(&p.body["balances"], "ofcusd"), s("5000", "0"));
    assert_eq!(p.body["networkBalances"][&acct1]["clientId"], CLIENT);

    // The signing payload, in the SDK's order.
    let body =
        json!({"amount": {"currency": "ofcusd", "quantity": "300"}, "clientExternalId": "ext-1", "nonce": "n-1"});
    let sp = e
        .send(
            reqwest::Method::POST,
            "alice-rw",
            &format!("/ent-client/clients/connections/{C1}/allocations/signing"),
            &body,
        )
        .await;
    assert_eq!(sp.status, 200, "{}", sp.body);
    let want = signed_step(C1, "ofcusd", "300", "ext-1", "n-1", ALICE_KEY);
    assert_eq!(sp.body["payload"], want["payload"]);
    let gp = call(
        e.http
            .get(e.url(&format!("/ent-client/clients/connections/{C1}/allocations/signing")))
            .bearer_auth("alice-ro")
            .json(&body),
    )
    .await;
    assert_eq!((gp.status, &gp.body["payload"]), (200, &want["payload"]));

    // Allocate 300 with an asynchronous partner: reserved, funds held.
    let a = e
        .send(reqwest::Method::POST, "alice-rw", &format!("/ent-client/clients/connections/{C1}/allocations"), &want)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    bitgo_spec::check("POST", ALLOC, 200, &a.body);
    let alloc = a.body["allocation"].clone();
    let id = alloc["id"].as_str().unwrap().to_string();
    assert_eq!(alloc["status"], "reserved");
    assert_eq!(alloc["retriable"], false);
    assert_eq!(alloc["amount"], json!({"currency": "ofcusd", "quantity": "300"}));
    assert_eq!(alloc["initiatedBy"], "alice");
    let b = e.get("alice-ro", "/ent-client/clients/balances").await;
    assert_eq!(balance(&b.body["balances"], "ofcusd"), s("700", "300"));
    // The same request again is answered as before and moves nothing; the nonce cannot be reused otherwise.
    let again = e
        .send(reqwest::Method::POST, "alice-rw", &format!("/ent-client/clients/connections/{C1}/allocations"), &want)
        .await;
    assert_eq!((again.status, &again.body["allocation"]["id"]), (200, &json!(id)));
    let reuse = signed_step(C1, "ofcusd", "1", "ext-other", "n-1", ALICE_KEY);
    let r = e
        .send(reqwest::Method::POST, "alice-rw", &format!("/ent-client/clients/connections/{C1}/allocations"), &reuse)
        .await;
    assert_eq!((r.status, r.body.clone()), (400, json!({"error": "The nonce has already been used."})));
    let clash = signed_step(C1, "ofcusd", "2", "ext-1", "n-x", ALICE_KEY);
    let r = e
        .send(reqwest::Method::POST, "alice-rw", &format!("/ent-client/clients/connections/{C1}/allocations"), &clash)
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // Forged signature, mismatched payload, bad amounts, read-only token.
    let mut forged = signed_step(C1, "ofcusd", "5", "ext-f", "n-f", ERIN_KEY);
    let r = e
        .send(reqwest::Method::POST, "alice-rw", &format!("/ent-client/clients/connections/{C1}/allocations"), &forged)
        .await;
    assert_eq!((r.status, r.body.clone()), (401, json!({"error": "Payload/Signature are not valid."})));
    forged["amount"]["quantity"] = json!("6");
    let r = e
        .send(reqwest::Method::POST, "alice-rw", &format!("/ent-client/clients/connections/{C1}/allocations"), &forged)
        .await;
    assert_eq!((r.status, r.body.clone()), (400, json!({"error": "Payload does not match request data: amount."})));
    for qty in ["0", "-5", "1.5", "1e3", "abc"] {
        let bad = signed_step(C1, "ofcusd", qty, "ext-q", "n-q", ALICE_KEY);
        let r = e
            .send(reqwest::Method::POST, "alice-rw", &format!("/ent-client/clients/connections/{C1}/allocations"), &bad)
            .await;
        assert_eq!(r.status, 400, "{qty}: {}", r.body);
    }
    let unsupported = signed_step(C1, "ofcdoge", "5", "ext-d", "n-d", ALICE_KEY);
    let r = e
        .send(
            reqwest::Method::POST,
            "alice-rw",
            &format!("/ent-client/clients/connections/{C1}/allocations"),
            &unsupported,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = e
        .send(reqwest::Method::POST, "alice-ro", &format!("/ent-client/clients/connections/{C1}/allocations"), &want)
        .await;
    assert_eq!(r.status, 403);

    // Both sides list and get it.
    let l = e.get("alice-ro", "/ent-client/clients/allocations").await;
    bitgo_spec::check("GET", "/clients/allocations", 200, &l.body);
    assert_eq!(l.body["allocations"].as_array().unwrap().len(), 1);
    let l = e.get("erin-rw", &format!("/ent-partner/partners/allocations?statuses=reserved&clientIds={CLIENT}")).await;
    bitgo_spec::check("GET", "/partners/allocations", 200, &l.body);
    assert_eq!(l.body["allocations"][0]["id"], json!(id));
    let g = e.get("erin-rw", &format!("/ent-partner/partners/allocations/{id}")).await;
    bitgo_spec::check("GET", "/partners/allocations/{allocationId}", 200, &g.body);
    assert_eq!(g.body["allocation"], alloc);
    assert_eq!(e.get("alice-ro", &format!("/ent-partner/partners/allocations/{id}")).await.status, 401);
    let missing = e.get("alice-ro", "/ent-client/clients/allocations/c0a80101-0000-4000-8000-00000000ffff").await;
    assert_eq!(missing.status, 404);

    // The partner clears it: funds reach the connection's network account.
    let put = partner_update("allocation", &id, C1, "300", "cleared", "pn-1");
    let u = e.send(reqwest::Method::PUT, "erin-rw", "/ent-partner/partners/allocations", &put).await;
    assert_eq!(u.status, 200, "{}", u.body);
    bitgo_spec::check("PUT", "/partners/allocations", 200, &u.body);
    assert_eq!(u.body["allocationId"], json!(id));
    assert_eq!(u.body["partnersAllocationId"], json!(format!("p-{id}")));
    let b = e.get("alice-ro", "/ent-client/clients/balances").await;
    assert_eq!(balance(&b.body["balances"], "ofcusd"), s("700", "0"));
    assert_eq!(balance(&b.body["networkBalances"][&acct1]["balances"], "ofcusd"), s("300", "0"));
    let g = e.get("alice-ro", &format!("/ent-client/clients/allocations/{id}")).await;
    assert_eq!(g.body["allocation"]["status"], "cleared");
    // The same update again: answered, nothing moves; a release now: 409.
    let u = e
        .send(
            reqwest::Method::PUT,
            "erin-rw",
            "/ent-partner/partners/allocations",
            &partner_update("allocation", &id, C1, "300", "cleared", "pn-2"),
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    let u = e
        .send(
            reqwest::Method::PUT,
            "erin-rw",
            "/ent-partner/partners/allocations",
            &partner_update("allocation", &id, C1, "300", "released", "pn-3"),
        )
        .await;
    assert_eq!(u.status, 409, "{}", u.body);
    bitgo_spec::check("PUT", "/partners/allocations", 409, &u.body);
    let u = e
        .send(
            reqwest::Method::PUT,
            "erin-rw",
            "/ent-partner/partners/allocations",
            &partner_update("allocation", &id, C1, "301", "cleared", "pn-4"),
        )
        .await;
    assert_eq!(u.status, 422, "{}", u.body);

    // More than is available: released, with the error (422), and nothing moves.
    let over = signed_step(C1, "ofcusd", "701", "ext-2", "n-2", ALICE_KEY);
    let r = e
        .send(reqwest::Method::POST, "alice-rw", &format!("/ent-client/clients/connections/{C1}/allocations"), &over)
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    bitgo_spec::check("POST", ALLOC, 422, &r.body);
    assert_eq!(r.body["allocation"]["status"], "released");
    assert_eq!(r.body["error"], "Insufficient ofcusd balance to allocate: 700 available, 701 requested.");

    // Deallocate 100 and let the partner release it: back where it was.
    let d = signed_step(C1, "ofcusd", "100", "ext-3", "n-3", ALICE_KEY);
    let r = e
        .send(reqwest::Method::POST, "alice-rw", &format!("/ent-client/clients/connections/{C1}/deallocations"), &d)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    bitgo_spec::check("POST", DEALLOC, 200, &r.body);
    let did = r.body["deallocation"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["deallocation"]["type"], "deallocation");
    let b = e.get("alice-ro", "/ent-client/clients/balances").await;
    assert_eq!(balance(&b.body["networkBalances"][&acct1]["balances"], "ofcusd"), s("200", "100"));
    let u = e
        .send(
            reqwest::Method::PUT,
            "erin-rw",
            "/ent-partner/partners/deallocations",
            &partner_update("deallocation", &did, C1, "100", "released", "pn-5"),
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    bitgo_spec::check("PUT", "/partners/deallocations", 200, &u.body);
    let b = e.get("alice-ro", "/ent-client/clients/balances").await;
    assert_eq!(balance(&b.body["networkBalances"][&acct1]["balances"], "ofcusd"), s("300", "0"));
    let l = e.get("alice-ro", "/ent-client/clients/allocations?types=deallocation&statuses=released").await;
    assert_eq!(l.body["allocations"].as_array().unwrap().len(), 1);

    // A synchronous partner clears at once; exact huge amounts.
    let big = signed_step(C2, "ofceth", BIG, "ext-4", "n-4", ALICE_KEY);
    let r = e
        .send(reqwest::Method::POST, "alice-rw", &format!("/ent-client/clients/connections/{C2}/allocations"), &big)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    bitgo_spec::check("POST", ALLOC, 200, &r.body);
    assert_eq!(r.body["allocation"]["status"], "cleared");
    let b = e.get("alice-ro", "/ent-client/clients/balances").await;
    assert_eq!(balance(&b.body["balances"], "ofceth"), s("0", "0"));
    assert_eq!(balance(&b.body["networkBalances"][&acct2]["balances"], "ofceth"), s(BIG, "0"));
    // Sorted by quantity as numbers.
    let l = e.get("alice-ro", "/ent-client/clients/allocations?sortField=quantity&sortDirection=DESC").await;
    let q: Vec<&str> =
        l.body["allocations"].as_array().unwrap().iter().map(|a| a["amount"]["quantity"].as_str().unwrap()).collect();
    assert_eq!(q, [BIG, "701", "300", "100"]);
    let bad = e.get("alice-ro", "/ent-client/clients/allocations?sortField=nope").await;
    assert_eq!(bad.status, 400);
});

both_backends!(fifty_concurrent_allocations_never_take_more_than_the_balance, |db| {
    let e = std::sync::Arc::new(Env::new(&db).await);
    // 50 allocations of 30 at a balance of 1000: 33 fit (990), 17 are released.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let body = signed_step(C2, "ofcusd", "30", &format!("race-{i}"), &format!("race-n-{i}"), ALICE_KEY);
            e.send(
                reqwest::Method::POST,
                "alice-rw",
                &format!("/ent-client/clients/connections/{C2}/allocations"),
                &body,
            )
            .await
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let a = t.await.unwrap();
        match a.status {
            200 => ok += 1,
            422 => refused += 1,
            other => panic!("unexpected {other}: {}", a.body),
        }
    }
    assert_eq!((ok, refused), (33, 17));
    let acct2 = patchbay_core::network::derived_uuid("networkAccount", C2);
    let b = e.get("alice-ro", "/ent-client/clients/balances").await;
    assert_eq!(balance(&b.body["balances"], "ofcusd"), s("10", "0"));
    assert_eq!(balance(&b.body["networkBalances"][&acct2]["balances"], "ofcusd"), s("997", "0"));
    let l = e.get("alice-ro", "/ent-client/clients/allocations?statuses=cleared&pageSize=1000").await;
    assert_eq!(l.body["allocations"].as_array().unwrap().len(), 33);
});
