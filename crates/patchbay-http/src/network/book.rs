//! The ledger as the handlers use it: reading balances into a [`Book`], applying a
//! step's movements (rules in `patchbay_core::ledger`), and committing the step
//! all-or-nothing, again from a fresh read when another write came first.
//! Shared request helpers of the ledger routes (amounts, signed payloads, dates) too.

use std::collections::BTreeMap;

use patchbay_core::ledger::{self, Account, Amount, Balance, Balances, LedgerError, Movement};
use patchbay_store::{BalanceWrite, Committed, LedgerCommit};

use super::*;

/// How often a step is tried again after losing a race (each try reads afresh).
pub(super) const MAX_TRIES: u32 = 400;

pub(super) mod kinds {
    /// Allocations and deallocations (`subtype`), one id space as in the spec.
    pub const ALLOCATION: &str = "allocation";
    pub const SETTLEMENT: &str = "settlement";
    pub const TRANSFER: &str = "settlement_transfer";
    pub const DISPUTE: &str = "dispute";
    pub const DEPOSIT: &str = "deposit";
}

/// Balances read for one step, with the version of each row read.
pub(super) struct Book {
    pub(super) balances: Balances,
    versions: BTreeMap<(Account, String), i64>,
    read: Balances,
    /// Balances written unchanged: the step depended on them (a refusal for funds).
    touched: std::collections::BTreeSet<(Account, String)>,
}

impl Book {
    /// Reads every currency of the given accounts.
    pub(super) async fn read(state: &AppState, accounts: &[Account]) -> Result<Book, NetError> {
        let keys: Vec<String> = accounts.iter().map(Account::key).collect();
        let mut balances = Balances::new();
        let mut versions = BTreeMap::new();
        for b in state.store.net_balances(&keys).await? {
            let Some(account) = Account::parse(&b.account) else { continue };
            let amount = |s: &str| {
                Amount::parse_signed(s).map_err(|_| {
                    tracing::error!(account = %b.account, currency = %b.currency, "stored balance is not an amount");
                    NetError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
                })
            };
            let bal = Balance { available: amount(&b.available)?, held: amount(&b.held)? };
            balances.insert((account.clone(), b.currency.clone()), bal);
            versions.insert((account, b.currency), b.version);
        }
        Ok(Book { read: balances.clone(), balances, versions, touched: Default::default() })
    }

    pub(super) fn apply(&mut self, moves: &[Movement]) -> Result<(), LedgerError> {
        ledger::apply(&mut self.balances, moves)
    }

    /// Marks the balances these movements would touch as read-and-relied-on: they are
    /// written back unchanged, so the commit fails if another write changed them.
    pub(super) fn touch(&mut self, moves: &[Movement]) {
        for m in moves {
            let key = (m.account.clone(), m.currency.clone());
            self.balances.entry(key.clone()).or_default();
            self.touched.insert(key);
        }
    }

    /// The balances this step changed (or touched), each expecting the version it was read at.
    pub(super) fn writes(&self) -> Vec<BalanceWrite> {
        self.balances
            .iter()
            .filter(|(k, v)| self.read.get(k) != Some(v) || self.touched.contains(k))
            .map(|((account, currency), b)| BalanceWrite {
                account: account.key(),
                currency: currency.clone(),
                available: b.available.to_string(),
                held: b.held.to_string(),
                expected_version: self.versions.get(&(account.clone(), currency.clone())).copied().unwrap_or(0),
            })
            .collect()
    }
}

/// Commits a step; `Stale` waits a little (growing, jittered) so the caller can read again.
pub(super) async fn commit(state: &AppState, c: &LedgerCommit, attempt: u32) -> Result<Committed, NetError> {
    let done = state.store.net_ledger_commit(c).await?;
    if done == Committed::Stale {
        let cap = 1 + u64::from(attempt.min(20));
        let ms = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=cap);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    Ok(done)
}

pub(super) fn too_busy() -> NetError {
    NetError::new(StatusCode::SERVICE_UNAVAILABLE, "The ledger is busy; try again.")
}

/// A `{currency, quantity}` amount of a request body, positive.
pub(super) fn amount_field(body: &Map<String, Value>, key: &str) -> Result<(String, Amount), NetError> {
    let Some(Value::Object(a)) = body.get(key) else {
        return Err(NetError::bad_request(format!(
            "{key} is required and must be an object of currency and quantity."
        )));
    };
    let currency = stored_str(a, "currency").map_err(|e| NetError::bad_request(format!("{key}.{}", e.message)))?;
    let quantity = match a.get("quantity") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(NetError::bad_request(format!("{key}.quantity is required and must be a string."))),
    };
    let q = Amount::parse_positive(&quantity)
        .map_err(|e| NetError::bad_request(format!("{key}.quantity {e} (got {quantity:?}).")))?;
    Ok((currency, q))
}

pub(super) fn optional_str(body: &Map<String, Value>, key: &str) -> Result<Option<String>, NetError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => {
            no_nul(key, s)?;
            Ok(Some(s.clone()))
        }
        Some(_) => Err(NetError::bad_request(format!("{key} must be a non-empty string."))),
    }
}

