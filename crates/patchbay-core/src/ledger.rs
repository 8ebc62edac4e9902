//! The OES ledger's rules: exact amounts, balances, the allocation and
//! deallocation state machine, settlements and their transfers.
//!
//! Nothing here reads or writes storage. A step takes the balances it touches,
//! returns the movements it makes and checks that no balance goes below zero;
//! the store writes the result in one transaction (or not at all).
//!
//! Accounts (docs/compatibility.md, "OES ledger"):
//! - a client's **trading account** (its Go Account), per client enterprise;
//! - a connection's **network account** (`networkAccountId`), where allocated funds sit;
//! - a partner's **settlement account**, the other side of every offchain settlement.

use std::collections::BTreeMap;
use std::fmt;

/// An exact quantity in a currency's base units (satoshis, wei): an integer of
/// at most 38 digits, never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i128);

/// The largest number of digits an amount may have (i128 holds every 38-digit integer).
pub const MAX_DIGITS: usize = 38;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be a string of base-unit digits")]
    NotAnInteger,
    #[error("must have at most 38 digits")]
    TooLong,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("must not be zero")]
    Zero,
}

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// A quantity as the spec's positive amounts are written: digits only, more than zero.
    pub fn parse_positive(s: &str) -> Result<Amount, AmountError> {
        let a = Self::parse_signed(s)?;
        if s.starts_with('-') || a.0 <= 0 {
            return Err(AmountError::NotPositive);
        }
        Ok(a)
    }

    /// A signed quantity (`"-100"`, `"250"`); zero refused (settlement amounts).
    pub fn parse_nonzero(s: &str) -> Result<Amount, AmountError> {
        let a = Self::parse_signed(s)?;
        if a.0 == 0 {
            return Err(AmountError::Zero);
        }
        Ok(a)
    }

    /// A signed quantity: an optional `-`, then decimal digits (a `.0…` fraction of
    /// zeros only is accepted, as BigNumber writes integers; any other fraction is refused).
    pub fn parse_signed(s: &str) -> Result<Amount, AmountError> {
        let (negative, rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let digits = match rest.split_once('.') {
            Some((int, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => int,
            Some(_) => return Err(AmountError::NotAnInteger),
            None => rest,
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::NotAnInteger);
        }
        let significant = digits.trim_start_matches('0');
        if significant.len() > MAX_DIGITS {
            return Err(AmountError::TooLong);
        }
        let v: i128 = if significant.is_empty() { 0 } else { significant.parse().map_err(|_| AmountError::TooLong)? };
        Ok(Amount(if negative { -v } else { v }))
    }

    pub fn from_i128(v: i128) -> Amount {
        Amount(v)
    }
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
    pub fn abs(self) -> Amount {
        Amount(self.0.abs())
    }
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }
}

impl std::ops::Neg for Amount {
    type Output = Amount;
    fn neg(self) -> Amount {
        Amount(-self.0)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What an account holds of one currency: free to use, and held by a step in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    pub available: Amount,
    pub held: Amount,
}

/// Where funds sit. The key is what the store indexes balances by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Account {
    /// A client enterprise's trading account (Go Account).
    Trading(String),
    /// A connection's network account (its `networkAccountId`).
    Network(String),
    /// A partner's settlement account (by partner id).
    Partner(String),
}

impl Account {
    pub fn key(&self) -> String {
        match self {
            Account::Trading(e) => format!("trading:{e}"),
            Account::Network(n) => format!("network:{n}"),
            Account::Partner(p) => format!("partner:{p}"),
        }
    }
    pub fn parse(key: &str) -> Option<Account> {
        let (kind, id) = key.split_once(':')?;
        Some(match kind {
            "trading" => Account::Trading(id.into()),
            "network" => Account::Network(id.into()),
            "partner" => Account::Partner(id.into()),
            _ => return None,
        })
    }
}

/// One change to one balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub account: Account,
    pub currency: String,
    pub available: Amount,
    pub held: Amount,
}

