//! Storage of the OES ledger (Network face, issue 19): balances and ledger rows,
//! read plainly and written all-or-nothing by [`LedgerCommit`] with a version
//! per row. A commit that finds any row changed since it was read writes
//! nothing and answers [`Committed::Stale`]; the caller reads again and retries.
//! The rules deciding what to write live in `patchbay_core::ledger`.

use serde_json::Value;

use crate::{NewJob, Result};

/// One balance as stored: `available` and `held` as exact decimal strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetBalance {
    pub account: String,
    pub currency: String,
    pub available: String,
    pub held: String,
    /// 0 when the row does not exist yet.
    pub version: i64,
}

/// A ledger object (allocation, settlement, transfer, dispute, deposit) with the
/// columns lists filter on; `data` is the object as the face renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    pub kind: String,
    pub id: String,
    /// The client's enterprise, for objects of one client.
    pub client_tenant: Option<String>,
    pub partner_tenant: String,
    pub partner_id: Option<String>,
    pub client_id: Option<String>,
    pub connection_id: Option<String>,
    /// The settlement of a transfer, deposit or dispute.
    pub parent_id: Option<String>,
    pub subtype: Option<String>,
    pub status: String,
    pub currency: Option<String>,
    pub external_id: Option<String>,
    /// Unique per kind: the idempotency key (`clientExternalId`, `externalId`, …) with its scope.
    pub external_key: Option<String>,
    /// Connection ids and client enterprises (`e:<id>`) a settlement touches.
    pub parties: Vec<String>,
    /// Kind-specific flag: a settlement is disputed.
    pub flag: bool,
    pub version: i64,
    pub data: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

impl LedgerRow {
    pub(crate) fn parties_text(&self) -> String {
        if self.parties.is_empty() { String::new() } else { format!(",{},", self.parties.join(",")) }
    }
}

/// A balance to write: expected `version` (0: the row must not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceWrite {
    pub account: String,
    pub currency: String,
    pub available: String,
    pub held: String,
    pub expected_version: i64,
}

/// Everything one ledger step writes, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct LedgerCommit {
    pub balances: Vec<BalanceWrite>,
    /// Rows to insert (`None`) or to update from the given version.
    pub rows: Vec<(LedgerRow, Option<i64>)>,
    /// `(scope, nonce)` pairs to spend.
    pub nonces: Vec<(String, String)>,
    pub jobs: Vec<NewJob>,
    pub now_ms: i64,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Done,
    /// A row or balance changed since it was read: nothing written.
    Stale,
    /// The nonce was spent before: nothing written.
    NonceUsed,
    /// Another row of the kind holds the external key: nothing written.
    Duplicate,
}

