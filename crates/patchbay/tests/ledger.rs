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
        Self::with_seed(db, seed()).await
    }
    async fn with_seed(db: &patchbay_store::testing::TestDb, seed: String) -> Env {
        let srv = boot(db, Some(ADMIN)).await;
        let http = reqwest::Client::new();
        let a = http.post(format!("http://{}/admin/v1/seed", srv.addr)).bearer_auth(ADMIN).body(seed).send().await;
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

/// A body signed with `key`: `payload` is the body's JSON before the signature is added.
fn signed_body(mut body: Value, key: &str) -> Value {
    let payload = body.to_string();
    body["signature"] = json!(sign_message(payload.as_bytes(), key).unwrap());
    body["payload"] = json!(payload);
    body
}

both_backends!(settlements_and_disputes_move_and_agree_to_the_last_unit, |db| {
    let e = Env::new(&db).await;
    let acct1 = patchbay_core::network::derived_uuid("networkAccount", C1);
    let acct2 = patchbay_core::network::derived_uuid("networkAccount", C2);
    let post = |token: &'static str, path: String, body: Value| {
        let e = &e;
        async move { e.send(reqwest::Method::POST, token, &path, &body).await }
    };

    // The signing payload, in the spec's field order.
    let req = json!({"externalId": "set-1", "settlementAmounts": {C2: {"ofcusd": "-5"}}, "nonce": "sn-1"});
    let sp = post("erin-rw", "/ent-partner/partners/settlements-signing".into(), req.clone()).await;
    assert_eq!(sp.status, 200, "{}", sp.body);
    assert_eq!(
        sp.body["payload"],
        format!(r#"{{"externalId":"set-1","settlementAmounts":{{"{C2}":{{"ofcusd":"-5"}}}},"nonce":"sn-1"}}"#)
    );
    let gp =
        call(e.http.get(e.url("/ent-partner/partners/settlements-signing")).bearer_auth("erin-rw").json(&req)).await;
    assert_eq!(gp.body, sp.body);

    // C2's network account pays the partner 5 of its 7.
    let s1 = post("erin-rw", "/ent-partner/partners/settlements".into(), signed_body(req.clone(), ERIN_KEY)).await;
    assert_eq!(s1.status, 200, "{}", s1.body);
    bitgo_spec::check("POST", "/partners/settlements", 200, &s1.body);
    let sid = s1.body["settlement"]["id"].as_str().unwrap().to_string();
    assert_eq!(s1.body["settlement"]["status"], "completed");
    assert_eq!(s1.body["settlement"]["settlementType"], "offchain");
    assert_eq!(s1.body["settlement"]["reconciled"], true);
    assert_eq!(s1.body["settlement"]["partnerId"], P_SYNC);
    // The same request again: the same settlement; other amounts under the same externalId: 409.
    let again = post("erin-rw", "/ent-partner/partners/settlements".into(), signed_body(req.clone(), ERIN_KEY)).await;
    assert_eq!((again.status, &again.body["settlement"]["id"]), (200, &json!(sid)));
    let other = json!({"externalId": "set-1", "settlementAmounts": {C2: {"ofcusd": "-6"}}, "nonce": "sn-2"});
    let r = post("erin-rw", "/ent-partner/partners/settlements".into(), signed_body(other, ERIN_KEY)).await;
    assert_eq!(r.status, 409, "{}", r.body);
    bitgo_spec::check("POST", "/partners/settlements", 409, &r.body);
    // More than the account holds: refused whole, nothing moves.
    let over =
        json!({"externalId": "set-over", "settlementAmounts": {C2: {"ofcusd": "-3", "ofceth": "-1"}}, "nonce": "sn-3"});
    let r = post("erin-rw", "/ent-partner/partners/settlements".into(), signed_body(over, ERIN_KEY)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // Signed by someone else, or naming a connection of no partner of this enterprise.
    let r = post(
        "erin-rw",
        "/ent-partner/partners/settlements".into(),
        signed_body(json!({"externalId": "x", "settlementAmounts": {C2: {"ofcusd": "1"}}, "nonce": "sn-4"}), ALICE_KEY),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = post("erin-rw", "/ent-partner/partners/settlements".into(), signed_body(json!({"externalId": "x", "settlementAmounts": {"c0a80101-0000-4000-8000-00000000ffff": {"ofcusd": "1"}}, "nonce": "sn-5"}), ERIN_KEY)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post("alice-rw", "/ent-client/partners/settlements".into(), signed_body(req.clone(), ALICE_KEY)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // The deprecated route: not reconciled; the partner pays 3 back.
    let back =
        json!({"externalId": "set-2", "notes": "refund", "settlementAmounts": {C2: {"ofcusd": "3"}}, "nonce": "sn-6"});
    let s2 =
        post("erin-rw", "/ent-partner/partners/settlements/nonReconciled".into(), signed_body(back, ERIN_KEY)).await;
    assert_eq!(s2.status, 200, "{}", s2.body);
    bitgo_spec::check("POST", "/partners/settlements/nonReconciled", 200, &s2.body);
    assert_eq!(s2.body["settlement"]["reconciled"], false);
    assert_eq!(s2.body["settlement"]["notes"], "refund");

    // Balances and transfers agree to the last unit.
    let b = e.get("alice-ro", "/ent-client/clients/balances").await;
    assert_eq!(balance(&b.body["networkBalances"][&acct2]["balances"], "ofcusd"), s("5", "0"));
    let p = e.get("erin-rw", "/ent-partner/partners/balances").await;
    assert_eq!(balance(&p.body["balances"], "ofcusd"), s("5000", "0")); // P_ASYNC's account: untouched
    let g = e.get("erin-rw", &format!("/ent-partner/partners/settlements/{sid}")).await;
    assert_eq!(g.status, 200, "{}", g.body);
    bitgo_spec::check("GET", "/partners/settlements/{settlementId}", 200, &g.body);
    let t = &g.body["settlementTransfers"];
    assert_eq!(t.as_array().unwrap().len(), 1);
    assert_eq!(
        (t[0]["quantity"].as_str(), t[0]["currency"].as_str(), t[0]["status"].as_str()),
        (Some("5"), Some("ofcusd"), Some("completed"))
    );
    assert_eq!(t[0]["sourceNetworkAccountId"], json!(acct2));
    assert_eq!(t[0]["destinationNetworkAccountId"], P_SYNC);
    let g = e.get("alice-ro", &format!("/ent-client/clients/settlements/{sid}")).await;
    bitgo_spec::check("GET", "/clients/settlements/{settlementId}", 200, &g.body);
    assert_eq!(g.body["settlement"]["transferDirection"], "send");
    assert_eq!(g.body["settlementTransfers"][0]["sourceNetworkAccountId"], json!(acct2));
    assert!(g.body["settlementTransfers"][0].get("destinationNetworkAccountId").is_none(), "masked: {}", g.body);
    let l = e.get("alice-ro", "/ent-client/clients/settlements").await;
    bitgo_spec::check("GET", "/clients/settlements", 200, &l.body);
    let dirs: Vec<&str> =
        l.body["settlements"].as_array().unwrap().iter().map(|s| s["transferDirection"].as_str().unwrap()).collect();
    assert_eq!(dirs, ["send", "receive"]);
    let l = e.get("erin-rw", "/ent-partner/partners/settlements?externalIds=set-2").await;
    bitgo_spec::check("GET", "/partners/settlements", 200, &l.body);
    assert_eq!(l.body["settlements"].as_array().unwrap().len(), 1);
    let tr = e.get("alice-ro", "/ent-client/clients/settlementTransfers?sortField=updatedAt&sortDirection=DESC").await;
    bitgo_spec::check("GET", "/clients/settlementTransfers", 200, &tr.body);
    let q: Vec<&str> =
        tr.body["settlementTransfers"].as_array().unwrap().iter().map(|t| t["quantity"].as_str().unwrap()).collect();
    assert_eq!(q, ["3", "5"]);
    let net: i64 = tr.body["settlementTransfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let qn: i64 = t["quantity"].as_str().unwrap().parse().unwrap();
            if t.get("sourceNetworkAccountId").is_some() { -qn } else { qn }
        })
        .sum();
    assert_eq!(7 + net, 5, "the transfers explain the balance");
    assert_eq!(
        e.get("alice-ro", &format!("/ent-client/clients/settlements/{}", uuid::Uuid::new_v4())).await.status,
        404
    );

    // The client disputes the first settlement, retracts, closes.
    let dispute = json!({"connectionId": C2, "reason": "We expected less", "expectedTransfers": {"ofcusd": "-4"}, "nonce": "dn-1"});
    let d = post(
        "alice-rw",
        format!("/ent-client/clients/settlements/{sid}/disputes"),
        signed_body(dispute.clone(), ALICE_KEY),
    )
    .await;
    assert_eq!(d.status, 200, "{}", d.body);
    bitgo_spec::check("POST", "/clients/settlements/{settlementId}/disputes", 200, &d.body);
    let did = d.body["dispute"]["id"].as_str().unwrap().to_string();
    assert_eq!(d.body["dispute"]["disputedSettlementId"], json!(sid));
    assert_eq!(d.body["dispute"]["retracted"], false);
    let dup = post(
        "alice-rw",
        format!("/ent-client/clients/settlements/{sid}/disputes"),
        signed_body(json!({"connectionId": C2, "expectedTransfers": {"ofcusd": "-4"}, "nonce": "dn-2"}), ALICE_KEY),
    )
    .await;
    assert_eq!(dup.status, 409, "{}", dup.body);
    let bad = post(
        "alice-rw",
        format!("/ent-client/clients/settlements/{sid}/disputes"),
        signed_body(json!({"connectionId": C2, "expectedTransfers": {"ofcusd": "0"}, "nonce": "dn-3"}), ALICE_KEY),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let l = e.get("erin-rw", "/ent-partner/partners/settlements?onlyShowDisputed=true").await;
    assert_eq!(l.body["settlements"][0]["disputed"], true);
    assert_eq!(l.body["settlements"].as_array().unwrap().len(), 1);
    let u = e
        .send(
            reqwest::Method::PUT,
            "alice-rw",
            &format!("/ent-client/clients/settlements/disputes/{did}"),
            &signed_body(
                json!({"connectionId": C2, "retracted": true, "reason": "Found it", "nonce": "dn-4"}),
                ALICE_KEY,
            ),
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    bitgo_spec::check("PUT", "/clients/settlements/disputes/{disputeId}", 200, &u.body);
    assert_eq!(
        (u.body["dispute"]["retracted"].clone(), u.body["dispute"]["retractedBy"].clone()),
        (json!(true), json!("alice"))
    );
    let c = post(
        "alice-rw",
        format!("/ent-client/clients/settlements/disputes/{did}/close"),
        signed_body(json!({"notes": "Our mistake", "nonce": "dn-5"}), ALICE_KEY),
    )
    .await;
    assert_eq!(c.status, 200, "{}", c.body);
    bitgo_spec::check("POST", "/clients/settlements/disputes/{disputeId}/close", 200, &c.body);
    assert_eq!(
        (c.body["disputeClosure"]["closedBy"].clone(), c.body["disputeClosure"]["status"].clone()),
        (json!("client"), json!("approved"))
    );
    let again = post(
        "alice-rw",
        format!("/ent-client/clients/settlements/disputes/{did}/close"),
        signed_body(json!({"notes": "x", "nonce": "dn-6"}), ALICE_KEY),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.body);
    let u = e
        .send(
            reqwest::Method::PUT,
            "alice-rw",
            &format!("/ent-client/clients/settlements/disputes/{did}"),
            &signed_body(json!({"connectionId": C2, "retracted": false, "nonce": "dn-7"}), ALICE_KEY),
        )
        .await;
    assert_eq!(u.status, 409, "{}", u.body);
    for (token, path) in [
        ("alice-ro", "/ent-client/clients/settlement/disputes?closed=true"),
        ("erin-rw", "/ent-partner/partners/settlement/disputes?settlementExternalIds=set-1"),
    ] {
        let l = e.get(token, path).await;
        assert_eq!(l.status, 200, "{}", l.body);
        bitgo_spec::check(
            "GET",
            if token == "erin-rw" { "/partners/settlement/disputes" } else { "/clients/settlement/disputes" },
            200,
            &l.body,
        );
        assert_eq!(l.body["disputes"][0]["id"], json!(did));
        assert_eq!(l.body["disputes"][0]["disputeClosure"]["notes"], "Our mistake");
    }
    let g = e.get("erin-rw", &format!("/ent-partner/partners/settlements/{sid}")).await;
    assert_eq!(g.body["settlementDisputes"][0]["id"], json!(did));
    assert!(
        e.get("alice-ro", "/ent-client/clients/settlement/disputes?closed=false").await.body["disputes"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // On-chain: pending until the deposit arrives, then completed and credited.
    let oc = json!({"externalId": "oc-1", "settlementAmounts": {C1: {"ofcusd": "50"}}, "nonce": "on-1"});
    let o = post("erin-rw", "/ent-partner/partners/settlements/onchain".into(), signed_body(oc, ERIN_KEY)).await;
    assert_eq!(o.status, 202, "{}", o.body);
    bitgo_spec::check("POST", "/partners/settlements/onchain", 202, &o.body);
    let oid = o.body["settlement"]["id"].as_str().unwrap().to_string();
    let neg = post(
        "erin-rw",
        "/ent-partner/partners/settlements/onchain".into(),
        signed_body(
            json!({"externalId": "oc-2", "settlementAmounts": {C1: {"ofcusd": "-1"}}, "nonce": "on-2"}),
            ERIN_KEY,
        ),
    )
    .await;
    assert_eq!(neg.status, 400, "{}", neg.body);
    let dep = json!({"externalSettlementId": "oc-1", "deposits": [{"currency": "ofcusd", "onChainTxId": "0xabc"}]});
    let ds = call(
        e.http
            .get(e.url("/ent-partner/partners/settlements/onchain/deposits/signing"))
            .bearer_auth("erin-rw")
            .json(&dep),
    )
    .await;
    assert_eq!(ds.status, 200, "{}", ds.body);
    assert_eq!(
        ds.body["payload"],
        r#"{"externalSettlementId":"oc-1","deposits":[{"currency":"ofcusd","onChainTxId":"0xabc"}]}"#
    );
    let g = e.get("erin-rw", &format!("/ent-partner/partners/settlements/{oid}")).await;
    assert_eq!(g.body["settlementTransfers"][0]["status"], "pending_onchain");
    let r = post(
        "erin-rw",
        "/ent-partner/partners/settlements/onchain/deposits".into(),
        signed_body(dep.clone(), ERIN_KEY),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    bitgo_spec::check("POST", "/partners/settlements/onchain/deposits", 201, &r.body);
    assert_eq!(r.body["deposits"][0]["settlementId"], json!(oid));
    let g = e.get("erin-rw", &format!("/ent-partner/partners/settlements/{oid}")).await;
    assert_eq!(g.body["settlement"]["status"], "completed");
    assert_eq!(g.body["settlementTransfers"][0]["txIds"], json!(["0xabc"]));
    let b = e.get("alice-ro", "/ent-client/clients/balances").await;
    assert_eq!(balance(&b.body["networkBalances"][&acct1]["balances"], "ofcusd"), s("50", "0"));
    // The same deposits again: answered as before; unknown settlement: 404.
    let r =
        post("erin-rw", "/ent-partner/partners/settlements/onchain/deposits".into(), signed_body(dep, ERIN_KEY)).await;
    assert_eq!((r.status, r.body["deposits"].as_array().map(Vec::len)), (201, Some(1)));
    let r = post(
        "erin-rw",
        "/ent-partner/partners/settlements/onchain/deposits".into(),
        signed_body(
            json!({"externalSettlementId": "nope", "deposits": [{"currency": "ofcusd", "onChainTxId": "0xdef"}]}),
            ERIN_KEY,
        ),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // A trade's signing payload.
    let trade = json!({"trade": {"externalId": "t-1", "externalOrderId": "o-1", "partyConnectionId": C1, "tradedAt": "2026-12-01T10:00:00Z",
        "base": {"currency": "ofcbtc", "quantity": "100"}, "quote": {"currency": "ofcusd", "quantity": "-9000"}}, "nonce": "tn-1"});
    let ts = call(e.http.get(e.url("/ent-partner/partners/trades/signing")).bearer_auth("erin-rw").json(&trade)).await;
    assert_eq!(ts.status, 200, "{}", ts.body);
    bitgo_spec::check("GET", "/partners/trades/signing", 200, &ts.body);
    let parsed: Value = serde_json::from_str(ts.body["payload"].as_str().unwrap()).unwrap();
    assert_eq!(parsed, trade);
    let mut same_sign = trade.clone();
    same_sign["trade"]["quote"]["quantity"] = json!("9000");
    let ts =
        call(e.http.get(e.url("/ent-partner/partners/trades/signing")).bearer_auth("erin-rw").json(&same_sign)).await;
    assert_eq!(ts.status, 400, "{}", ts.body);
});

/// A partner platform recording what BitGo (Patchbay) tells it.
async fn recording_partner() -> (std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>, String) {
    use axum::extract::State;
    type Calls = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>;
    async fn record(
        State(c): State<Calls>,
        uri: axum::http::Uri,
        headers: axum::http::HeaderMap,
        body: axum::Json<Value>,
    ) -> &'static str {
        let jwt = headers.get("x-bitgo-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        c.lock().unwrap().push((uri.path().to_string(), jwt, body.0));
        "{}"
    }
    let calls: Calls = Default::default();
    let app = axum::Router::new()
        .route("/bitgo/v1/allocations", axum::routing::post(record))
        .route("/bitgo/v1/deallocations", axum::routing::post(record))
        .with_state(calls.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (calls, url)
}

both_backends!(the_partner_platform_is_told_of_each_step, |db| {
    let (calls, url) = recording_partner().await;
    let mut doc: Value = serde_json::from_str(&seed()).unwrap();
    doc["network"]["partners"][0]["callbackUrl"] = json!(url);
    let e = Env::with_seed(&db, doc.to_string()).await;
    let a = e
        .send(
            reqwest::Method::POST,
            "alice-rw",
            &format!("/ent-client/clients/connections/{C1}/allocations"),
            &signed_step(C1, "ofcusd", "40", "ext-n1", "n-n1", ALICE_KEY),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let id = a.body["allocation"]["id"].clone();
    // Refused steps are not announced.
    let r = e
        .send(
            reqwest::Method::POST,
            "alice-rw",
            &format!("/ent-client/clients/connections/{C1}/deallocations"),
            &signed_step(C1, "ofcusd", "1", "ext-n2", "n-n2", ALICE_KEY),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    for _ in 0..200 {
        if !calls.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (path, jwt, body) = &calls[0];
    assert_eq!(path, "/bitgo/v1/allocations");
    assert_eq!(jwt.split('.').count(), 3, "an X-BitGo-Signature JWT");
    assert_eq!(
        body,
        &json!({"allocationId": id, "amount": {"currency": "ofcusd", "quantity": "40"}, "clientId": CLIENT, "connectionId": C1,
                "partnersConnectionId": "4a1e5c2b-0000-4000-8000-00000000aaaa", "partnersClientId": "4a1e5c2b-0000-4000-8000-00000000bbbb",
                "status": "reserved"})
    );
});

both_backends!(seeded_ledger_objects_in_any_state, |db| {
    const A1: &str = "a0000000-0000-4000-8000-000000000001";
    const A2: &str = "a0000000-0000-4000-8000-000000000002";
    const S1: &str = "50000000-0000-4000-8000-000000000001";
    const S2: &str = "50000000-0000-4000-8000-000000000002";
    const D1: &str = "d0000000-0000-4000-8000-000000000001";
    let mut doc: Value = serde_json::from_str(&seed()).unwrap();
    let n = &mut doc["network"];
    // A reserved allocation holds its funds: the document says so in `funds`.
    n["clients"][0]["funds"]["ofcusd"] = json!({"available": "900", "held": "100"});
    n["allocations"] = json!([
        {"id": A1, "connectionId": C1, "status": "reserved", "amount": {"currency": "ofcusd", "quantity": "100"},
         "clientExternalId": "seeded-1", "createdAt": "2026-03-01T10:00:00Z"},
        {"id": A2, "connectionId": C1, "type": "deallocation", "status": "released", "reason": "Limit reached",
         "amount": {"currency": "ofcusd", "quantity": "5"}, "clientExternalId": "seeded-2"}
    ]);
    n["settlements"] = json!([
        {"id": S1, "externalId": "seeded-settlement-1", "settlementAmounts": {C1: {"ofcusd": "-20"}}, "notes": "week 9",
         "createdAt": "2026-03-02T00:00:00Z"},
        {"id": S2, "externalId": "seeded-settlement-2", "status": "pending", "settlementType": "onchain",
         "settlementAmounts": {C1: {"ofcusd": "30"}}}
    ]);
    n["disputes"] = json!([
        {"id": D1, "settlementId": S1, "connectionId": C1, "expectedTransfers": {"ofcusd": "-15"}, "reason": "Too much",
         "closed": true, "closureNotes": "Fine after all"}
    ]);
    let e = Env::with_seed(&db, doc.to_string()).await;

    let g = e.get("alice-ro", &format!("/ent-client/clients/allocations/{A1}")).await;
    assert_eq!(g.status, 200, "{}", g.body);
    bitgo_spec::check("GET", "/clients/allocations/{allocationId}", 200, &g.body);
    assert_eq!(
        (g.body["allocation"]["status"].as_str(), g.body["allocation"]["createdAt"].as_str()),
        (Some("reserved"), Some("2026-03-01T10:00:00.000Z"))
    );
    let l = e.get("erin-rw", "/ent-partner/partners/allocations?statuses=released&types=deallocation").await;
    assert_eq!(l.body["allocations"][0]["reason"], "Limit reached");
    // The partner clears the seeded reservation: the held funds reach the network account.
    let u = e
        .send(
            reqwest::Method::PUT,
            "erin-rw",
            "/ent-partner/partners/allocations",
            &partner_update("allocation", A1, C1, "100", "cleared", "sn-seed"),
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    let b = e.get("alice-ro", "/ent-client/clients/balances").await;
    assert_eq!(balance(&b.body["balances"], "ofcusd"), s("900", "0"));
    let acct1 = patchbay_core::network::derived_uuid("networkAccount", C1);
    assert_eq!(balance(&b.body["networkBalances"][&acct1]["balances"], "ofcusd"), s("100", "0"));
    // The same clientExternalId is taken by the seeded allocation.
    let r = e
        .send(
            reqwest::Method::POST,
            "alice-rw",
            &format!("/ent-client/clients/connections/{C1}/allocations"),
            &signed_step(C1, "ofcusd", "7", "seeded-1", "n-seeded", ALICE_KEY),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);

    // Seeded settlements, from both sides, with transfers and the closed dispute.
    let g = e.get("erin-rw", &format!("/ent-partner/partners/settlements/{S1}")).await;
    assert_eq!(g.status, 200, "{}", g.body);
    bitgo_spec::check("GET", "/partners/settlements/{settlementId}", 200, &g.body);
    assert_eq!(
        (g.body["settlement"]["disputed"].clone(), g.body["settlement"]["notes"].clone()),
        (json!(true), json!("week 9"))
    );
    assert_eq!(g.body["settlementTransfers"][0]["quantity"], "20");
    assert_eq!(g.body["settlementDisputes"][0]["disputeClosure"]["notes"], "Fine after all");
    let l = e.get("alice-ro", "/ent-client/clients/settlements").await;
    bitgo_spec::check("GET", "/clients/settlements", 200, &l.body);
    let dirs: Vec<(&str, &str)> = l.body["settlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["status"].as_str().unwrap(), s["transferDirection"].as_str().unwrap()))
        .collect();
    assert_eq!(dirs, [("pending", "receive"), ("completed", "send")]); // by createdAt (S2 defaults to 2026-01-01)
    let c = e
        .send(
            reqwest::Method::POST,
            "alice-rw",
            &format!("/ent-client/clients/settlements/disputes/{D1}/close"),
            &signed_body(json!({"notes": "again", "nonce": "dn-seed"}), ALICE_KEY),
        )
        .await;
    assert_eq!(c.status, 409, "{}", c.body);
    // The seeded on-chain settlement completes with its deposit.
    let dep = json!({"externalSettlementId": "seeded-settlement-2", "deposits": [{"currency": "ofcusd", "onChainTxId": "0xseed"}]});
    let r = e
        .send(
            reqwest::Method::POST,
            "erin-rw",
            "/ent-partner/partners/settlements/onchain/deposits",
            &signed_body(dep, ERIN_KEY),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let b = e.get("alice-ro", "/ent-client/clients/balances").await;
    assert_eq!(balance(&b.body["networkBalances"][&acct1]["balances"], "ofcusd"), s("130", "0"));
    // A seeded object must name this document's connections and settlements.
    let bad =
        json!({"network": {"disputes": [{"id": D1, "settlementId": S2, "connectionId": C1, "expectedTransfers": {}}]}});
    let a = call(e.http.post(format!("http://{}/admin/v1/seed", e.srv.addr)).bearer_auth(ADMIN).body(bad.to_string()))
        .await;
    assert_eq!((a.status, a.body["path"].as_str()), (422, Some("$.network.disputes[0].settlementId")), "{}", a.body);
});