impl Movement {
    fn new(account: &Account, currency: &str, available: i128, held: i128) -> Self {
        Self { account: account.clone(), currency: currency.into(), available: Amount(available), held: Amount(held) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient {currency} balance: {available} available, {wanted} requested")]
    Insufficient { account: Account, currency: String, available: Amount, wanted: Amount },
    #[error("the amount is too large")]
    Overflow,
    #[error("cannot move {kind} {id} from {from} to {to}")]
    Transition { kind: &'static str, id: String, from: Status, to: Status },
}

/// The balances a step reads, keyed by account and currency; a missing entry is zero.
pub type Balances = BTreeMap<(Account, String), Balance>;

/// Applies movements to balances: every result non-negative, or nothing changes.
pub fn apply(balances: &mut Balances, moves: &[Movement]) -> Result<(), LedgerError> {
    let mut next = balances.clone();
    for m in moves {
        let b = next.entry((m.account.clone(), m.currency.clone())).or_default();
        let available = b.available.checked_add(m.available).ok_or(LedgerError::Overflow)?;
        let held = b.held.checked_add(m.held).ok_or(LedgerError::Overflow)?;
        if available.is_negative() || held.is_negative() {
            return Err(LedgerError::Insufficient {
                account: m.account.clone(),
                currency: m.currency.clone(),
                available: b.available,
                wanted: (-m.available).max(-m.held),
            });
        }
        *b = Balance { available, held };
    }
    *balances = next;
    Ok(())
}

/// An allocation moves funds from the client's trading account to a connection's
/// network account; a deallocation moves them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Allocation,
    Deallocation,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Allocation => "allocation",
            Direction::Deallocation => "deallocation",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allocation" => Some(Direction::Allocation),
            "deallocation" => Some(Direction::Deallocation),
            _ => None,
        }
    }
}

/// `AllocationStatus`: reserved until the partner clears or releases it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Reserved,
    Cleared,
    Released,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Reserved => "reserved",
            Status::Cleared => "cleared",
            Status::Released => "released",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reserved" => Some(Status::Reserved),
            "cleared" => Some(Status::Cleared),
            "released" => Some(Status::Released),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two accounts an allocation or deallocation moves funds between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationAccounts {
    pub trading: Account,
    pub network: Account,
}

impl AllocationAccounts {
    pub fn new(client_enterprise: &str, network_account_id: &str) -> Self {
        Self {
            trading: Account::Trading(client_enterprise.into()),
            network: Account::Network(network_account_id.into()),
        }
    }
    /// Where the funds come from: the trading account for an allocation, the network account for a deallocation.
    fn source(&self, d: Direction) -> &Account {
        match d {
            Direction::Allocation => &self.trading,
            Direction::Deallocation => &self.network,
        }
    }
    fn destination(&self, d: Direction) -> &Account {
        match d {
            Direction::Allocation => &self.network,
            Direction::Deallocation => &self.trading,
        }
    }
}

/// Reserving: the amount leaves the source's available funds and is held there.
pub fn reserve(d: Direction, at: &AllocationAccounts, currency: &str, q: Amount) -> Vec<Movement> {
    vec![Movement::new(at.source(d), currency, -q.0, q.0)]
}

/// Clearing at once (a partner that allocates synchronously): straight from source to destination.
pub fn clear_now(d: Direction, at: &AllocationAccounts, currency: &str, q: Amount) -> Vec<Movement> {
    vec![Movement::new(at.source(d), currency, -q.0, 0), Movement::new(at.destination(d), currency, q.0, 0)]
}

