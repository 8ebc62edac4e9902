// The Network face end to end, driven by BitGo's own SDK classes, unmodified, from npm:
//
//   - `TradingNetwork` (@bitgo/sdk-core 38.8.0, dist/src/bitgo/trading/network/network.js) makes
//     every client call; every public method of the class is called at least once;
//   - `TradingAccount` (same package, tradingAccount.js) signs every client payload, through
//     `signPayload({payload, walletPassphrase})`: keychain -> `bitgo.decrypt` -> `signMessage`;
//   - `BitGoAPI` (@bitgo/sdk-api 1.86.0) is the `bitgo` object: its requestPatch signs every
//     request with BitGo v2 HMAC (Authorization: Bearer sha256(token), Auth-Timestamp, HMAC,
//     BitGo-Auth-Version) and verifies the `hmac`/`timestamp` of every 2xx answer, through an
//     `hmacAuthStrategy` that calls npm @bitgo/sdk-hmac 1.9.0 and counts. Any answer that does not
//     verify fails the story.
//
// The partner's side (clear/release, settle) has no SDK class: it is sent through a second
// BitGoAPI with the partner's token (a plain token goes as a v1 bearer; a v2 one is signed too),
// its payloads signed with sdk-core's bip32util.signMessage (Bitcoin signed message).
//
// The only stand-ins are the OFC wallet's local data: its keychain (the user key, encrypted with
// BitGoAPI.encrypt) is answered locally instead of by BitGo's GET /api/v2/ofc/key/{id}, and
// `ofc.signMessage` is sdk-core's BaseCoin.signMessage, line for line.
//
// Packages (tools/bitgo/package.json): the registry here lacks versions sdk-core 38.8.0 asks for
// (@bitgo/public-types 6.56.0, sdk-lib-mpc ^10.16.0, utxo-lib ^11.24.2; cbor-extract 2.2.3's
// platform builds), so `overrides` pins the newest it has. With public-types 6.22.0 the package's
// index (and baseCoin.js) throws at load, so the class files are required by path; they load
// unmodified. sdk-api 1.86.0 wants sdk-core ^37.7.0 and gets its own nested copy, which loads whole.
//
// Run against `patchbay demo` (or any server seeded with crates/patchbay/demo/seed.json); it
// creates fresh connections, allocations and settlements each time, so it can run again:
//   npm ci --prefix tools/bitgo
//   PATCHBAY_URL=http://127.0.0.1:8080 node tools/bitgo/network-story.js
// Environment (defaults are the demo seed's):
//   PATCHBAY_URL (required)          base URL of the server
//   BITGO_TOKEN                      the client user's v2 token (v2x…, 67 characters)
//   BITGO_AUTH_VERSION               2 (default) or 3
//   PATCHBAY_ENTERPRISE              client enterprise (ent-acme)
//   PATCHBAY_CLIENT_ID               its OES client id
//   PATCHBAY_CLIENT_KEY              hex secp256k1 private key of the client's signing key (…01)
//   PATCHBAY_PARTNER_ENTERPRISE      partner enterprise (ent-exchange)
//   PATCHBAY_PARTNER_TOKEN           its token (erin-token-1)
//   PATCHBAY_PARTNER_KEY             hex private key of the partner enterprise's client key (…02)
//   PATCHBAY_PARTNER_ID              an asynchronous partner of that enterprise (…3c02)
//   PATCHBAY_INSTANT_PARTNER_ID      another partner, listed alongside (…3c06)
//   PATCHBAY_CONNECTION_ID           a seeded connection of the client (Desk 1)
'use strict';

const assert = require('assert/strict');
const crypto = require('crypto');
const path = require('path');

const { BitGoAPI } = require('@bitgo/sdk-api');
const sdkHmac = require('@bitgo/sdk-hmac');
const { TradingNetwork } = require('@bitgo/sdk-core/dist/src/bitgo/trading/network/network.js');
const { TradingAccount } = require('@bitgo/sdk-core/dist/src/bitgo/trading/tradingAccount.js');
const bip32util = require('@bitgo/sdk-core/dist/src/bitgo/bip32util.js');

