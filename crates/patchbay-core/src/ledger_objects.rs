//! The OES ledger's objects as BitGo's spec writes them (allocations, settlements and
//! their transfers), built in one place for the Network face and for seeds.

use serde_json::{Value, json};

use crate::ledger::{Amount, Direction, Status};
use crate::network::timestamp;

/// What an allocation or deallocation says.
pub struct AllocationFields<'a> {
    pub id: &'a str,
    pub direction: Direction,
    pub connection_id: &'a str,
    pub currency: &'a str,
    pub quantity: Amount,
    pub client_external_id: &'a str,
    pub notes: Option<&'a str>,
    pub initiated_by: &'a str,
    pub status: Status,
    /// `null` unless reserved or released.
    pub reason: Option<&'a str>,
    pub created_ms: i64,
}

/// `V1AllocationGetOutput` (also the POST answers' object).
pub fn allocation_object(f: &AllocationFields<'_>) -> Value {
    let mut o = json!({
        "id": f.id,
        "amount": {"currency": f.currency, "quantity": f.quantity.to_string()},
        "connectionId": f.connection_id,
        "clientExternalId": f.client_external_id,
        "initiatedBy": f.initiated_by,
        "createdAt": timestamp(f.created_ms),
        "updatedAt": timestamp(f.created_ms),
        "retriable": false,
        "reason": f.reason,
        "status": f.status.as_str(),
        "type": f.direction.as_str(),
    });
    if let Some(n) = f.notes {
        o["notes"] = json!(n);
    }
    o
}

/// What a settlement says.
pub struct SettlementFields<'a> {
    pub id: &'a str,
    pub partner_id: &'a str,
    pub external_id: &'a str,
    pub notes: Option<&'a str>,
    /// `offchain` or `onchain`.
    pub settlement_type: &'a str,
    /// `completed`, `pending`, `failed` or `rejected`.
    pub status: &'a str,
    pub reconciled: bool,
    pub initiated_by: &'a str,
    /// Why a failed or rejected settlement did not complete.
    pub reason: Option<&'a str>,
    pub created_ms: i64,
}

/// `V1…SettlementOutput` for its status (`finalizedAt` once completed or rejected).
pub fn settlement_object(f: &SettlementFields<'_>) -> Value {
    let mut s = json!({
        "id": f.id,
        "partnerId": f.partner_id,
        "externalId": f.external_id,
        "status": f.status,
        "settlementType": f.settlement_type,
        "reconciled": f.reconciled,
        "initiatedBy": f.initiated_by,
        "createdAt": timestamp(f.created_ms),
        "updatedAt": timestamp(f.created_ms),
        "lossSLAAlertSent": false,
        "gainSLAAlertSent": false,
        "disputed": false,
    });
    if f.status == "completed" || f.status == "rejected" {
        s["finalizedAt"] = json!(timestamp(f.created_ms));
    }
    if f.status == "failed" || f.status == "rejected" {
        s["reason"] = json!(f.reason.unwrap_or("Refused."));
    }
    if let Some(n) = f.notes {
        s["notes"] = json!(n);
    }
    s
}

/// One end of a transfer: its trading and network account, and the connection's name.
pub struct TransferEnd<'a> {
    pub trading_account: &'a str,
    pub network_account: &'a str,
    pub connection_name: Option<&'a str>,
}

/// A settlement transfer (`V1GetSettlementOkPayload.settlementTransfers` item, with the
/// masked client view's fields beside).
#[allow(clippy::too_many_arguments)]
pub fn transfer_object(
    id: &str,
    settlement: &Value,
    currency: &str,
    quantity: Amount,
    status: &str,
    source: &TransferEnd<'_>,
    destination: &TransferEnd<'_>,
    created_ms: i64,
) -> Value {
    let mut data = json!({
        "id": id,
        "createdAt": timestamp(created_ms),
        "updatedAt": timestamp(created_ms),
        "currency": currency,
        "settlementId": settlement["id"],
        "quantity": quantity.to_string(),
        "txIds": [],
        "status": status,
        "usdValue": Value::Null,
        "settlementStatus": settlement["status"],
        "sourceTradingAccountId": source.trading_account,
        "sourceNetworkAccountId": source.network_account,
        "destinationTradingAccountId": destination.trading_account,
        "destinationNetworkAccountId": destination.network_account,
    });
    if let Some(n) = settlement.get("notes") {
        data["settlementNotes"] = n.clone();
    }
    if let Some(n) = source.connection_name {
        data["sourceConnectionName"] = json!(n);
    }
    if let Some(n) = destination.connection_name {
        data["destinationConnectionName"] = json!(n);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_carry_what_each_status_requires() {
        let a = allocation_object(&AllocationFields {
            id: "a",
            direction: Direction::Deallocation,
            connection_id: "c",
            currency: "ofcusd",
            quantity: Amount::parse_positive("12").unwrap(),
            client_external_id: "x",
            notes: None,
            initiated_by: "u",
            status: Status::Cleared,
            reason: None,
            created_ms: 0,
        });
        assert_eq!(a["reason"], Value::Null);
        assert_eq!(a["type"], "deallocation");
        assert_eq!(a["amount"], json!({"currency": "ofcusd", "quantity": "12"}));
        assert!(a.get("notes").is_none());
        let f = |status| SettlementFields {
            id: "s",
            partner_id: "p",
            external_id: "e",
            notes: Some("n"),
            settlement_type: "offchain",
            status,
            reconciled: true,
            initiated_by: "u",
            reason: None,
            created_ms: 0,
        };
        let s = settlement_object(&f("completed"));
        assert_eq!((s["finalizedAt"].is_string(), s.get("reason")), (true, None));
        let s = settlement_object(&f("rejected"));
        assert_eq!((s["finalizedAt"].is_string(), s["reason"].as_str()), (true, Some("Refused.")));
        let s = settlement_object(&f("pending"));
        assert!(s.get("finalizedAt").is_none() && s.get("reason").is_none());
        let end = |n| TransferEnd { trading_account: "t", network_account: n, connection_name: None };
        let t = transfer_object(
            "t1",
            &s,
            "ofcusd",
            Amount::parse_positive("3").unwrap(),
            "pending_onchain",
            &end("a"),
            &end("b"),
            0,
        );
        assert_eq!((t["settlementStatus"].as_str(), t["settlementNotes"].as_str()), (Some("pending"), Some("n")));
    }
}
