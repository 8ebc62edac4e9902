//! The Network face: BitGo Off-Exchange Settlement connections under
//! `/api/network/v1/enterprises/{enterpriseId}/...`, wire-compatible with
//! BitGoJS `TradingNetwork` and BitGo's cURL cookbooks.
//!
//! Errors are always `{"error": "<message>"}` (including 400, see
//! docs/compatibility.md).

pub mod hmac;
pub mod initialize;
pub mod notify;
pub mod params;
pub mod wire;

mod allocations;
mod auth;
mod balances;
mod book;
mod clients;
mod connections;
mod disputes;
mod error;
mod onchain;
mod partners;
mod render;
mod settlement_views;
mod settlements;
mod vendor;

use allocations::{
    allocation_signing, create_allocation, create_deallocation, deallocation_signing, get_client_allocation,
    get_partner_allocation, list_client_allocations, list_partner_allocations, update_allocation, update_deallocation,
};
use auth::*;
use balances::{client_balances, partner_balances};
use clients::*;
use connections::*;
pub use error::NetError;
use error::NetResult;
use partners::*;
use render::*;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use patchbay_core::network::{self as rules, check_connection_key, signing_payload, timestamp};
use patchbay_core::seed::kind;
use patchbay_store::{NetConnection, NetConnectionFilter, NetSide, NewJob, Record, RecordWrite, StoreError};
use serde_json::{Map, Value, json};
use std::sync::Arc;

use crate::AppState;
use crate::face::{Face, Headers};
use crate::openapi::{BearerAuth, PlatformResponses};
use params::{RawParams, is_uuid};

pub const SCOPE_READ: &str = "settlement_network_read";
pub const SCOPE_WRITE: &str = "settlement_network_write";
pub const INITIALIZE_JOB: &str = "network.partner_initialize";

pub fn routes() -> Router<AppState> {
    let base = "/api/network/v1/enterprises/{enterpriseId}";
    Router::new()
        .route(&format!("{base}/partners/connections"), get(list_partner_connections))
        .route(&format!("{base}/partners/connections/{{connectionId}}"), get(get_partner_connection))
        .route(&format!("{base}/clients/connections"), get(list_client_connections).post(connect))
        .route(&format!("{base}/clients/connections/signing"), get(signing).post(signing))
        .route(
            &format!("{base}/clients/connections/{{connectionId}}"),
            get(get_client_connection).put(update_connection),
        )
        .route(&format!("{base}/partners"), get(list_partners).post(create_partner))
        .route(&format!("{base}/supportedCurrencies"), get(supported_currencies))
        .route(&format!("{base}/clients"), post(onboard_client))
        .route(&format!("{base}/clients/balances"), get(client_balances))
        .route(&format!("{base}/partners/balances"), get(partner_balances))
        .route(&format!("{base}/clients/connections/{{connectionId}}/allocations"), post(create_allocation))
        .route(&format!("{base}/clients/connections/{{connectionId}}/deallocations"), post(create_deallocation))
        .route(
            &format!("{base}/clients/connections/{{connectionId}}/allocations/signing"),
            get(allocation_signing).post(allocation_signing),
        )
        .route(
            &format!("{base}/clients/connections/{{connectionId}}/deallocations/signing"),
            get(deallocation_signing).post(deallocation_signing),
        )
        .route(&format!("{base}/clients/allocations"), get(list_client_allocations))
        .route(&format!("{base}/clients/allocations/{{allocationId}}"), get(get_client_allocation))
        .route(&format!("{base}/partners/allocations"), get(list_partner_allocations).put(update_allocation))
        .route(&format!("{base}/partners/allocations/{{allocationId}}"), get(get_partner_allocation))
        .route(&format!("{base}/partners/deallocations"), put(update_deallocation))
        .route(
            &format!("{base}/partners/settlements-signing"),
            get(settlements::settlement_signing_get).post(settlements::settlement_signing_post),
        )
        .route(
            &format!("{base}/partners/settlements"),
            get(settlement_views::list_partner_settlements).post(settlements::create_settlement),
        )
        .route(&format!("{base}/partners/settlements/nonReconciled"), post(settlements::create_non_reconciled))
        .route(&format!("{base}/partners/settlements/{{settlementId}}"), get(settlement_views::get_partner_settlement))
        .route(&format!("{base}/clients/settlements"), get(settlement_views::list_client_settlements))
        .route(&format!("{base}/clients/settlements/{{settlementId}}"), get(settlement_views::get_client_settlement))
        .route(&format!("{base}/clients/settlementTransfers"), get(settlement_views::list_client_transfers))
        .route(&format!("{base}/partners/settlements/onchain"), post(onchain::create_onchain))
        .route(&format!("{base}/partners/settlements/onchain/deposits"), post(onchain::create_deposits))
        .route(&format!("{base}/partners/settlements/onchain/deposits/signing"), get(onchain::deposits_signing_get))
        .route(&format!("{base}/partners/trades/signing"), get(onchain::trade_signing_get))
        .route(&format!("{base}/clients/settlements/{{settlementId}}/disputes"), post(disputes::create_dispute))
        .route(&format!("{base}/clients/settlements/disputes/{{disputeId}}"), put(disputes::update_dispute))
        .route(&format!("{base}/clients/settlements/disputes/{{disputeId}}/close"), post(disputes::close_dispute))
        .route(&format!("{base}/clients/settlement/disputes"), get(disputes::list_client_disputes))
        .route(&format!("{base}/partners/settlement/disputes"), get(disputes::list_partner_disputes))
        .route("/api/network/v1/openapi.json", get(|| async { axum::Json(openapi_json()) }))
}