/// List filters; empty vectors mean "no filter", all ANDed.
#[derive(Debug, Clone, Default)]
pub struct LedgerFilter {
    pub client_tenant: Option<String>,
    pub partner_tenant: Option<String>,
    /// `e:<enterprise>` or a connection id among the parties.
    pub party: Option<String>,
    pub ids: Vec<String>,
    pub statuses: Vec<String>,
    pub subtypes: Vec<String>,
    pub currencies: Vec<String>,
    pub connection_ids: Vec<String>,
    /// Any of these connection ids among the parties.
    pub party_connections: Vec<String>,
    pub partner_ids: Vec<String>,
    pub client_ids: Vec<String>,
    pub parent_ids: Vec<String>,
    pub external_ids: Vec<String>,
    pub flag: Option<bool>,
    pub created_from: Option<i64>,
    pub created_before: Option<i64>,
    pub updated_from: Option<i64>,
    pub updated_before: Option<i64>,
    /// `(column, descending)`: one of id, updated_at, created_at; default created_at, id.
    pub order: Option<(&'static str, bool)>,
}

pub(crate) const LEDGER_COLS: &str = "kind, id, client_tenant, partner_tenant, partner_id, client_id, connection_id, \
     parent_id, subtype, status, currency, external_id, external_key, parties, flag, version, data, created_at, updated_at";

/// `SELECT` for a filtered, paged list, with its bind values.
pub(crate) fn list_query(kind: &str, f: &LedgerFilter, limit: i64, offset: i64) -> (String, Vec<crate::backend::Bind>) {
    use crate::backend::Bind;
    let mut binds = vec![Bind::Text(kind.to_string())];
    let mut sql = format!("SELECT {LEDGER_COLS} FROM net_ledger WHERE kind = $1");
    let eq = |sql: &mut String, binds: &mut Vec<Bind>, col: &str, v: &str| {
        binds.push(Bind::Text(v.to_string()));
        sql.push_str(&format!(" AND {col} = ${}", binds.len()));
    };
    if let Some(t) = &f.client_tenant {
        eq(&mut sql, &mut binds, "client_tenant", t);
    }
    if let Some(t) = &f.partner_tenant {
        eq(&mut sql, &mut binds, "partner_tenant", t);
    }
    if let Some(p) = &f.party {
        binds.push(Bind::Text(format!("%,{},%", like_escape(p))));
        sql.push_str(&format!(" AND parties LIKE ${} ESCAPE '\\'", binds.len()));
    }
    for (col, values) in [
        ("id", &f.ids),
        ("status", &f.statuses),
        ("subtype", &f.subtypes),
        ("currency", &f.currencies),
        ("connection_id", &f.connection_ids),
        ("partner_id", &f.partner_ids),
        ("client_id", &f.client_ids),
        ("parent_id", &f.parent_ids),
        ("external_id", &f.external_ids),
    ] {
        if values.is_empty() {
            continue;
        }
        let mut marks = Vec::with_capacity(values.len());
        for v in values {
            binds.push(Bind::Text(v.clone()));
            marks.push(format!("${}", binds.len()));
        }
        sql.push_str(&format!(" AND {col} IN ({})", marks.join(", ")));
    }
    if !f.party_connections.is_empty() {
        let mut ors = Vec::new();
        for c in &f.party_connections {
            binds.push(Bind::Text(format!("%,{},%", like_escape(c))));
            ors.push(format!("parties LIKE ${} ESCAPE '\\'", binds.len()));
        }
        sql.push_str(&format!(" AND ({})", ors.join(" OR ")));
    }
    if let Some(b) = f.flag {
        binds.push(Bind::Bool(b));
        sql.push_str(&format!(" AND flag = ${}", binds.len()));
    }
    for (col, op, v) in [
        ("created_at", ">=", f.created_from),
        ("created_at", "<", f.created_before),
        ("updated_at", ">=", f.updated_from),
        ("updated_at", "<", f.updated_before),
    ] {
        if let Some(v) = v {
            binds.push(Bind::Int(v));
            sql.push_str(&format!(" AND {col} {op} ${}", binds.len()));
        }
    }
    let order = match f.order {
        Some((col, desc)) => {
            let dir = if desc { "DESC" } else { "ASC" };
            format!("{col} {dir}, id {dir}")
        }
        None => "created_at, id".to_string(),
    };
    binds.push(Bind::Int(limit));
    binds.push(Bind::Int(offset));
    sql.push_str(&format!(" ORDER BY {order} LIMIT ${} OFFSET ${}", binds.len() - 1, binds.len()));
    (sql, binds)
}

/// The statements of a commit, one text for both backends' paths.
macro_rules! insert_row_head {
    () => {
        "INSERT INTO net_ledger (kind, id, client_tenant, partner_tenant, partner_id, client_id, connection_id, \
         parent_id, subtype, status, currency, external_id, external_key, parties, flag, version, data, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1, $16, $17, $18)"
    };
}
pub(crate) const INSERT_NONCE: &str = "INSERT INTO net_nonces (scope, nonce, created_at) VALUES ($1, $2, $3)";
pub(crate) const INSERT_BALANCE: &str =
    "INSERT INTO net_balances (account, currency, available, held, version, updated_at) VALUES ($1, $2, $3, $4, 1, $5)";
pub(crate) const UPDATE_BALANCE: &str = "UPDATE net_balances SET available = $1, held = $2, version = version + 1, \
     updated_at = $3 WHERE account = $4 AND currency = $5 AND version = $6";
pub(crate) const INSERT_ROW: &str = insert_row_head!();
pub(crate) const UPDATE_ROW: &str = "UPDATE net_ledger SET status = $1, flag = $2, parent_id = $3, data = $4, \
     updated_at = $5, version = version + 1, subtype = $9 WHERE kind = $6 AND id = $7 AND version = $8";

/// A seeded row (`network.ledger` entries, patchbay-core's seed_ledger.rs), written over
/// any row of the same kind and id.
pub(crate) const UPSERT_ROW: &str = concat!(
    insert_row_head!(),
    " ON CONFLICT (kind, id) DO UPDATE SET client_tenant = excluded.client_tenant, \
     partner_tenant = excluded.partner_tenant, partner_id = excluded.partner_id, client_id = excluded.client_id, \
     connection_id = excluded.connection_id, parent_id = excluded.parent_id, subtype = excluded.subtype, \
     status = excluded.status, currency = excluded.currency, external_id = excluded.external_id, \
     external_key = excluded.external_key, parties = excluded.parties, flag = excluded.flag, \
     version = net_ledger.version + 1, data = excluded.data, created_at = excluded.created_at, \
     updated_at = excluded.updated_at"
);

/// A row from its seeded JSON form.
pub(crate) fn row_from_json(v: &Value) -> crate::Result<LedgerRow> {
    let text = |k: &str| v[k].as_str().map(str::to_string);
    let corrupt = || crate::StoreError::Corrupt(format!("seeded ledger row {v}"));
    Ok(LedgerRow {
        kind: text("kind").ok_or_else(corrupt)?,
        id: text("id").ok_or_else(corrupt)?,
        client_tenant: text("clientTenant"),
        partner_tenant: text("partnerTenant").ok_or_else(corrupt)?,
        partner_id: text("partnerId"),
        client_id: text("clientId"),
        connection_id: text("connectionId"),
        parent_id: text("parentId"),
        subtype: text("subtype"),
        status: text("status").ok_or_else(corrupt)?,
        currency: text("currency"),
        external_id: text("externalId"),
        external_key: text("externalKey"),
        parties: v["parties"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(str::to_string)).collect(),
        flag: v["flag"].as_bool().unwrap_or(false),
        version: 1,
        data: v["data"].clone(),
        created_at: v["createdAt"].as_i64().ok_or_else(corrupt)?,
        updated_at: v["updatedAt"].as_i64().ok_or_else(corrupt)?,
    })
}

/// An amount as stored: canonical digits (`"007"` → `"7"`).
pub(crate) fn normalized(s: &str) -> String {
    patchbay_core::ledger::Amount::parse_signed(s).map(|a| a.to_string()).unwrap_or_else(|_| "0".into())
}

const STALE: &str = "ledger.stale";
const NONCE_USED: &str = "ledger.nonce_used";
const DUPLICATE: &str = "ledger.duplicate";

pub(crate) fn outcome_name(c: Committed) -> &'static str {
    match c {
        Committed::Stale => STALE,
        Committed::NonceUsed => NONCE_USED,
        Committed::Duplicate => DUPLICATE,
        Committed::Done => "ledger.done",
    }
}

