//! Network face domain rules (BitGo OES): Bitcoin signed-message signatures,
//! the signing payload, the proof and the per-connection network account id.

use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use k256::elliptic_curve::bigint::U256;
use k256::elliptic_curve::ops::{LinearCombination, Reduce};
use k256::elliptic_curve::point::AffineCoordinates;
use k256::{ProjectivePoint, Scalar};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Connection-key schemas and the secret fields each requires, in wire order.
pub const KEY_SCHEMAS: &[(&str, &[&str])] = &[
    ("token", &["connectionToken"]),
    ("tokenAndSignature", &["connectionToken", "signature"]),
    ("apiKeyAndSecret", &["apiKey", "apiSecret"]),
    ("clearloop", &["apiKey", "apiSecret", "clientAccountId", "companyRegistrationNumber"]),
];

/// The fields of a connection-key schema, or `None` for an unknown schema.
pub fn key_fields(schema: &str) -> Option<&'static [&'static str]> {
    KEY_SCHEMAS.iter().find(|(s, _)| *s == schema).map(|(_, f)| *f)
}

/// Checks a `connectionKey` object: a known `schema` and every field of it as
/// a non-empty string. Other members are ignored (BitGo Express adds none, but
/// tolerance costs nothing). Returns the schema.
pub fn check_connection_key(key: &Map<String, Value>) -> Result<&'static str, String> {
    let schema = match key.get("schema") {
        Some(Value::String(s)) => s.as_str(),
        _ => return Err("connectionKey.schema is required".into()),
    };
    let (name, fields) = KEY_SCHEMAS.iter().find(|(s, _)| *s == schema).ok_or_else(|| {
        format!("connectionKey.schema {schema:?} is not one of token, tokenAndSignature, apiKeyAndSecret, clearloop")
    })?;
    for f in *fields {
        match key.get(*f) {
            Some(Value::String(v)) if !v.is_empty() => {}
            _ => {
                return Err(format!(
                    "connectionKey.{f} is required for schema {schema:?} and must be a non-empty string"
                ));
            }
        }
    }
    Ok(name)
}