// The @bitgo/utxo-lib that sdk-core itself uses (bip32, networks.bitcoin's message prefix).
const sdkCoreDir = path.dirname(require.resolve('@bitgo/sdk-core/package.json'));
const utxolib = require(require.resolve('@bitgo/utxo-lib', { paths: [sdkCoreDir] }));

const setting = (name, fallback) => process.env[name] || fallback;
const BASE = (process.env.PATCHBAY_URL || '').replace(/\/+$/, '');
const TOKEN = setting('BITGO_TOKEN', 'v2xdeadbeef00000000000000000000000000000000000000000000000000000001');
const AUTH_VERSION = Number(setting('BITGO_AUTH_VERSION', '2'));
const ENT = setting('PATCHBAY_ENTERPRISE', 'ent-acme');
const CLIENT_ID = setting('PATCHBAY_CLIENT_ID', '6f1c9a52-3c1e-4f7a-9d4b-2f0d8c1e7a01');
const CLIENT_KEY = setting('PATCHBAY_CLIENT_KEY', '0'.repeat(63) + '1');
const PARTNER_ENT = setting('PATCHBAY_PARTNER_ENTERPRISE', 'ent-exchange');
const PARTNER_TOKEN = setting('PATCHBAY_PARTNER_TOKEN', 'erin-token-1');
const PARTNER_KEY = setting('PATCHBAY_PARTNER_KEY', '0'.repeat(63) + '2');
const PARTNER_ID = setting('PATCHBAY_PARTNER_ID', '9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02');
const INSTANT_PARTNER_ID = setting('PATCHBAY_INSTANT_PARTNER_ID', '9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c06');
const DESK_1 = setting('PATCHBAY_CONNECTION_ID', 'c0a80101-0000-4000-8000-000000000001');
const CURRENCY = 'ofcusd';
const ALLOCATED = 25000n;
const DEALLOCATED = 5000n;
const REFUSED = 1000n;
const SETTLED = 7000n;

// ---- HMAC: the strategy BitGoAPI signs and verifies through (sdk-hmac's functions, counted) ----

const tally = { signed: 0, checked: 0, verified: 0, failures: [], keychainReads: 0 };
const hmacAuthStrategy = {
  async calculateRequestHeaders(params) {
    tally.signed++;
    return sdkHmac.calculateRequestHeaders(params);
  },
  async verifyResponse(params) {
    const answer = sdkHmac.verifyResponse(params);
    tally.checked++;
    // BitGoAPI itself checks the time window only for v3; the story holds v2 answers to it too.
    if (answer.isValid && answer.isInResponseValidityWindow) {
      tally.verified++;
    } else {
      tally.failures.push(`${params.method.toUpperCase()} ${params.url} -> ${params.statusCode}: hmac ${params.hmac}, ` +
        `timestamp ${params.timestamp}, expected ${answer.expectedHmac}, in window ${answer.isInResponseValidityWindow}`);
    }
    return answer;
  },
  async calculateHMAC(key, message) {
    return sdkHmac.calculateHMAC(key, message);
  },
};

function bitgoWith(accessToken) {
  return new BitGoAPI({
    customRootURI: BASE,
    accessToken,
    authVersion: AUTH_VERSION,
    hmacAuthStrategy,
    // Given, so the constructor does not fetch /api/v1/client/constants (not a Network route).
    clientConstants: { constants: {} },
  });
}

// ---- The OFC wallet of the client, as sdk-core's Wallet presents it to TradingAccount ----

const PASSPHRASE = crypto.randomBytes(16).toString('hex');