pub(crate) fn outcome_of(name: &str) -> Option<Committed> {
    match name {
        STALE => Some(Committed::Stale),
        NONCE_USED => Some(Committed::NonceUsed),
        DUPLICATE => Some(Committed::Duplicate),
        _ => None,
    }
}

/// [`LedgerCommit`] on SQLite's writer thread (the same statements as the sqlx path).
pub(crate) fn ledger_commit_sqlite(tx: &rusqlite::Connection, c: &LedgerCommit) -> Result<Committed> {
    use crate::readers::{execute, is_unique_violation};
    for (scope, nonce) in &c.nonces {
        match execute(tx, INSERT_NONCE, &[scope, nonce, &c.now_ms]) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(Committed::NonceUsed),
            Err(e) => return Err(e),
        }
    }
    for b in &c.balances {
        let r = if b.expected_version == 0 {
            execute(tx, INSERT_BALANCE, &[&b.account, &b.currency, &b.available, &b.held, &c.now_ms])
        } else {
            execute(
                tx,
                UPDATE_BALANCE,
                &[&b.available, &b.held, &c.now_ms, &b.account, &b.currency, &b.expected_version],
            )
        };
        match r {
            Ok(1) => {}
            Ok(_) => return Ok(Committed::Stale),
            Err(e) if is_unique_violation(&e) => return Ok(Committed::Stale),
            Err(e) => return Err(e),
        }
    }
    for (row, expected) in &c.rows {
        let parties = row.parties_text();
        let data = row.data.to_string();
        let r = match expected {
            None => execute(
                tx,
                INSERT_ROW,
                &[
                    &row.kind,
                    &row.id,
                    &row.client_tenant,
                    &row.partner_tenant,
                    &row.partner_id,
                    &row.client_id,
                    &row.connection_id,
                    &row.parent_id,
                    &row.subtype,
                    &row.status,
                    &row.currency,
                    &row.external_id,
                    &row.external_key,
                    &parties,
                    &row.flag,
                    &data,
                    &row.created_at,
                    &row.updated_at,
                ],
            ),
            Some(v) => execute(
                tx,
                UPDATE_ROW,
                &[&row.status, &row.flag, &row.parent_id, &data, &row.updated_at, &row.kind, &row.id, v, &row.subtype],
            ),
        };
        match r {
            Ok(1) => {}
            Ok(_) => return Ok(Committed::Stale),
            Err(e) if is_unique_violation(&e) => return Ok(Committed::Duplicate),
            Err(e) => return Err(e),
        }
    }
    for job in &c.jobs {
        crate::backend::write_job(tx, job, c.now_ms)?;
    }
    Ok(Committed::Done)
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