/// The connection key reduced to its schema and fields, in wire order.
pub fn canonical_key(key: &Map<String, Value>) -> Option<String> {
    let schema = key.get("schema")?.as_str()?;
    let fields = key_fields(schema)?;
    let mut out = format!("{{\"schema\":{}", json_str(schema));
    for f in fields {
        out.push_str(&format!(",{}:{}", json_str(f), json_str(key.get(*f)?.as_str()?)));
    }
    out.push('}');
    Some(out)
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// The exact string a client signs to connect: compact JSON of partnerId,
/// name, nonce and connectionKey, in that order (BitGo's cookbook shape).
pub fn signing_payload(partner_id: &str, name: &str, nonce: &str, key: &Map<String, Value>) -> Option<String> {
    Some(format!(
        "{{\"partnerId\":{},\"name\":{},\"nonce\":{},\"connectionKey\":{}}}",
        json_str(partner_id),
        json_str(name),
        json_str(nonce),
        canonical_key(key)?
    ))
}

/// The Bitcoin signed-message digest: SHA256(SHA256(0x18 "Bitcoin Signed Message:\n" varint(len) msg)).
pub fn message_digest(msg: &[u8]) -> [u8; 32] {
    let mut pre = Vec::with_capacity(26 + 9 + msg.len());
    pre.push(0x18);
    pre.extend_from_slice(b"Bitcoin Signed Message:\n");
    let n = msg.len() as u64;
    match n {
        0..=0xfc => pre.push(n as u8),
        0xfd..=0xffff => {
            pre.push(0xfd);
            pre.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            pre.push(0xfe);
            pre.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            pre.push(0xff);
            pre.extend_from_slice(&n.to_le_bytes());
        }
    }
    pre.extend_from_slice(msg);
    Sha256::digest(Sha256::digest(&pre)).into()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature must be 65 bytes of hex (130 characters)")]
    Malformed,
    #[error("signature header byte must be between 27 and 34")]
    BadHeader,
    #[error("the registered public key is not a valid secp256k1 key")]
    BadPublicKey,
    #[error("signature does not verify against the registered public key")]
    Mismatch,
}

/// Verifies a Bitcoin signed-message signature (65 bytes, hex: header, r, s)
/// over `payload` against a SEC1 public key (hex, compressed or not).
pub fn verify_message(payload: &[u8], signature_hex: &str, public_key_hex: &str) -> Result<(), SignatureError> {
    let raw = hex::decode(signature_hex.trim()).map_err(|_| SignatureError::Malformed)?;
    if raw.len() != 65 {
        return Err(SignatureError::Malformed);
    }
    let header = raw[0];
    if !(27..=34).contains(&header) {
        return Err(SignatureError::BadHeader);
    }
    let mut recid = (header - 27) & 3;
    let mut sig = Signature::from_slice(&raw[1..]).map_err(|_| SignatureError::Malformed)?;
    if let Some(low) = sig.normalize_s() {
        // A high-S signature recovers with the other parity once normalised.
        sig = low;
        recid ^= 1;
    }
    let expected = hex::decode(public_key_hex.trim())
        .ok()
        .and_then(|b| VerifyingKey::from_sec1_bytes(&b).ok())
        .ok_or(SignatureError::BadPublicKey)?;
    // bitcoinjs-message recovers the key named by (r, s, recid) and compares it
    // with the expected one. With the key known, the same question costs one
    // double-scalar multiplication instead of two (recovery, then the check
    // recovery does itself): the key recovers from (r, s, recid) exactly when
    // R = (e/s)·G + (r/s)·Q is the point the recovery id names — x = r (or
    // r + n when bit 1 is set) and y of the parity in bit 0.
    let (r, s) = sig.split_scalars();
    let e = <Scalar as Reduce<U256>>::reduce_bytes(&message_digest(payload).into());
    let s_inv: Scalar = Option::from(s.invert()).ok_or(SignatureError::Mismatch)?;
    let q = ProjectivePoint::from(*expected.as_affine());
    let big_r = ProjectivePoint::lincomb(&ProjectivePoint::GENERATOR, &(e * s_inv), &q, &(*r * s_inv)).to_affine();
    let x = big_r.x();
    let x_is_r = x == r.to_bytes();
    let names_r =
        if recid & 2 == 0 { x_is_r } else { !x_is_r && <Scalar as Reduce<U256>>::reduce_bytes(&x) == *r.as_ref() };
    let parity_ok = bool::from(big_r.y_is_odd()) == (recid & 1 == 1);
    if names_r && parity_ok { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// Signs like bitcoinjs-message with a compressed key: header 31 + recid.
pub fn sign_message(payload: &[u8], private_key_hex: &str) -> Result<String, SignatureError> {
    let raw = hex::decode(private_key_hex).map_err(|_| SignatureError::BadPublicKey)?;
    let key = SigningKey::from_slice(&raw).map_err(|_| SignatureError::BadPublicKey)?;
    let (sig, recid) =
        key.sign_prehash_recoverable(&message_digest(payload)).map_err(|_| SignatureError::BadPublicKey)?;
    let mut out = vec![31 + recid.to_byte()];
    out.extend_from_slice(&sig.to_bytes());
    Ok(hex::encode(out))
}

/// The compressed public key (hex) of a private key (hex).
pub fn public_key_of(private_key_hex: &str) -> Option<String> {
    let raw = hex::decode(private_key_hex).ok()?;
    let key = SigningKey::from_slice(&raw).ok()?;
    Some(hex::encode(key.verifying_key().to_encoded_point(true).as_bytes()))
}

/// True for a 33-byte compressed secp256k1 point in hex.
pub fn is_compressed_public_key(hex_key: &str) -> bool {
    hex_key.len() == 66
        && hex::decode(hex_key).is_ok_and(|b| (b[0] == 2 || b[0] == 3) && VerifyingKey::from_sec1_bytes(&b).is_ok())
}

/// `proof`: lowercase hex SHA-256 of the payload bytes as received, a `.`,
/// and the signature hex as received.
pub fn proof(payload: &str, signature: &str) -> String {
    let mut h = Sha256::new();
    h.update(payload.as_bytes());
    h.update(b".");
    h.update(signature.as_bytes());
    hex::encode(h.finalize())
}

/// A stable UUID derived from a name (SHA-256, version 8 "custom" layout), so
/// seeded objects get the same derived ids on every application.
pub fn derived_uuid(namespace: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{namespace}\u{0}{name}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    uuid::Uuid::from_bytes(b).to_string()
}

/// ISO 8601 UTC with milliseconds, as BitGo renders timestamps.
pub fn timestamp(ms: i64) -> String {
    match timestamp_ascii(ms) {
        Some(b) => String::from_utf8_lossy(&b).into_owned(),
        None => chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

/// [`timestamp`] for years 0 to 9999 (`YYYY-MM-DDTHH:MM:SS.mmmZ`, ASCII),
/// without allocating; `None` for other years (chrono then writes a sign and
/// more digits). A list page renders two per connection.
pub fn timestamp_ascii(ms: i64) -> Option<[u8; 24]> {
    // The civil date of a day count (Howard Hinnant's days-to-civil algorithm:
    // 400-year eras of 146,097 days, years starting on 1 March).
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    let mut two = |at: usize, v: i64| {
        buf[at] = b'0' + (v / 10) as u8;
        buf[at + 1] = b'0' + (v % 10) as u8;
    };
    two(0, year / 100);
    two(2, year % 100);
    two(5, month);
    two(8, day);
    two(11, in_day / 3_600_000);
    two(14, in_day / 60_000 % 60);
    two(17, in_day / 1000 % 60);
    two(21, in_day % 100);
    buf[20] = b'0' + (in_day % 1000 / 100) as u8;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_as_chrono_writes_them() {
        let chrono = |ms: i64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        assert_eq!(timestamp(1_767_225_600_001), "2026-01-01T00:00:00.001Z");
        assert_eq!(timestamp(-1), "1969-12-31T23:59:59.999Z");
        let mut ms: i64 = 0x2545_f491_4f6c_dd1d;
        let fixed = [0, -1, 1, 951_782_400_000, 253_402_300_799_999, 253_402_300_800_000, -62_167_219_200_000];
        let mut cases = fixed.to_vec();
        cases.extend([-62_167_219_200_001, i64::MAX, i64::MIN]);
        for _ in 0..20_000 {
            // xorshift, spread over years -300 to 12,000
            ms ^= ms << 13;
            ms ^= ms >> 7;
            ms ^= ms << 17;
            cases.push(ms.rem_euclid(388_000_000_000_000) - 72_000_000_000_000);
        }
        // Every day's first and last millisecond around three century leap rules.
        for day in -27_000..50_000i64 {
            cases.extend([day * 86_400_000, day * 86_400_000 + 86_399_999]);
        }
        for ms in cases {
            assert_eq!(timestamp(ms), chrono(ms), "{ms}");
            if let Some(ascii) = timestamp_ascii(ms) {
                assert_eq!(&ascii[..], chrono(ms).as_bytes(), "{ms}");
            }
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn payload_is_compact_and_ordered() {
        let key = obj(json!({"connectionToken": "t\"q", "schema": "token", "extra": 1}));
        assert_eq!(
            signing_payload("p-1", "Désk", "n", &key).unwrap(),
            r#"{"partnerId":"p-1","name":"Désk","nonce":"n","connectionKey":{"schema":"token","connectionToken":"t\"q"}}"#
        );
        assert!(signing_payload("p", "n", "n", &obj(json!({"schema": "token"}))).is_none());
    }

    #[test]
    fn connection_keys_are_checked_per_schema() {
        assert_eq!(
            check_connection_key(&obj(json!({"schema": "clearloop", "apiKey": "a", "apiSecret": "b",
            "clientAccountId": "c", "companyRegistrationNumber": "d"}))),
            Ok("clearloop")
        );
        assert!(
            check_connection_key(&obj(json!({"schema": "apiKeyAndSecret", "apiKey": "a"})))
                .unwrap_err()
                .contains("apiSecret")
        );
        assert!(check_connection_key(&obj(json!({"schema": "clientIdAndSecret"}))).is_err());
        assert!(check_connection_key(&obj(json!({"schema": "token", "connectionToken": ""}))).is_err());
    }

    #[test]
    fn digest_varint_lengths() {
        // Lengths at the varint boundaries produce distinct, stable digests.
        let a = message_digest(&[b'a'; 252]);
        let b = message_digest(&[b'a'; 253]);
        assert_ne!(a, b);
        assert_eq!(message_digest(b""), message_digest(b""));
    }

    #[test]
    fn sign_and_verify_round_trip_and_rejections() {
        let prv = "00000000000000000000000000000000000000000000000000000000000000c0";
        let pubk = public_key_of(prv).unwrap();
        let sig = sign_message(b"hello", prv).unwrap();
        assert_eq!(verify_message(b"hello", &sig, &pubk), Ok(()));
        assert_eq!(verify_message(b"hellp", &sig, &pubk), Err(SignatureError::Mismatch));
        assert_eq!(verify_message(b"hello", &sig[..128], &pubk), Err(SignatureError::Malformed));
        assert_eq!(verify_message(b"hello", "zz", &pubk), Err(SignatureError::Malformed));
        let mut bad_header = sig.clone();
        bad_header.replace_range(0..2, "11");
        assert_eq!(verify_message(b"hello", &bad_header, &pubk), Err(SignatureError::BadHeader));
        assert_eq!(verify_message(b"hello", &sig, "02abcd"), Err(SignatureError::BadPublicKey));
    }

    #[test]
    fn proof_and_derived_ids_are_deterministic() {
        assert_eq!(proof("p", "s"), hex::encode(Sha256::digest(b"p.s")));
        let a = derived_uuid("networkAccount", "c1");
        assert_eq!(a, derived_uuid("networkAccount", "c1"));
        assert_ne!(a, derived_uuid("networkAccount", "c2"));
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 8);
        assert_eq!(timestamp(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
    }
}