function makeWallet(bitgo) {
  const userKey = utxolib.bip32.fromPrivateKey(
    Buffer.from(CLIENT_KEY, 'hex'),
    crypto.createHash('sha256').update('patchbay network story').digest(),
  );
  const keychain = {
    id: 'network-story-user-key',
    pub: userKey.neutered().toBase58(),
    encryptedPrv: bitgo.encrypt({ input: userKey.toBase58(), password: PASSPHRASE }),
  };
  const ofc = {
    getFamily: () => 'ofc',
    // Stands in for BitGo's GET /api/v2/ofc/key/{id} (not a Network route).
    keychains: () => ({
      async get({ id }) {
        tally.keychainReads++;
        assert.equal(id, keychain.id, 'TradingAccount asks for the wallet\'s first key');
        return keychain;
      },
    }),
    // sdk-core 38.8.0 BaseCoin.prototype.signMessage, line for line.
    async signMessage(key, message) {
      return bip32util.signMessage(message, utxolib.bip32.fromBase58(key.prv), utxolib.networks.bitcoin);
    },
  };
  const data = { id: 'network-story-wallet', enterprise: ENT, coin: 'ofc', keys: [keychain.id], userKeySigningRequired: true };
  return {
    bitgo,
    baseCoin: ofc,
    id: () => data.id,
    keyIds: () => data.keys,
    toJSON: () => data,
    // sdk-core 38.8.0 Wallet.prototype.toTradingAccount.
    toTradingAccount() {
      if (this.baseCoin.getFamily() !== 'ofc') {
        throw new Error('Can only convert an Offchain (OFC) wallet to a trading account');
      }
      return new TradingAccount(data.enterprise, this, this.bitgo);
    },
  };
}

/** The partner signs as BitGoJS signs (Bitcoin signed message, compressed key, 65 bytes hex). */
function partnerSign(payload) {
  return bip32util.signMessage(payload, Buffer.from(PARTNER_KEY, 'hex'), utxolib.networks.bitcoin).toString('hex');
}

const nonce = () => crypto.randomBytes(32).toString('hex');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// ---- Steps ----

let steps = 0;
function step(text) {
  steps++;
  console.log(`ok ${String(steps).padStart(2)} ${text}`);
}

function describe(e) {
  if (e && e.status !== undefined) {
    return `${e.status} ${e.message} ${JSON.stringify(e.result)}`;
  }
  return e && e.stack ? e.stack : String(e);
}

/** An SDK call whose failure names the method, its arguments and the server's answer. */
async function call(what, params, fn) {
  try {
    return await fn();
  } catch (e) {
    throw new Error(`${what}(${JSON.stringify(params)}) failed: ${describe(e)}`);
  }
}

function accountBalance(balances, currency) {
  const b = (balances || {})[currency] || {};
  return { available: BigInt(b.available || '0'), held: BigInt(b.held || '0') };
}