macro_rules! ledger_row_from_row {
    ($row:expr) => {{
        let row = &$row;
        let parties: String = row.try_get("parties")?;
        let data: String = row.try_get("data")?;
        LedgerRow {
            kind: row.try_get("kind")?,
            id: row.try_get("id")?,
            client_tenant: row.try_get("client_tenant")?,
            partner_tenant: row.try_get("partner_tenant")?,
            partner_id: row.try_get("partner_id")?,
            client_id: row.try_get("client_id")?,
            connection_id: row.try_get("connection_id")?,
            parent_id: row.try_get("parent_id")?,
            subtype: row.try_get("subtype")?,
            status: row.try_get("status")?,
            currency: row.try_get("currency")?,
            external_id: row.try_get("external_id")?,
            external_key: row.try_get("external_key")?,
            parties: parties.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
            flag: row.try_get("flag")?,
            version: row.try_get("version")?,
            data: parse_json(&data, "ledger row")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

/// The ledger methods of one backend (`$begin` opens its write transaction).
macro_rules! impl_ledger {
    ($ty:ty, $begin:expr) => {
        impl $ty {
            pub(crate) async fn ledger_balances(&self, accounts: &[String]) -> Result<Vec<NetBalance>> {
                if accounts.is_empty() {
                    return Ok(Vec::new());
                }
                let mut out = Vec::new();
                // In chunks, well inside either backend's bind limit.
                for chunk in accounts.chunks(500) {
                    let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                    let q = format!(
                        "SELECT account, currency, available, held, version FROM net_balances \
                         WHERE account IN ({}) ORDER BY account, currency",
                        marks.join(", ")
                    );
                    macro_rules! balance {
                        ($row:expr) => {
                            NetBalance {
                                account: $row.try_get("account")?,
                                currency: $row.try_get("currency")?,
                                available: $row.try_get("available")?,
                                held: $row.try_get("held")?,
                                version: $row.try_get("version")?,
                            }
                        };
                    }
                    if let Some(r) = self.readers() {
                        let args: Vec<&dyn rusqlite::ToSql> = chunk.iter().map(|a| a as &dyn rusqlite::ToSql).collect();
                        out.extend(r.query_all(&q, &args, |row| Ok(balance!(row)))?);
                        continue;
                    }
                    let mut query = sqlx::query(&q);
                    for a in chunk {
                        query = query.bind(a);
                    }
                    for row in query.fetch_all(&self.pool).await? {
                        out.push(balance!(row));
                    }
                }
                Ok(out)
            }

            pub(crate) async fn ledger_get(&self, kind: &str, id: &str) -> Result<Option<LedgerRow>> {
                let q = format!("SELECT {LEDGER_COLS} FROM net_ledger WHERE kind = $1 AND id = $2");
                if let Some(r) = self.readers() {
                    return r.query_opt(&q, &[&kind, &id], |row| Ok(ledger_row_from_row!(row)));
                }
                match sqlx::query(&q).bind(kind).bind(id).fetch_optional(&self.pool).await? {
                    Some(row) => Ok(Some(ledger_row_from_row!(row))),
                    None => Ok(None),
                }
            }

            pub(crate) async fn ledger_by_key(&self, kind: &str, key: &str) -> Result<Option<LedgerRow>> {
                let q = format!("SELECT {LEDGER_COLS} FROM net_ledger WHERE kind = $1 AND external_key = $2");
                if let Some(r) = self.readers() {
                    return r.query_opt(&q, &[&kind, &key], |row| Ok(ledger_row_from_row!(row)));
                }
                match sqlx::query(&q).bind(kind).bind(key).fetch_optional(&self.pool).await? {
                    Some(row) => Ok(Some(ledger_row_from_row!(row))),
                    None => Ok(None),
                }
            }

            pub(crate) async fn ledger_list(
                &self,
                kind: &str,
                filter: &LedgerFilter,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<LedgerRow>> {
                let (q, binds) = list_query(kind, filter, limit, offset);
                if let Some(r) = self.readers() {
                    let long = offset > readers::LONG_OFFSET || limit > 1_000;
                    return r
                        .run(long, || {
                            let args = readers::args(&binds);
                            r.query_all(&q, &args, |row| Ok(ledger_row_from_row!(row)))
                        })
                        .await;
                }
                let rows = bind_all!(sqlx::query(&q), binds).fetch_all(&self.pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(ledger_row_from_row!(row));
                }
                Ok(out)
            }

            pub(crate) async fn ledger_commit(&self, c: &LedgerCommit) -> Result<Committed> {
                if let Some(r) = self.readers() {
                    let c = c.clone();
                    // An outcome other than Done rolls the transaction back: it leaves as an error.
                    let done = r.write(move |tx| match ledger_commit_sqlite(tx, &c)? {
                        Committed::Done => Ok(()),
                        other => Err(StoreError::Conflict(outcome_name(other))),
                    });
                    return match done.await {
                        Ok(()) => Ok(Committed::Done),
                        Err(StoreError::Conflict(name)) if outcome_of(name).is_some() => {
                            Ok(outcome_of(name).expect("checked"))
                        }
                        Err(e) => Err(e),
                    };
                }
                let mut tx = self.pool.begin_with($begin).await?;
                for (scope, nonce) in &c.nonces {
                    let r = sqlx::query(crate::ledger::INSERT_NONCE)
                        .bind(scope)
                        .bind(nonce)
                        .bind(c.now_ms)
                        .execute(&mut *tx)
                        .await;
                    match r {
                        Ok(_) => {}
                        Err(e) if is_unique_violation(&e) => return Ok(Committed::NonceUsed),
                        Err(e) => return Err(e.into()),
                    }
                }
                for b in &c.balances {
                    let r = if b.expected_version == 0 {
                        sqlx::query(crate::ledger::INSERT_BALANCE)
                            .bind(&b.account)
                            .bind(&b.currency)
                            .bind(&b.available)
                            .bind(&b.held)
                            .bind(c.now_ms)
                            .execute(&mut *tx)
                            .await
                    } else {
                        sqlx::query(crate::ledger::UPDATE_BALANCE)
                            .bind(&b.available)
                            .bind(&b.held)
                            .bind(c.now_ms)
                            .bind(&b.account)
                            .bind(&b.currency)
                            .bind(b.expected_version)
                            .execute(&mut *tx)
                            .await
                    };
                    match r {
                        Ok(done) if done.rows_affected() == 1 => {}
                        Ok(_) => return Ok(Committed::Stale),
                        Err(e) if is_unique_violation(&e) => return Ok(Committed::Stale),
                        Err(e) => return Err(e.into()),
                    }
                }
                for (row, expected) in &c.rows {
                    let parties = row.parties_text();
                    let data = row.data.to_string();
                    let r = match expected {
                        None => {
                            sqlx::query(crate::ledger::INSERT_ROW)
                                .bind(&row.kind)
                                .bind(&row.id)
                                .bind(&row.client_tenant)
                                .bind(&row.partner_tenant)
                                .bind(&row.partner_id)
                                .bind(&row.client_id)
                                .bind(&row.connection_id)
                                .bind(&row.parent_id)
                                .bind(&row.subtype)
                                .bind(&row.status)
                                .bind(&row.currency)
                                .bind(&row.external_id)
                                .bind(&row.external_key)
                                .bind(&parties)
                                .bind(row.flag)
                                .bind(&data)
                                .bind(row.created_at)
                                .bind(row.updated_at)
                                .execute(&mut *tx)
                                .await
                        }
                        Some(v) => {
                            sqlx::query(crate::ledger::UPDATE_ROW)
                                .bind(&row.status)
                                .bind(row.flag)
                                .bind(&row.parent_id)
                                .bind(&data)
                                .bind(row.updated_at)
                                .bind(&row.kind)
                                .bind(&row.id)
                                .bind(*v)
                                .bind(&row.subtype)
                                .execute(&mut *tx)
                                .await
                        }
                    };
                    match r {
                        Ok(done) if done.rows_affected() == 1 => {}
                        Ok(_) => return Ok(Committed::Stale),
                        Err(e) if is_unique_violation(&e) => return Ok(Committed::Duplicate),
                        Err(e) => return Err(e.into()),
                    }
                }
                for job in &c.jobs {
                    insert_job!(&mut *tx, job, c.now_ms);
                }
                tx.commit().await?;
                Ok(Committed::Done)
            }
        }
    };
}