/// The signed `payload` parsed, each of `fields` present in it equal to the body's
/// (required ones must be present), and the signature made by the enterprise's client key.
pub(super) async fn verify_signed(
    state: &AppState,
    caller: &Caller,
    body: &Map<String, Value>,
    required: &[&str],
    optional: &[&str],
    extra: &[(&str, &str)],
) -> Result<Record, NetError> {
    let payload = required_str(body, "payload")?;
    let signature = required_str(body, "signature")?;
    let signed = match serde_json::from_str::<Value>(&payload) {
        Ok(Value::Object(m)) => m,
        _ => return Err(NetError::bad_request("Invalid payload format: payload must be a JSON object string.")),
    };
    for key in required.iter().chain(optional) {
        let want = body.get(*key);
        let got = signed.get(*key);
        if got.is_none() && !required.contains(key) {
            continue;
        }
        if got != want {
            return Err(NetError::bad_request(format!("Payload does not match request data: {key}.")));
        }
    }
    for (key, want) in extra {
        if let Some(got) = signed.get(*key)
            && !got.as_str().is_some_and(|g| g.eq_ignore_ascii_case(want))
        {
            return Err(NetError::bad_request(format!("Payload does not match request data: {key}.")));
        }
    }
    let client = client_of(state, &caller.enterprise().id)
        .await?
        .ok_or_else(|| NetError::not_found("The enterprise is not onboarded as an OES client."))?;
    let public_key = client.data["publicKey"].as_str().unwrap_or_default();
    if let Err(e) = rules::verify_message(payload.as_bytes(), &signature, public_key) {
        tracing::info!(enterprise = %caller.enterprise().id, user = %caller.user_id(), reason = %e, "ledger signature rejected");
        return Err(NetError::unauthorized("Payload/Signature are not valid."));
    }
    Ok(client)
}

/// An ISO 8601 date-time filter as epoch milliseconds.
pub(super) fn date_param(params: &RawParams, key: &str) -> Result<Option<i64>, NetError> {
    match params.strings(key)?.as_slice() {
        [] => Ok(None),
        [one] => chrono::DateTime::parse_from_rfc3339(one)
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|_| NetError::bad_request(format!("Invalid value for {key}: expected an ISO 8601 date-time."))),
        _ => Err(NetError::bad_request(format!("Invalid value for {key}: expected a single value."))),
    }
}

/// One value of an enumerated parameter, checked.
pub(super) fn enum_param<'a>(params: &RawParams, key: &str, allowed: &[&'a str]) -> Result<Option<&'a str>, NetError> {
    match params.strings(key)?.as_slice() {
        [] => Ok(None),
        [one] => allowed
            .iter()
            .find(|a| *a == one)
            .copied()
            .map(Some)
            .ok_or_else(|| NetError::bad_request(format!("Invalid value for {key}: expected one of {allowed:?}."))),
        _ => Err(NetError::bad_request(format!("Invalid value for {key}: expected a single value."))),
    }
}

/// Every value of an enumerated array parameter, checked.
pub(super) fn enum_values(params: &RawParams, key: &str, allowed: &[&str]) -> Result<Vec<String>, NetError> {
    let values = params.strings(key)?;
    if let Some(bad) = values.iter().find(|v| !allowed.contains(&v.as_str())) {
        return Err(NetError::bad_request(format!("Invalid value for {key}: {bad:?} is not one of {allowed:?}.")));
    }
    Ok(values)
}

/// A JSON answer with any status (the ledger's 422 carries an object beside its error).
pub(super) fn json_status(status: StatusCode, v: &Value) -> NetResult {
    Ok(crate::face::json_bytes_response(status, serde_json::to_vec(v).expect("JSON values serialise")))
}

/// The partner record of a connection.
pub(super) async fn partner_of(state: &AppState, conn: &NetConnection) -> Result<Record, NetError> {
    state
        .store
        .find_record(kind::NET_PARTNER, &conn.partner_id)
        .await?
        .ok_or_else(|| NetError::not_found(format!("Partner {} not found.", conn.partner_id)))
}

/// The partner records of an enterprise (its partner side).
pub(super) async fn partners_of(state: &AppState, enterprise: &str) -> Result<Vec<Record>, NetError> {
    let mut partners = state.store.list_records(enterprise, kind::NET_PARTNER).await?;
    partners.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(partners)
}

/// A currency the partner supports (any, when the partner lists none).
pub(super) fn supported(partner: &Record, currency: &str) -> Result<(), NetError> {
    let list = partner.data["supportedCurrencies"].as_array();
    match list {
        Some(l) if !l.is_empty() && !l.iter().any(|c| c["ofcCurrency"].as_str() == Some(currency)) => {
            Err(NetError::bad_request(format!("Currency {currency} is not supported by partner {}.", partner.id)))
        }
        _ => Ok(()),
    }
}
