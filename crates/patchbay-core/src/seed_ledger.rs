//! Seeded ledger objects, in any state, for tests: allocations and deallocations,
//! settlements (with their transfers) and disputes (docs/seed-format.md).
//!
//! They are records of what happened; they move no funds. A document states the
//! balances that go with them in `funds` (`{"available", "held"}` where a reserved
//! step holds funds). Every object refers to connections, partners and settlements
//! of the same document. `createdAt` defaults to 2026-01-01T00:00:00Z, so a seed
//! answers the same on every start.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Planner, SeedError, Tenant, canonical_ts, kind, non_empty, one_of, timestamp_field, uuid_field};
use crate::ledger::{self, Amount, Direction, Status};
use crate::ledger_objects::{
    AllocationFields, SettlementFields, TransferEnd, allocation_object, settlement_object, transfer_object,
};
use crate::network::derived_uuid;

const DEFAULT_CREATED: &str = "2026-01-01T00:00:00.000Z";

/// The funds of one account in one currency: `"100"` (available) or `{"available", "held"}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Funds {
    Available(String),
    Pair { available: String, held: String },
}

impl Funds {
    pub(super) fn parts(&self) -> (&str, &str) {
        match self {
            Funds::Available(a) => (a, "0"),
            Funds::Pair { available, held } => (available, held),
        }
    }
    pub(super) fn is_pair(&self) -> bool {
        matches!(self, Funds::Pair { .. })
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedAmount {
    pub currency: String,
    pub quantity: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetAllocation {
    pub id: String,
    pub connection_id: String,
    /// `allocation` (default) or `deallocation`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `reserved`, `cleared` or `released`.
    pub status: String,
    pub amount: SeedAmount,
    pub client_external_id: String,
    pub notes: Option<String>,
    pub reason: Option<String>,
    pub initiated_by: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetSettlement {
    pub id: String,
    pub external_id: String,
    /// `completed` (default), `pending`, `failed` or `rejected`.
    pub status: Option<String>,
    /// `offchain` (default) or `onchain`.
    pub settlement_type: Option<String>,
    /// `{connectionId: {currency: signed base units}}` (positive: the connection receives).
    #[schema(value_type = Object)]
    pub settlement_amounts: Map<String, Value>,
    pub notes: Option<String>,
    pub reason: Option<String>,
    pub reconciled: Option<bool>,
    pub initiated_by: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetDispute {
    pub id: String,
    pub settlement_id: String,
    pub connection_id: String,
    #[schema(value_type = Object)]
    pub expected_transfers: Map<String, Value>,
    pub reason: Option<String>,
    #[serde(default)]
    pub retracted: bool,
    /// Closed by the client (`closureNotes` its notes).
    #[serde(default)]
    pub closed: bool,
    pub closure_notes: Option<String>,
    pub user_id: Option<String>,
    pub created_at: Option<String>,
}

/// What the document says of one of its connections.
struct Conn {
    tenant: String,
    client_id: String,
    partner_id: String,
    partner_tenant: String,
    name: String,
    account: String,
    wallet: String,
}

fn created(path: &str, v: &Option<String>) -> Result<(String, i64), SeedError> {
    let ts = match v {
        Some(t) => {
            timestamp_field(path, t)?;
            canonical_ts(t)
        }
        None => DEFAULT_CREATED.to_string(),
    };
    let ms = chrono::DateTime::parse_from_rfc3339(&ts).map(|t| t.timestamp_millis()).unwrap_or_default();
    Ok((ts, ms))
}

impl Planner {
    pub(super) fn ledger(&mut self, n: &super::NetworkSection) -> Result<(), SeedError> {
        if n.allocations.is_empty() && n.settlements.is_empty() && n.disputes.is_empty() {
            return Ok(());
        }
        let enterprise_of: HashMap<&str, (&str, &str)> = n
            .clients
            .iter()
            .map(|c| (c.id.as_str(), (c.enterprise_id.as_str(), c.wallet_id.as_deref().unwrap_or(c.id.as_str()))))
            .collect();
        let partner_tenant: HashMap<&str, &str> =
            n.partners.iter().map(|p| (p.id.as_str(), p.enterprise_id.as_str())).collect();
        let mut conns: HashMap<String, (String, Conn)> = HashMap::new();
        for c in &n.connections {
            let (Some((tenant, wallet)), Some(pt)) =
                (enterprise_of.get(c.client_id.as_str()), partner_tenant.get(c.partner_id.as_str()))
            else {
                continue;
            };
            conns.insert(
                c.id.to_ascii_lowercase(),
                (
                    c.id.clone(),
                    Conn {
                        tenant: tenant.to_string(),
                        client_id: c.client_id.clone(),
                        partner_id: c.partner_id.clone(),
                        partner_tenant: pt.to_string(),
                        name: c.name.clone(),
                        account: derived_uuid("networkAccount", &c.id),
                        wallet: wallet.to_string(),
                    },
                ),
            );
        }
        let conn = |path: String, id: &str| -> Result<&(String, Conn), SeedError> {
            conns.get(&id.to_ascii_lowercase()).ok_or_else(|| {
                SeedError::new(
                    path,
                    format!("{id:?} is not a connection of this document (with its client and partner)"),
                )
            })
        };

        for (i, a) in n.allocations.iter().enumerate() {
            let p = format!("$.network.allocations[{i}]");
            uuid_field(&format!("{p}.id"), &a.id)?;
            let (cid, c) = conn(format!("{p}.connectionId"), &a.connection_id)?;
            let dir = a.kind.as_deref().unwrap_or("allocation");
            one_of(&format!("{p}.type"), dir, &["allocation", "deallocation"])?;
            one_of(&format!("{p}.status"), &a.status, &["reserved", "cleared", "released"])?;
            non_empty(&format!("{p}.amount.currency"), &a.amount.currency)?;
            let q = Amount::parse_positive(&a.amount.quantity)
                .map_err(|e| SeedError::new(format!("{p}.amount.quantity"), e.to_string()))?;
            non_empty(&format!("{p}.clientExternalId"), &a.client_external_id)?;
            let (_, at) = created(&format!("{p}.createdAt"), &a.created_at)?;
            let status = Status::parse(&a.status).expect("checked");
            let reason = match status {
                Status::Cleared => None,
                _ => Some(a.reason.as_deref().unwrap_or(if status == Status::Reserved {
                    "Awaiting the partner's confirmation."
                } else {
                    "Released by the partner."
                })),
            };
            let id = a.id.to_ascii_lowercase();
            let data = allocation_object(&AllocationFields {
                id: &id,
                direction: Direction::parse(dir).expect("checked"),
                connection_id: cid,
                currency: &a.amount.currency,
                quantity: q,
                client_external_id: &a.client_external_id,
                notes: a.notes.as_deref(),
                initiated_by: a.initiated_by.as_deref().unwrap_or("seed"),
                status,
                reason,
                created_ms: at,
            });
            let r = json!({
                "kind": "allocation", "id": id, "clientTenant": c.tenant, "partnerTenant": c.partner_tenant,
                "partnerId": c.partner_id, "clientId": c.client_id, "connectionId": cid, "parentId": null,
                "subtype": dir, "status": a.status, "currency": a.amount.currency, "externalId": a.client_external_id,
                "externalKey": format!("{}|{}", c.tenant, a.client_external_id), "parties": [], "flag": false,
                "data": data, "createdAt": at, "updatedAt": at,
            });
            self.add(
                &p,
                Tenant::Known("network".into()),
                kind::NET_LEDGER,
                &format!("allocation|{id}"),
                json!({"rows": [r]}),
                None,
            )?;
        }

        let disputed: Vec<String> = n.disputes.iter().map(|d| d.settlement_id.to_ascii_lowercase()).collect();
        let mut settlements: HashMap<String, (String, i64, Vec<String>)> = HashMap::new();
        for (i, s) in n.settlements.iter().enumerate() {
            let p = format!("$.network.settlements[{i}]");
            uuid_field(&format!("{p}.id"), &s.id)?;
            non_empty(&format!("{p}.externalId"), &s.external_id)?;
            let status = s.status.as_deref().unwrap_or("completed");
            one_of(&format!("{p}.status"), status, &["completed", "pending", "failed", "rejected"])?;
            let stype = s.settlement_type.as_deref().unwrap_or("offchain");
            one_of(&format!("{p}.settlementType"), stype, &["offchain", "onchain"])?;
            if s.settlement_amounts.is_empty() {
                return Err(SeedError::new(format!("{p}.settlementAmounts"), "must name at least one connection"));
            }
            let (_, at) = created(&format!("{p}.createdAt"), &s.created_at)?;
            let id = s.id.to_ascii_lowercase();
            let mut lines = Vec::new();
            for (cid, currencies) in &s.settlement_amounts {
                let (cid, c) = conn(format!("{p}.settlementAmounts.{cid}"), cid)?;
                let Value::Object(currencies) = currencies else {
                    return Err(SeedError::new(
                        format!("{p}.settlementAmounts.{cid}"),
                        "must be an object of currency to amount",
                    ));
                };
                for (cur, v) in currencies {
                    let q = v.as_str().and_then(|v| Amount::parse_nonzero(v).ok()).ok_or_else(|| {
                        SeedError::new(
                            format!("{p}.settlementAmounts.{cid}.{cur}"),
                            "must be a signed non-zero integer of base units, as a string",
                        )
                    })?;
                    lines.push((cid.clone(), c, cur.clone(), q));
                }
            }
            let partner_id = lines[0].1.partner_id.clone();
            if lines.iter().any(|l| l.1.partner_id != partner_id) {
                return Err(SeedError::new(
                    format!("{p}.settlementAmounts"),
                    "names connections of different partners",
                ));
            }
            let partner_tenant = lines[0].1.partner_tenant.clone();
            let is_disputed = disputed.contains(&id);
            let mut settlement = settlement_object(&SettlementFields {
                id: &id,
                partner_id: &partner_id,
                external_id: &s.external_id,
                notes: s.notes.as_deref(),
                settlement_type: stype,
                status,
                reconciled: s.reconciled.unwrap_or(true),
                initiated_by: s.initiated_by.as_deref().unwrap_or("seed"),
                reason: s.reason.as_deref(),
                created_ms: at,
            });
            settlement["disputed"] = json!(is_disputed);
            let transfer_status = match (status, stype) {
                ("pending", "onchain") => "pending_onchain",
                ("pending", _) => "pending",
                (other, _) => other,
            };
            let partner_end =
                TransferEnd { trading_account: &partner_id, network_account: &partner_id, connection_name: None };
            let mut rows = Vec::new();
            let mut per_tenant: BTreeMap<String, Vec<Amount>> = BTreeMap::new();
            let mut parties = Vec::new();
            for (k, (cid, c, cur, q)) in lines.iter().enumerate() {
                let end = TransferEnd {
                    trading_account: &c.wallet,
                    network_account: &c.account,
                    connection_name: Some(&c.name),
                };
                let (src, dst, tag) =
                    if q.is_negative() { (&end, &partner_end, "src") } else { (&partner_end, &end, "dst") };
                let tid = derived_uuid("seed-transfer", &format!("{id}|{k}"));
                let data = transfer_object(&tid, &settlement, cur, q.abs(), transfer_status, src, dst, at);
                per_tenant.entry(c.tenant.clone()).or_default().push(*q);
                parties.push(cid.clone());
                parties.push(format!("e:{}", c.tenant));
                rows.push(json!({
                    "kind": "settlement_transfer", "id": tid, "clientTenant": null, "partnerTenant": partner_tenant,
                    "partnerId": partner_id, "clientId": null, "connectionId": cid, "parentId": id,
                    "subtype": status, "status": transfer_status, "currency": cur,
                    "externalId": s.initiated_by.as_deref().unwrap_or("seed"), "externalKey": null,
                    "parties": [format!("e:{}", c.tenant), format!("{tag}:{}", c.tenant), cid], "flag": false,
                    "data": data, "createdAt": at, "updatedAt": at,
                }));
            }
            parties.sort();
            parties.dedup();
            let directions: Map<String, Value> = per_tenant
                .into_iter()
                .filter_map(|(t, amounts)| ledger::transfer_direction(amounts).map(|d| (t, json!(d))))
                .collect();
            let raw = Value::Object(s.settlement_amounts.clone());
            rows.insert(
                0,
                json!({
                    "kind": "settlement", "id": id, "clientTenant": null, "partnerTenant": partner_tenant,
                    "partnerId": partner_id, "clientId": null, "connectionId": null, "parentId": null,
                    "subtype": stype, "status": status, "currency": null, "externalId": s.external_id,
                    "externalKey": format!("{partner_tenant}|{}", s.external_id), "parties": parties, "flag": is_disputed,
                    "data": {"settlement": settlement, "amounts": raw, "directions": directions},
                    "createdAt": at, "updatedAt": at,
                }),
            );
            let connections = lines.iter().map(|l| l.0.clone()).collect();
            settlements.insert(id.clone(), (partner_tenant, at, connections));
            self.add(
                &p,
                Tenant::Known("network".into()),
                kind::NET_LEDGER,
                &format!("settlement|{id}"),
                json!({"rows": rows}),
                None,
            )?;
        }

        for (i, d) in n.disputes.iter().enumerate() {
            let p = format!("$.network.disputes[{i}]");
            uuid_field(&format!("{p}.id"), &d.id)?;
            let sid = d.settlement_id.to_ascii_lowercase();
            let Some((_, _, in_settlement)) = settlements.get(&sid) else {
                return Err(SeedError::new(
                    format!("{p}.settlementId"),
                    format!("{:?} is not a settlement of this document", d.settlement_id),
                ));
            };
            let (cid, c) = conn(format!("{p}.connectionId"), &d.connection_id)?;
            if !in_settlement.contains(cid) {
                return Err(SeedError::new(format!("{p}.connectionId"), "is not a connection of the settlement"));
            }
            ledger::expected_transfers(&d.expected_transfers)
                .map_err(|e| SeedError::new(format!("{p}.expectedTransfers"), e))?;
            let (ts, at) = created(&format!("{p}.createdAt"), &d.created_at)?;
            let id = d.id.to_ascii_lowercase();
            let user = d.user_id.as_deref().unwrap_or("seed");
            let mut dispute = json!({
                "id": id, "createdAt": ts, "updatedAt": ts, "connectionId": cid, "disputedSettlementId": sid,
                "userId": user, "expectedTransfers": d.expected_transfers, "retracted": d.retracted,
            });
            if let Some(r) = d.reason.as_deref().filter(|r| !r.is_empty()) {
                dispute[if d.retracted { "retractedReason" } else { "reason" }] = json!(r);
            }
            if d.retracted {
                dispute["retractedBy"] = json!(user);
                dispute["retractedAt"] = json!(ts);
            }
            let closure = if d.closed {
                let closure_id = derived_uuid("seed-dispute-closure", &id);
                dispute["disputeClosureId"] = json!(closure_id);
                json!({"id": closure_id, "createdAt": ts, "updatedAt": ts, "closedBy": "client", "userId": user,
                       "notes": d.closure_notes.as_deref().unwrap_or("Closed by the client."), "status": "approved",
                       "adjustedTransfers": {}})
            } else {
                Value::Null
            };
            let r = json!({
                "kind": "dispute", "id": id, "clientTenant": c.tenant, "partnerTenant": c.partner_tenant,
                "partnerId": c.partner_id, "clientId": c.client_id, "connectionId": cid, "parentId": sid,
                "subtype": null, "status": if d.closed { "closed" } else { "open" }, "currency": null, "externalId": null,
                "externalKey": format!("{sid}|{cid}"), "parties": [], "flag": d.retracted,
                "data": {"dispute": dispute, "closure": closure}, "createdAt": at, "updatedAt": at,
            });
            self.add(
                &p,
                Tenant::Known("network".into()),
                kind::NET_LEDGER,
                &format!("dispute|{id}"),
                json!({"rows": [r]}),
                None,
            )?;
        }
        Ok(())
    }
}
