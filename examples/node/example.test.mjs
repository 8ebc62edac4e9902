// A worked example: an OpenInt-style client's view of Patchbay's sandbox.
// Run with `node --test examples/node/` (PATCHBAY_BIN names the binary).

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import { findPatchbay, startPatchbay } from './patchbay-sandbox.mjs';

const ORG_KEY = 'key_org_a';
const CCFG = 'ccfg_github_01JA';
const CONN = 'conn_github_01JEXAMPLE00000000000000A';

// One organisation with an API key, a customer, a GitHub connector config and
// one connection of that customer (docs/seed-format.md).
const SEED = {
  integrations: {
    organizations: [{ id: 'org_a', name: 'A', apiKey: ORG_KEY }],
    customers: [{ orgId: 'org_a', id: 'cus_1' }],
    connectorConfigs: [
      { id: CCFG, orgId: 'org_a', connectorName: 'github', config: { oauth: { client_id: 'cid', client_secret: 'cs' } } },
    ],
    connections: [
      {
        id: CONN,
        connectorConfigId: CCFG,
        customerId: 'cus_1',
        settings: { oauth: { credentials: { access_token: 'example-token' } } },
      },
    ],
  },
};

// Skip (rather than fail) where there is no binary, except on CI.
const missing = findPatchbay() ? false : 'no patchbay binary: set PATCHBAY_BIN or put `patchbay` on PATH';
if (missing && process.env.CI) throw new Error(missing);

describe('Patchbay sandbox (Integrations face)', { skip: missing }, () => {
  let pb;
  before(async () => {
    pb = await startPatchbay({ seed: SEED });
  });
  after(() => pb?.stop());
  // Every test starts from the seed: no fault rules, an empty journal, real time.
  beforeEach(() => pb.reset());

  const listConnections = () => pb.http('GET', '/v1/connection', { bearer: ORG_KEY });

  it('answers one 503 in OpenInt’s error shape, then serves the listing', async () => {
    await pb.addFault({
      direction: 'inbound',
      match: { face: 'integrations', method: 'GET', route: '/v1/connection' },
      effect: { type: 'status', status: 503 },
      first: 1,
    });

    const failed = await listConnections();
    assert.equal(failed.status, 503);
    const error = failed.json();
    assert.equal(error.code, 'SERVICE_UNAVAILABLE'); // {"code": <tRPC code>, "message"}
    assert.equal(typeof error.message, 'string');

    const ok = await listConnections();
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(
      ok.json().items.map((c) => c.id),
      [CONN],
    );

    await pb.verify({ face: 'integrations', route: '/v1/connection', method: 'GET' }, { count: 2 });
    const statuses = (await pb.journal({ face: 'integrations', route: '/v1/connection' })).map((e) => e.status);
    assert.deepEqual(statuses, [503, 200]);

    // A wrong expectation fails with the server's account of what it saw.
    await assert.rejects(
      pb.verify({ face: 'integrations', route: '/v1/connection' }, { count: 5 }),
      (e) => e instanceof assert.AssertionError && /"matched": 2/.test(e.message),
    );
  });

  it('reset brings back what a test deleted, and clears faults and journal', async () => {
    const gone = await pb.http('DELETE', `/v1/connection/${CONN}`, { bearer: ORG_KEY });
    assert.equal(gone.status, 200, gone.body);
    assert.deepEqual((await listConnections()).json().items, []);
    await pb.addFault({ match: { face: 'integrations' }, effect: { type: 'latency', ms: 1 } });

    await pb.reset();

    assert.deepEqual(
      (await listConnections()).json().items.map((c) => c.id),
      [CONN],
    );
    assert.deepEqual(await pb.faults(), []);
    // The journal now holds only the listing just made.
    await pb.verify({ face: 'integrations' }, { count: 1 });
  });

  it('moves a frozen clock by exactly two hours', async () => {
    await pb.freeze('2027-01-01T00:00:00Z');
    const start = await pb.clock();
    assert.equal(start.frozen, true);
    assert.equal(start.now_ms, Date.UTC(2027, 0, 1));

    await pb.advance('2h');
    const later = await pb.clock();
    assert.equal(later.now_ms - start.now_ms, 7_200_000);
  });
});