/// Requests whose path has an empty `enterpriseId` segment never match a route;
/// the fallback answers them here with the seed's 400.
pub fn empty_enterprise(path: &str) -> Option<Response> {
    path.starts_with("/api/network/v1/enterprises//")
        .then(|| Face::Network.error(StatusCode::BAD_REQUEST, "enterpriseId must not be empty."))
}

/// The Network face's OpenAPI document: the generated one, its ledger operations
/// described by BitGo's own schemas (vendor.rs).
pub fn openapi_json() -> Value {
    let mut doc = crate::openapi::document::<NetworkApi>();
    vendor::describe(&mut doc);
    doc
}

/// The platform's own answers, in this face's error schema.
const PLATFORM_RESPONSES: PlatformResponses = PlatformResponses("ErrorPayload");

/// The Network face's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Patchbay — BitGo OES Network API", description = "BitGo Off-Exchange Settlement connections, wire-compatible."),
    paths(list_partner_connections, get_partner_connection, list_client_connections, connect, get_client_connection,
          update_connection, signing, signing_get_doc, list_partners, create_partner, onboard_client,
          supported_currencies, balances::client_balances, balances::partner_balances,
          allocations::create_allocation, allocations::create_deallocation, allocations::allocation_signing,
          allocations::deallocation_signing, allocations::list_client_allocations,
          allocations::list_partner_allocations, allocations::get_client_allocation,
          allocations::get_partner_allocation, allocations::update_allocation, allocations::update_deallocation,
          allocations::allocation_signing_get_doc, allocations::deallocation_signing_get_doc,
          settlements::settlement_signing_get, settlements::settlement_signing_post, settlements::create_settlement,
          settlements::create_non_reconciled, settlement_views::list_partner_settlements,
          settlement_views::get_partner_settlement, settlement_views::list_client_settlements,
          settlement_views::get_client_settlement, settlement_views::list_client_transfers, onchain::create_onchain,
          onchain::create_deposits, onchain::deposits_signing_get, onchain::trade_signing_get,
          disputes::create_dispute, disputes::update_dispute, disputes::close_dispute,
          disputes::list_client_disputes, disputes::list_partner_disputes),
    components(schemas(wire::NonEmptyString)),
    modifiers(&BearerAuth, &PLATFORM_RESPONSES),
)]
pub struct NetworkApi;

#[cfg(test)]
mod tests {
    use super::*;

    /// The Connection object as the documented wire type renders it.
    fn documented(c: &NetConnection) -> wire::Connection {
        wire::Connection {
            id: c.id.clone(),
            name: c.name.clone(),
            client_id: c.client_id.clone(),
            partner_id: c.partner_id.clone(),
            network_account_id: c.network_account_id.clone(),
            created_at: timestamp(c.created_at),
            updated_at: timestamp(c.updated_at),
            active: c.active,
            proof: c.proof.clone(),
            nonce: c.nonce.clone(),
            partners_connection_id: c.partners_connection_id.clone(),
            partners_client_id: c.partners_client_id.clone(),
            initialized: c.initialized,
        }
    }

    #[test]
    fn connection_out_writes_the_documented_object_byte_for_byte() {
        let mut c = NetConnection {
            tenant: "ent-1".into(),
            id: "c0a80101-0000-4000-8000-000000000001".into(),
            partner_tenant: "ent-p".into(),
            client_id: "6f1c9a52-3c1e-4f7a-9d4b-2f0d8c1e7a01".into(),
            partner_id: "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02".into(),
            name: "Desk \"1\" \\ \u{1} é".into(),
            active: true,
            nonce: "n-1".into(),
            network_account_id: "0b5d3c1e-8f4a-4c2d-9e7f-1a2b3c4d5e6f".into(),
            proof: "9f86d081".into(),
            partners_connection_id: None,
            partners_client_id: None,
            initialized: false,
            key_schema: "token".into(),
            key: patchbay_core::Sealed { key_id: "k".into(), blob: vec![1] },
            created_at: 1_767_225_600_001,
            updated_at: -1,
        };
        let envelope = |c: &NetConnection| wire::ConnectionEnvelope { connection: documented(c) };
        assert_eq!(String::from_utf8(one_out(&c)).unwrap(), serde_json::to_string(&envelope(&c)).unwrap());
        c.partners_connection_id = Some("pc".into());
        c.partners_client_id = Some("pcl\n".into());
        c.initialized = true;
        c.active = false;
        c.updated_at = 253_402_300_800_000; // year 10000: the long form
        assert_eq!(String::from_utf8(one_out(&c)).unwrap(), serde_json::to_string(&envelope(&c)).unwrap());
        let documented_list = wire::ConnectionsEnvelope { connections: vec![documented(&c), documented(&c)] };
        assert_eq!(many_out(&[c.clone(), c.clone()]), serde_json::to_vec(&documented_list).unwrap());
        let empty = wire::ConnectionsEnvelope { connections: vec![] };
        assert_eq!(many_out(&[]), serde_json::to_vec(&empty).unwrap());
    }
}