/// A reserved step settled by the partner: cleared (the held funds reach the
/// destination) or released (they return to the source's available funds).
/// Only a reserved step moves; anything else is a conflict.
pub fn resolve(
    d: Direction,
    id: &str,
    from: Status,
    to: Status,
    at: &AllocationAccounts,
    currency: &str,
    q: Amount,
) -> Result<Vec<Movement>, LedgerError> {
    let src = at.source(d);
    match (from, to) {
        (Status::Reserved, Status::Cleared) => {
            Ok(vec![Movement::new(src, currency, 0, -q.0), Movement::new(at.destination(d), currency, q.0, 0)])
        }
        (Status::Reserved, Status::Released) => Ok(vec![Movement::new(src, currency, q.0, -q.0)]),
        _ => Err(LedgerError::Transition { kind: d.as_str(), id: id.into(), from, to }),
    }
}

/// One line of a settlement: `quantity` of `currency` from one account to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub source: Account,
    pub destination: Account,
    pub currency: String,
    pub quantity: Amount,
}

/// A settlement's amounts as the partner sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettlementAmounts {
    /// `{networkAccount: {currency: signed}}`: positive, the client's network account
    /// receives from the partner; negative, it pays the partner.
    Party(BTreeMap<String, BTreeMap<String, Amount>>),
    /// `{party: {counterparty: {currency: signed}}}`: positive, the party receives
    /// from the counterparty; negative, it pays the counterparty.
    Counterparty(BTreeMap<String, BTreeMap<String, BTreeMap<String, Amount>>>),
}

/// The transfers a settlement makes, keyed by network account (the caller maps
/// connection ids to network accounts first); the partner's account is the other
/// side of party amounts. Ordered: by the party, then the currency.
pub fn settlement_transfers(amounts: &SettlementAmounts, partner: &Account) -> Vec<Transfer> {
    let mut out = Vec::new();
    let line = |out: &mut Vec<Transfer>, party: Account, other: Account, currency: &str, q: Amount| {
        let (source, destination) = if q.is_negative() { (party, other) } else { (other, party) };
        out.push(Transfer { source, destination, currency: currency.into(), quantity: q.abs() });
    };
    match amounts {
        SettlementAmounts::Party(map) => {
            for (account, currencies) in map {
                for (currency, q) in currencies {
                    line(&mut out, Account::Network(account.clone()), partner.clone(), currency, *q);
                }
            }
        }
        SettlementAmounts::Counterparty(map) => {
            for (party, others) in map {
                for (counterparty, currencies) in others {
                    for (currency, q) in currencies {
                        line(
                            &mut out,
                            Account::Network(party.clone()),
                            Account::Network(counterparty.clone()),
                            currency,
                            *q,
                        );
                    }
                }
            }
        }
    }
    out
}

/// The movements of completed transfers: available funds from source to destination.
pub fn transfer_movements(transfers: &[Transfer]) -> Vec<Movement> {
    transfers
        .iter()
        .flat_map(|t| {
            [
                Movement::new(&t.source, &t.currency, -t.quantity.0, 0),
                Movement::new(&t.destination, &t.currency, t.quantity.0, 0),
            ]
        })
        .collect()
}

/// The movements of transfers paid from outside the ledger (an on-chain deposit):
/// only the destination is credited.
pub fn deposit_movements(transfers: &[Transfer]) -> Vec<Movement> {
    transfers.iter().map(|t| Movement::new(&t.destination, &t.currency, t.quantity.0, 0)).collect()
}

/// The net effect of transfers on each account and currency (for agreement checks).
pub fn net_of(transfers: &[Transfer]) -> BTreeMap<(Account, String), Amount> {
    let mut net: BTreeMap<(Account, String), Amount> = BTreeMap::new();
    for t in transfers {
        let s = net.entry((t.source.clone(), t.currency.clone())).or_default();
        *s = Amount(s.0 - t.quantity.0);
        let d = net.entry((t.destination.clone(), t.currency.clone())).or_default();
        *d = Amount(d.0 + t.quantity.0);
    }
    net
}

/// `TransferDirection` of a settlement as one client sees it, from the signed
/// net amounts of its own accounts (`None` when it neither sends nor receives).
pub fn transfer_direction(amounts: impl IntoIterator<Item = Amount>) -> Option<&'static str> {
    let (mut sends, mut receives) = (false, false);
    for a in amounts {
        sends |= a.is_negative();
        receives |= !a.is_negative() && !a.is_zero();
    }
    match (sends, receives) {
        (true, true) => Some("send-and-receive"),
        (true, false) => Some("send"),
        (false, true) => Some("receive"),
        (false, false) => None,
    }
}