async function main() {
  if (!BASE) {
    throw new Error('PATCHBAY_URL is required (e.g. http://127.0.0.1:8080)');
  }
  if (TOKEN.length !== 67 && !TOKEN.startsWith('v2x')) {
    throw new Error('BITGO_TOKEN must be a v2 token (v2x…, 67 characters): the story verifies every signed answer');
  }
  const bitgo = bitgoWith(TOKEN);
  const partnerBitgo = bitgoWith(PARTNER_TOKEN);
  const wallet = makeWallet(bitgo);
  const account = wallet.toTradingAccount();
  const network = account.toNetwork();
  assert.ok(network instanceof TradingNetwork);

  // Every public method of the class, as the class has them; each call is recorded.
  const methods = Object.getOwnPropertyNames(TradingNetwork.prototype).filter(
    (m) => m !== 'constructor' && typeof TradingNetwork.prototype[m] === 'function',
  );
  const called = new Set();
  const sdk = {};
  for (const m of methods) {
    sdk[m] = (params) => {
      called.add(m);
      return call(`TradingNetwork.${m}`, params, () => network[m](params));
    };
  }
  const sign = (payload) => call('TradingAccount.signPayload', { payload }, () => account.signPayload({ payload, walletPassphrase: PASSPHRASE }));
  const clientUrl = (p) => bitgo.microservicesUrl(`/api/network/v1/enterprises/${ENT}${p}`);
  const partnerUrl = (p) => partnerBitgo.microservicesUrl(`/api/network/v1/enterprises/${PARTNER_ENT}${p}`);
  const raw = (client, method, url, body, query) =>
    call(`${method.toUpperCase()} ${url}`, body, () => {
      let req = client[method](url);
      if (query) req = req.query(query);
      if (body !== undefined) req = req.send(body);
      return req.result();
    });
  const signedBody = (fields, signer) => {
    const payload = JSON.stringify(fields);
    return Promise.resolve(signer(payload)).then((signature) => ({ ...fields, payload, signature }));
  };

  // 1. Reads.
  const currencies = await sdk.getSupportedCurrencies({ partnerIds: [PARTNER_ID, INSTANT_PARTNER_ID] });
  assert.equal(typeof currencies.domain, 'string');
  for (const p of [PARTNER_ID, INSTANT_PARTNER_ID]) {
    const list = currencies.supportedCurrencies[p];
    assert.ok(Array.isArray(list), `supportedCurrencies has ${p}`);
    const usd = list.find((c) => c.ofcCurrency === CURRENCY);
    assert.ok(usd && Array.isArray(usd.partnerNames) && typeof usd.backingCurrency === 'string', `${p} supports ${CURRENCY}`);
  }
  step(`getSupportedCurrencies: ${Object.keys(currencies.supportedCurrencies).length} partners, domain ${currencies.domain}`);

  const before = await sdk.getBalances();
  assert.equal(before.clientId, CLIENT_ID);
  const trading0 = accountBalance(before.balances, CURRENCY);
  assert.ok(trading0.available >= ALLOCATED + REFUSED, `the trading account has ${CURRENCY} to allocate`);
  step(`getBalances: client ${before.clientId}, ${CURRENCY} available ${trading0.available}, ` +
    `${Object.keys(before.networkBalances).length} network accounts`);

  const partners = await sdk.getPartners();
  const partnerIds = partners.partners.map((p) => p.id);
  assert.ok(partnerIds.includes(PARTNER_ID) && partnerIds.includes(INSTANT_PARTNER_ID), `partners: ${partnerIds}`);
  const onePartner = await sdk.getPartners({ ids: [PARTNER_ID] });
  assert.deepEqual(onePartner.partners.map((p) => p.id), [PARTNER_ID], 'the ids filter sent in the GET body applies');
  const partner = onePartner.partners[0];
  assert.equal(partner.connectionKeySchema, 'token');
  step(`getPartners: ${partnerIds.length} partners; filtered by ids -> ${partner.name}`);

  const connections = await sdk.getConnections();
  assert.ok(connections.connections.some((c) => c.id === DESK_1), 'Desk 1 is listed');
  const oneConnection = await sdk.getConnections({ connectionIds: DESK_1 });
  assert.deepEqual(oneConnection.connections.map((c) => c.id), [DESK_1], 'the connectionIds filter sent in the GET body applies');
  step(`getConnections: ${connections.connections.length} connections; filtered by connectionIds -> 1`);

  const desk = (await sdk.getConnectionById({ connectionId: DESK_1 })).connection;
  assert.equal(desk.id, DESK_1);
  assert.equal(desk.partnerId, PARTNER_ID);
  assert.equal(desk.clientId, CLIENT_ID);
  assert.ok(before.networkBalances[desk.networkAccountId], 'getBalances has the desk\'s network account');
  step(`getConnectionById: ${desk.name} (network account ${desk.networkAccountId})`);

  // 2. A new connection, signed through TradingAccount.signPayload; then renamed.
  const suffix = crypto.randomBytes(4).toString('hex');
  const connect = {
    partnerId: PARTNER_ID,
    name: `Story desk ${suffix}`,
    nonce: nonce(),
    connectionKey: { schema: 'token', connectionToken: `story-token-${suffix}` },
  };
  const signing = await raw(bitgo, 'post', clientUrl('/clients/connections/signing'), connect);
  assert.equal(signing.payload, JSON.stringify(connect), 'the signing route answers the documented payload');
  const created = (await sdk.createConnection({ ...connect, payload: signing.payload, signature: await sign(signing.payload) })).connection;
  assert.ok(UUID.test(created.id) && UUID.test(created.networkAccountId), 'ids are UUIDs');
  assert.equal(created.name, connect.name);
  assert.equal(created.partnerId, PARTNER_ID);
  assert.equal(created.clientId, CLIENT_ID);
  assert.equal(created.nonce, connect.nonce);
  assert.equal(created.active, true);
  assert.match(created.proof, /^[0-9a-f]{64}$/);
  step(`createConnection: ${created.name} ${created.id} (initialized ${created.initialized})`);

  const renamed = `${connect.name} (renamed)`;
  const updated = (await sdk.updateConnection({ connectionId: created.id, name: renamed })).connection;
  assert.equal(updated.name, renamed);
  assert.equal((await sdk.getConnectionById({ connectionId: created.id })).connection.name, renamed);
  step(`updateConnection: renamed to "${renamed}"`);
  const conn = created.id;
  const networkAccount = created.networkAccountId;

  // 3. Allocation, prepared (and signed) by TradingNetwork.prepareAllocation: reserved.
  const allocationRequest = {
    connectionId: conn,
    amount: { currency: CURRENCY, quantity: ALLOCATED.toString() },
    notes: 'network story allocation',
    clientExternalId: crypto.randomUUID(),
    nonce: nonce(),
  };
  const allocationSigning = await raw(bitgo, 'post', clientUrl(`/clients/connections/${conn}/allocations/signing`), allocationRequest);
  const prepared = await sdk.prepareAllocation({ ...allocationRequest, walletPassphrase: PASSPHRASE });
  assert.equal(prepared.payload, allocationSigning.payload, 'prepareAllocation signs the payload the signing route answers');
  assert.match(prepared.signature, /^[0-9a-f]{130}$/);
  const allocation = (await sdk.createAllocation(prepared)).allocation;
  assert.ok(UUID.test(allocation.id));
  assert.equal(allocation.status, 'reserved');
  assert.equal(allocation.type, 'allocation');
  assert.equal(allocation.connectionId, conn);
  assert.equal(allocation.clientExternalId, allocationRequest.clientExternalId);
  assert.deepEqual(allocation.amount, allocationRequest.amount);
  assert.equal(allocation.notes, allocationRequest.notes);
  step(`prepareAllocation + createAllocation: ${ALLOCATED} ${CURRENCY} -> ${allocation.status} (${allocation.id})`);

  const listed = await sdk.getAllocations({ connectionIds: [conn] });
  assert.deepEqual(listed.allocations.map((a) => a.id), [allocation.id], 'the connectionIds filter sent in the GET body applies');
  const fetched = (await sdk.getAllocationById({ allocationId: allocation.id })).allocation;
  assert.equal(fetched.status, 'reserved');
  let balances = await sdk.getBalances();
  let trading = accountBalance(balances.balances, CURRENCY);
  assert.equal(trading.available, trading0.available - ALLOCATED, 'reserved funds leave the available balance');
  assert.equal(trading.held, trading0.held + ALLOCATED, 'and are held until the partner answers');
  step(`getAllocations / getAllocationById: reserved; trading ${CURRENCY} available ${trading.available}, held ${trading.held}`);

  // 4. The partner clears it.
  const partnerView = (await raw(partnerBitgo, 'get', partnerUrl(`/partners/connections/${conn}`))).connection;
  assert.equal(partnerView.id, conn);
  const partnersClientId = partnerView.partnersClientId || `story-partner-client-${suffix}`;
  const partnersConnectionId = partnerView.partnersConnectionId || `story-partner-connection-${suffix}`;
  const partnerStep = (d, id, quantity, status, extra = {}) =>
    signedBody(
      {
        [`${d}Id`]: id,
        amount: { currency: CURRENCY, quantity: quantity.toString() },
        clientId: CLIENT_ID,
        connectionId: conn,
        partnersClientId,
        partnersConnectionId,
        [`partners${d[0].toUpperCase()}${d.slice(1)}Id`]: `story-${d}-${crypto.randomBytes(4).toString('hex')}`,
        status,
        nonce: nonce(),
        ...extra,
      },
      partnerSign,
    );
  const clear = await partnerStep('allocation', allocation.id, ALLOCATED, 'cleared');
  const cleared = await raw(partnerBitgo, 'put', partnerUrl('/partners/allocations'), clear);
  assert.equal(cleared.allocationId, allocation.id);
  assert.equal(cleared.partnersAllocationId, clear.partnersAllocationId);
  const afterClear = (await sdk.getAllocationById({ allocationId: allocation.id })).allocation;
  assert.equal(afterClear.status, 'cleared');
  assert.equal(afterClear.partnerExternalId, clear.partnersAllocationId);
  balances = await sdk.getBalances();
  trading = accountBalance(balances.balances, CURRENCY);
  let onNetwork = accountBalance((balances.networkBalances[networkAccount] || {}).balances, CURRENCY);
  assert.ok(balances.networkBalances[networkAccount], 'getBalances has the new connection\'s network account');
  assert.equal(balances.networkBalances[networkAccount].partnerId, PARTNER_ID);
  assert.deepEqual([trading.available, trading.held], [trading0.available - ALLOCATED, trading0.held]);
  assert.deepEqual([onNetwork.available, onNetwork.held], [ALLOCATED, 0n], 'the cleared allocation is on the network account');
  step(`partner PUT /partners/allocations cleared; getBalances: network account ${CURRENCY} available ${onNetwork.available}`);

  // 5. Deallocations: one the partner clears (funds come back), one it releases (refused).
  const deallocate = async (quantity, notes) => {
    const body = {
      connectionId: conn,
      amount: { currency: CURRENCY, quantity: quantity.toString() },
      notes,
      clientExternalId: crypto.randomUUID(),
      nonce: nonce(),
    };
    const signingAnswer = await raw(bitgo, 'post', clientUrl(`/clients/connections/${conn}/deallocations/signing`), body);
    const payload = JSON.stringify(body);
    assert.equal(payload, signingAnswer.payload, 'the deallocation signing route answers the payload BitGoJS builds');
    const answer = await sdk.createDeallocation({ ...body, payload, signature: await sign(payload) });
    // The spec (V1ReservedDeallocationsPostPayload) says `deallocation`; sdk-core's
    // CreateNetworkDeallocationResponse type says `allocation`.
    const d = answer.deallocation || answer.allocation;
    assert.ok(d, `a deallocation object in ${JSON.stringify(answer)}`);
    assert.equal(d.type, 'deallocation');
    assert.equal(d.status, 'reserved');
    assert.deepEqual(d.amount, body.amount);
    return d;
  };
  const back = await deallocate(DEALLOCATED, 'network story deallocation');
  balances = await sdk.getBalances();
  onNetwork = accountBalance(balances.networkBalances[networkAccount].balances, CURRENCY);
  assert.deepEqual([onNetwork.available, onNetwork.held], [ALLOCATED - DEALLOCATED, DEALLOCATED]);
  const release = await partnerStep('deallocation', back.id, DEALLOCATED, 'cleared');
  const releasedAnswer = await raw(partnerBitgo, 'put', partnerUrl('/partners/deallocations'), release);
  assert.equal(releasedAnswer.deallocationId, back.id);
  balances = await sdk.getBalances();
  trading = accountBalance(balances.balances, CURRENCY);
  onNetwork = accountBalance(balances.networkBalances[networkAccount].balances, CURRENCY);
  assert.deepEqual([onNetwork.available, onNetwork.held], [ALLOCATED - DEALLOCATED, 0n]);
  assert.equal(trading.available, trading0.available - ALLOCATED + DEALLOCATED, 'the deallocated funds are back');
  step(`createDeallocation ${DEALLOCATED} -> reserved; partner PUT /partners/deallocations cleared; trading available ${trading.available}`);

  const refused = await deallocate(REFUSED, 'network story refused deallocation');
  const refuse = await partnerStep('deallocation', refused.id, REFUSED, 'released', { rejectReason: 'Refused by the story.' });
  await raw(partnerBitgo, 'put', partnerUrl('/partners/deallocations'), refuse);
  const refusedNow = (await sdk.getAllocationById({ allocationId: refused.id })).allocation;
  assert.equal(refusedNow.status, 'released');
  assert.equal(refusedNow.reason, 'Refused by the story.');
  const deallocations = await sdk.getAllocations({ connectionIds: [conn], types: ['deallocation'] });
  assert.deepEqual(
    deallocations.allocations.map((a) => `${a.id}:${a.status}`).sort(),
    [`${back.id}:cleared`, `${refused.id}:released`].sort(),
    'the types filter sent in the GET body applies',
  );
  balances = await sdk.getBalances();
  onNetwork = accountBalance(balances.networkBalances[networkAccount].balances, CURRENCY);
  assert.deepEqual([onNetwork.available, onNetwork.held], [ALLOCATED - DEALLOCATED, 0n], 'a released deallocation leaves the funds');
  step(`createDeallocation ${REFUSED} -> partner released it ("${refusedNow.reason}"); network available ${onNetwork.available}`);

  // 6. The partner settles: the connection pays it.
  const settle = await signedBody(
    {
      externalId: `story-settlement-${suffix}`,
      settlementAmounts: { [conn]: { [CURRENCY]: (-SETTLED).toString() } },
      nonce: nonce(),
    },
    partnerSign,
  );
  const settledAnswer = await raw(partnerBitgo, 'post', partnerUrl('/partners/settlements'), settle);
  const settlementId = (settledAnswer.settlement || {}).id;
  assert.ok(UUID.test(settlementId || ''), `a settlement id in ${JSON.stringify(settledAnswer)}`);
  step(`partner POST /partners/settlements: ${settlementId} (${settledAnswer.settlement.status})`);

  const settlements = await sdk.getSettlements({ settlementIds: [settlementId] });
  assert.deepEqual(settlements.settlements.map((s) => s.id), [settlementId], 'the settlementIds filter sent in the GET body applies');
  assert.equal(settlements.settlements[0].externalId, settle.externalId);
  assert.equal(settlements.settlements[0].partnerId, PARTNER_ID);
  const one = await sdk.getSettlementById({ settlementId });
  assert.equal(one.settlement.id, settlementId);
  const transfers = await sdk.getSettlementTransfers({ settlementIds: [settlementId] });
  const ours = (list) => list.filter((t) => t.currency === CURRENCY);
  assert.ok(ours(transfers.settlementTransfers).length > 0, 'the settlement has transfers');
  for (const list of [one.settlementTransfers, transfers.settlementTransfers]) {
    for (const t of list) {
      assert.equal(t.settlementId, settlementId);
    }
  }
  const byId = (list) => Object.fromEntries(ours(list).map((t) => [t.id, t.quantity]));
  assert.deepEqual(byId(one.settlementTransfers), byId(transfers.settlementTransfers), 'both routes show the same transfers');
  const moved = ours(transfers.settlementTransfers).reduce((sum, t) => sum + BigInt(t.quantity), 0n);
  const paid = ours(transfers.settlementTransfers).every((t) => t.sourceNetworkAccountId === networkAccount);
  assert.ok(paid, `every ${CURRENCY} transfer leaves the connection's network account: ${JSON.stringify(transfers.settlementTransfers)}`);
  assert.equal(moved, SETTLED, `the transfers move ${SETTLED} ${CURRENCY}: ${JSON.stringify(transfers.settlementTransfers)}`);
  balances = await sdk.getBalances();
  onNetwork = accountBalance(balances.networkBalances[networkAccount].balances, CURRENCY);
  assert.equal(onNetwork.available, ALLOCATED - DEALLOCATED - SETTLED, 'the settlement debited the network account');
  step(`getSettlements / getSettlementById / getSettlementTransfers: ${ours(transfers.settlementTransfers).length} transfer(s) of ` +
    `${moved} ${CURRENCY}; network available ${onNetwork.available}`);

  // 7. The client disputes it, then closes the dispute.
  const disputeBody = await signedBody(
    { connectionId: conn, reason: 'The story expected one unit less.', expectedTransfers: { [CURRENCY]: '-1' }, nonce: nonce() },
    sign,
  );
  const disputed = await raw(bitgo, 'post', clientUrl(`/clients/settlements/${settlementId}/disputes`), disputeBody);
  const dispute = disputed.dispute;
  assert.ok(dispute && UUID.test(dispute.id), `a dispute in ${JSON.stringify(disputed)}`);
  assert.equal(dispute.disputedSettlementId, settlementId);
  assert.equal(dispute.connectionId, conn);
  assert.deepEqual(dispute.expectedTransfers, disputeBody.expectedTransfers);
  step(`POST /clients/settlements/{id}/disputes: dispute ${dispute.id}`);

  const closeBody = await signedBody({ notes: 'Closed by the story.', nonce: nonce() }, sign);
  const closedAnswer = await raw(bitgo, 'post', clientUrl(`/clients/settlements/disputes/${dispute.id}/close`), closeBody);
  const closure = closedAnswer.disputeClosure;
  assert.ok(closure && UUID.test(closure.id), `a disputeClosure in ${JSON.stringify(closedAnswer)}`);
  assert.equal(closure.notes, closeBody.notes);
  const closedList = await raw(bitgo, 'get', clientUrl('/clients/settlement/disputes'), undefined, { closed: true, disputeIds: dispute.id });
  const closed = (closedList.disputes || []).find((d) => d.id === dispute.id);
  assert.ok(closed, `GET /clients/settlement/disputes?closed=true lists the dispute: ${JSON.stringify(closedList)}`);
  assert.equal(closed.disputeClosure && closed.disputeClosure.id, closure.id);
  step(`POST /clients/settlements/disputes/{id}/close; GET /clients/settlement/disputes?closed=true lists it`);

  // Every public method of TradingNetwork was called, and every signed answer verified.
  const missed = methods.filter((m) => !called.has(m));
  assert.deepEqual(missed, [], `TradingNetwork methods never called: ${missed}`);
  assert.ok(tally.keychainReads > 0, 'TradingAccount signed with the user key');
  if (tally.failures.length > 0) {
    throw new Error(`answers whose HMAC did not verify:\n  ${tally.failures.join('\n  ')}`);
  }
  assert.ok(tally.verified > 0, 'signed answers were verified');
  assert.equal(tally.checked, tally.signed, 'every signed request had its answer checked');
  assert.equal(tally.verified, tally.signed, 'every signed request had its answer verified');
  step(`all ${methods.length} TradingNetwork methods called; ${tally.signed} requests signed, ${tally.verified} answers verified`);
  console.log(`network story: ${steps} steps, ${tally.verified} signed answers verified`);
}

main().catch((e) => {
  console.error(`network story failed after ${steps} steps: ${e && e.message ? e.message : e}`);
  if (tally.failures.length > 0) {
    console.error(`answers whose HMAC did not verify:\n  ${tally.failures.join('\n  ')}`);
  }
  process.exit(1);
});
