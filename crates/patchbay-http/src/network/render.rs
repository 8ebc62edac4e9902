//! The Network objects as answered: connections written field by field (byte for byte
//! what the documented wire types write), partners from their records.

use super::*;

/// The Connection object (V1ConnectionOutput), written straight from the stored
/// connection: the fields and order of [`wire::Connection`] (which documents
/// it in the OpenAPI document), field by field into the response buffer (a
/// list page writes a hundred; the test below checks the bytes against
/// `serde_json` writing the documented type).
pub(super) fn write_connection(out: &mut Vec<u8>, c: &NetConnection) {
    use crate::face::{write_json_opt_str as opt, write_json_str as text};
    let flag = |b: bool| if b { &b"true"[..] } else { b"false" };
    out.extend_from_slice(b"{\"id\":");
    text(out, &c.id);
    out.extend_from_slice(b",\"name\":");
    text(out, &c.name);
    out.extend_from_slice(b",\"clientId\":");
    text(out, &c.client_id);
    out.extend_from_slice(b",\"partnerId\":");
    text(out, &c.partner_id);
    out.extend_from_slice(b",\"networkAccountId\":");
    text(out, &c.network_account_id);
    out.extend_from_slice(b",\"createdAt\":");
    crate::face::write_json_millis(out, c.created_at);
    out.extend_from_slice(b",\"updatedAt\":");
    crate::face::write_json_millis(out, c.updated_at);
    out.extend_from_slice(b",\"active\":");
    out.extend_from_slice(flag(c.active));
    out.extend_from_slice(b",\"proof\":");
    text(out, &c.proof);
    out.extend_from_slice(b",\"nonce\":");
    text(out, &c.nonce);
    out.extend_from_slice(b",\"partnersConnectionId\":");
    opt(out, c.partners_connection_id.as_deref());
    out.extend_from_slice(b",\"partnersClientId\":");
    opt(out, c.partners_client_id.as_deref());
    out.extend_from_slice(b",\"initialized\":");
    out.extend_from_slice(flag(c.initialized));
    out.push(b'}');
}

/// `{"connection": …}` (wire::ConnectionEnvelope).
pub(super) fn one_out(conn: &NetConnection) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"connection\":");
    write_connection(&mut out, conn);
    out.push(b'}');
    out
}

/// `{"connections": […]}` (wire::ConnectionsEnvelope).
pub(super) fn many_out(conns: &[NetConnection]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + conns.len() * 512);
    out.extend_from_slice(b"{\"connections\":");
    crate::face::write_json_list(&mut out, conns, write_connection);
    out.push(b'}');
    out
}

pub(super) fn connection_out(conn: &NetConnection) -> NetResult {
    Ok(crate::face::json_bytes_response(StatusCode::OK, one_out(conn)))
}

pub(super) fn typed<T: serde::Serialize>(v: T) -> NetResult {
    Ok(crate::face::json_response(StatusCode::OK, &v))
}

pub(super) fn partner_trust_org(p: &Record) -> String {
    p.data["trustOrg"].as_str().unwrap_or("BitGo Trust").to_string()
}

pub(super) fn partner_json(p: &Record) -> wire::Partner {
    let d = &p.data;
    let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
    wire::Partner {
        id: p.id.clone(),
        name: text("name"),
        institution_id: d["institutionId"].as_str().map(str::to_string),
        institution_identifier: text("institutionIdentifier"),
        connection_key_schema: text("connectionKeySchema"),
        active: d["active"].as_bool().unwrap_or(true),
        trust_org: partner_trust_org(p),
        stable_partner: d["stablePartner"].as_bool().unwrap_or(false),
        enterprise_id: p.tenant.clone(),
        public_key: d["publicKey"].as_str().map(str::to_string),
        client_dispute_window_minutes: d["clientDisputeWindowMinutes"].as_number().cloned(),
        top_up_window_minutes: d["topUpWindowMinutes"].as_number().cloned(),
    }
}