/// The lifecycle of a dispute: open (retracted or not) until closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeState {
    Open { retracted: bool },
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisputeError {
    #[error("the dispute is closed")]
    Closed,
    #[error("the settlement is not disputable: {0}")]
    NotDisputable(&'static str),
}

/// Updating a dispute: only while open.
pub fn dispute_update(state: DisputeState, retracted: Option<bool>) -> Result<DisputeState, DisputeError> {
    match state {
        DisputeState::Closed => Err(DisputeError::Closed),
        DisputeState::Open { retracted: r } => Ok(DisputeState::Open { retracted: retracted.unwrap_or(r) }),
    }
}

/// Closing a dispute: only once.
pub fn dispute_close(state: DisputeState) -> Result<DisputeState, DisputeError> {
    match state {
        DisputeState::Closed => Err(DisputeError::Closed),
        DisputeState::Open { .. } => Ok(DisputeState::Closed),
    }
}

/// Whether a settlement can be disputed: completed or pending, and within the window.
pub fn disputable(
    status: &str,
    finalized_ms: Option<i64>,
    window_minutes: Option<i64>,
    now_ms: i64,
) -> Result<(), DisputeError> {
    if status != "completed" && status != "pending" {
        return Err(DisputeError::NotDisputable("it is not completed or pending"));
    }
    if let (Some(at), Some(w)) = (finalized_ms, window_minutes)
        && now_ms > at.saturating_add(w.saturating_mul(60_000))
    {
        return Err(DisputeError::NotDisputable("the dispute window has passed"));
    }
    Ok(())
}

/// Expected transfers of a dispute: `{currency: signed non-zero amount}`.
pub fn expected_transfers(
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<BTreeMap<String, Amount>, String> {
    let mut out = BTreeMap::new();
    for (currency, v) in map {
        let s = v.as_str().ok_or_else(|| format!("expectedTransfers.{currency} must be a string."))?;
        let a = Amount::parse_nonzero(s).map_err(|e| format!("expectedTransfers.{currency} {e}."))?;
        out.insert(currency.clone(), a);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: i128) -> Amount {
        Amount(v)
    }

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(Amount::parse_positive("100000000"), Ok(a(100_000_000)));
        assert_eq!(Amount::parse_positive("007"), Ok(a(7)));
        assert_eq!(Amount::parse_positive("5.000"), Ok(a(5)));
        // 38 digits fit; 39 do not.
        let big = "9".repeat(38);
        assert_eq!(Amount::parse_positive(&big).unwrap().to_string(), big);
        assert_eq!(Amount::parse_positive(&"9".repeat(39)), Err(AmountError::TooLong));
        // 1 ETH in wei and more: far past f64's exact range.
        assert_eq!(Amount::parse_positive("123456789012345678901").unwrap().to_string(), "123456789012345678901");
        for bad in ["", "-", "1.5", "0x10", "1e3", " 1", "+1", "1,000", "１"] {
            assert_eq!(Amount::parse_positive(bad), Err(AmountError::NotAnInteger), "{bad:?}");
        }
        for nonpositive in ["0", "-1", "000", "-0"] {
            assert_eq!(Amount::parse_positive(nonpositive), Err(AmountError::NotPositive), "{nonpositive:?}");
        }
        assert_eq!(Amount::parse_nonzero("-250"), Ok(a(-250)));
        assert_eq!(Amount::parse_nonzero("0"), Err(AmountError::Zero));
    }

    #[test]
    fn apply_is_all_or_nothing_and_never_negative() {
        let t = Account::Trading("e".into());
        let n = Account::Network("n".into());
        let mut b = Balances::new();
        b.insert((t.clone(), "ofcbtc".into()), Balance { available: a(100), held: a(0) });
        let at = AllocationAccounts { trading: t.clone(), network: n.clone() };
        apply(&mut b, &reserve(Direction::Allocation, &at, "ofcbtc", a(60))).unwrap();
        assert_eq!(b[&(t.clone(), "ofcbtc".into())], Balance { available: a(40), held: a(60) });
        // A second 60 does not fit: refused, and nothing changed.
        let before = b.clone();
        let err = apply(&mut b, &reserve(Direction::Allocation, &at, "ofcbtc", a(60))).unwrap_err();
        assert!(matches!(err, LedgerError::Insufficient { available, .. } if available == a(40)));
        assert_eq!(b, before);
        // Overflow is refused too.
        let huge = Amount::parse_positive(&"9".repeat(38)).unwrap();
        let mut c = Balances::new();
        c.insert((n.clone(), "x".into()), Balance { available: huge, held: a(0) });
        let moves = vec![Movement::new(&n, "x", i128::MAX, 0)];
        assert_eq!(apply(&mut c, &moves), Err(LedgerError::Overflow));
    }

    #[test]
    fn allocation_and_deallocation_lifecycles() {
        let at = AllocationAccounts::new("ent", "acct");
        let (t, n) = (at.trading.clone(), at.network.clone());
        let key = |acc: &Account| (acc.clone(), "ofcusd".to_string());
        let mut b = Balances::new();
        b.insert(key(&t), Balance { available: a(1000), held: a(0) });
        // Allocate 300: reserved, then cleared into the network account.
        apply(&mut b, &reserve(Direction::Allocation, &at, "ofcusd", a(300))).unwrap();
        let cleared =
            resolve(Direction::Allocation, "a1", Status::Reserved, Status::Cleared, &at, "ofcusd", a(300)).unwrap();
        apply(&mut b, &cleared).unwrap();
        assert_eq!(b[&key(&t)], Balance { available: a(700), held: a(0) });
        assert_eq!(b[&key(&n)], Balance { available: a(300), held: a(0) });
        // A cleared allocation cannot move again.
        assert!(matches!(
            resolve(Direction::Allocation, "a1", Status::Cleared, Status::Released, &at, "ofcusd", a(300)),
            Err(LedgerError::Transition { .. })
        ));
        // Allocate 200 and release: back to the trading account.
        apply(&mut b, &reserve(Direction::Allocation, &at, "ofcusd", a(200))).unwrap();
        apply(
            &mut b,
            &resolve(Direction::Allocation, "a2", Status::Reserved, Status::Released, &at, "ofcusd", a(200)).unwrap(),
        )
        .unwrap();
        assert_eq!(b[&key(&t)], Balance { available: a(700), held: a(0) });
        // Deallocate 100: held in the network account, cleared back to trading.
        apply(&mut b, &reserve(Direction::Deallocation, &at, "ofcusd", a(100))).unwrap();
        assert_eq!(b[&key(&n)], Balance { available: a(200), held: a(100) });
        apply(
            &mut b,
            &resolve(Direction::Deallocation, "d1", Status::Reserved, Status::Cleared, &at, "ofcusd", a(100)).unwrap(),
        )
        .unwrap();
        assert_eq!(b[&key(&t)], Balance { available: a(800), held: a(0) });
        assert_eq!(b[&key(&n)], Balance { available: a(200), held: a(0) });
        // Deallocating more than is allocated is refused.
        assert!(apply(&mut b, &reserve(Direction::Deallocation, &at, "ofcusd", a(201))).is_err());
        // Synchronous clearing moves it in one step.
        apply(&mut b, &clear_now(Direction::Allocation, &at, "ofcusd", a(50))).unwrap();
        assert_eq!(b[&key(&n)], Balance { available: a(250), held: a(0) });
        // The total is conserved throughout.
        let total: i128 = b.values().map(|x| x.available.0 + x.held.0).sum();
        assert_eq!(total, 1000);
    }

    #[test]
    fn settlements_move_exact_amounts_and_agree() {
        let p = Account::Partner("p".into());
        let mut party = BTreeMap::new();
        party.insert("n1".to_string(), BTreeMap::from([("ofcbtc".to_string(), a(-5)), ("ofcusd".to_string(), a(700))]));
        party.insert("n2".to_string(), BTreeMap::from([("ofcbtc".to_string(), a(3))]));
        let transfers = settlement_transfers(&SettlementAmounts::Party(party), &p);
        assert_eq!(
            transfers,
            vec![
                Transfer {
                    source: Account::Network("n1".into()),
                    destination: p.clone(),
                    currency: "ofcbtc".into(),
                    quantity: a(5)
                },
                Transfer {
                    source: p.clone(),
                    destination: Account::Network("n1".into()),
                    currency: "ofcusd".into(),
                    quantity: a(700)
                },
                Transfer {
                    source: p.clone(),
                    destination: Account::Network("n2".into()),
                    currency: "ofcbtc".into(),
                    quantity: a(3)
                },
            ]
        );
        let mut b = Balances::new();
        b.insert((Account::Network("n1".into()), "ofcbtc".into()), Balance { available: a(5), held: a(0) });
        b.insert((p.clone(), "ofcusd".into()), Balance { available: a(1000), held: a(0) });
        // The partner holds no ofcbtc beyond what n1 pays: 5 in, 3 out.
        apply(&mut b, &transfer_movements(&transfers)).unwrap();
        assert_eq!(b[&(p.clone(), "ofcbtc".into())].available, a(2));
        assert_eq!(b[&(p.clone(), "ofcusd".into())].available, a(300));
        let deposit = deposit_movements(&transfers[1..2]);
        assert_eq!(deposit, vec![Movement::new(&Account::Network("n1".into()), "ofcusd", 700, 0)]);
        let net = net_of(&transfers);
        assert_eq!(net[&(p.clone(), "ofcbtc".into())], a(2));
        assert_eq!(net[&(Account::Network("n1".into()), "ofcusd".into())], a(700));
        // Counterparty form: n1 receives 10 from n2.
        let cp = SettlementAmounts::Counterparty(BTreeMap::from([(
            "n1".to_string(),
            BTreeMap::from([("n2".to_string(), BTreeMap::from([("ofcusd".to_string(), a(10))]))]),
        )]));
        let t2 = settlement_transfers(&cp, &p);
        assert_eq!(t2[0].source, Account::Network("n2".into()));
        assert_eq!(t2[0].destination, Account::Network("n1".into()));
        assert_eq!(transfer_direction([a(-1), a(2)]), Some("send-and-receive"));
        assert_eq!(transfer_direction([a(2)]), Some("receive"));
        assert_eq!(transfer_direction([a(-2)]), Some("send"));
        assert_eq!(transfer_direction([]), None);
    }

    #[test]
    fn disputes_open_update_and_close_once() {
        let s = DisputeState::Open { retracted: false };
        let s = dispute_update(s, Some(true)).unwrap();
        assert_eq!(s, DisputeState::Open { retracted: true });
        let s = dispute_close(s).unwrap();
        assert_eq!(dispute_close(s), Err(DisputeError::Closed));
        assert_eq!(dispute_update(s, None), Err(DisputeError::Closed));
        assert!(disputable("completed", Some(0), Some(60), 3_600_000).is_ok());
        assert!(disputable("completed", Some(0), Some(60), 3_600_001).is_err());
        assert!(disputable("failed", None, None, 0).is_err());
        let m: serde_json::Map<_, _> = serde_json::from_str(r#"{"ofcbtc":"-5","ofcusd":"10"}"#).unwrap();
        assert_eq!(expected_transfers(&m).unwrap()["ofcbtc"], a(-5));
        let zero: serde_json::Map<_, _> = serde_json::from_str(r#"{"ofcbtc":"0"}"#).unwrap();
        assert!(expected_transfers(&zero).is_err());
    }
}
