// Run Patchbay in sandbox mode from Node tests (Node 20+, no dependencies).
//
// Copy this file next to your tests:
//
//   import { startPatchbay } from './patchbay-sandbox.mjs';
//
//   const pb = await startPatchbay({ seed: { integrations: { ... } } });
//   await pb.addFault({ match: { face: 'integrations', route: '/v1/connection' },
//                       effect: { type: 'status', status: 503 }, first: 1 });
//   ...                                   // point your client at pb.url
//   await pb.verify({ face: 'integrations', route: '/v1/connection' }, { count: 2 });
//   await pb.stop();
//
// The binary is `bin`, else $PATCHBAY_BIN, else `patchbay` on PATH. Every control
// of the sandbox admin API (docs/sandbox.md) has a method; `http()` sends any
// other request (to a face, with the caller's own credentials).

import { AssertionError } from 'node:assert';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

// The line `patchbay serve` prints on stdout once it accepts connections.
const READY = /patchbay listening on (https?:\/\/\S+)/;

/** An admin call answered an unexpected status. */
export class PatchbayError extends Error {
  constructor(method, urlPath, status, body) {
    const shown = typeof body === 'string' ? body : JSON.stringify(body, null, 2);
    super(`${method} ${urlPath} answered ${status}:\n${shown}`);
    this.name = 'PatchbayError';
    Object.assign(this, { method, path: urlPath, status, body });
  }
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * The Patchbay binary: `bin`, else $PATCHBAY_BIN, else `patchbay` on PATH;
 * null when there is none (so a test file can skip).
 */
export function findPatchbay(bin = process.env.PATCHBAY_BIN) {
  if (bin && bin.includes(path.sep)) return isExecutable(bin) ? path.resolve(bin) : null;
  const name = bin || 'patchbay';
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir || '.', name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

const rfc3339 = (v) => (v instanceof Date ? v.toISOString() : v);

// A list answer, whether the server sends a bare array or wraps it in an object
// with one array field (e.g. {"faults": [...]}).
function items(body) {
  if (Array.isArray(body)) return body;
  const lists = Object.values(body ?? {}).filter(Array.isArray);
  if (lists.length === 1) return lists[0];
  throw new Error(`expected a list, got ${JSON.stringify(body)}`);
}

/**
 * Starts `patchbay serve --sandbox` on a fresh SQLite database in a temporary
 * directory, on a free port of 127.0.0.1, and resolves once it listens.
 *
 * - `seed`: a seed document (object) or the path of one, applied at start-up
 *   and again by `reset()`.
 * - `env`: extra environment variables for the server. Inherited PATCHBAY_*
 *   variables are not passed on (a developer's own settings cannot change the
 *   tests); give any you want here.
 * - `startupTimeoutMs`: how long to wait for the banner (60 s).
 *
 * Returns the controls (below) with `url`, `adminToken` and `dir`.
 */
export async function startPatchbay({ seed, bin, env = {}, args = [], startupTimeoutMs = 60_000 } = {}) {
  const binary = findPatchbay(bin);
  if (!binary) {
    throw new Error('no patchbay binary: set PATCHBAY_BIN=/path/to/patchbay or put `patchbay` on PATH');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patchbay-sandbox-'));
  const adminToken = randomBytes(24).toString('base64url');

  let seedFile = null;
  if (typeof seed === 'string') {
    seedFile = path.resolve(seed);
  } else if (seed) {
    seedFile = path.join(dir, 'seed.json');
    fs.writeFileSync(seedFile, JSON.stringify(seed, null, 2));
  }

  const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PATCHBAY_')));
  Object.assign(childEnv, {
    PATCHBAY_ADMIN_TOKEN: adminToken,
    // No PATCHBAY_MASTER_KEYS: with SQLite the server makes a key file beside
    // the database (patchbay.db.key), in our temporary directory.
    PATCHBAY_DATA_DIR: dir,
    // Let Patchbay call servers the test runs on 127.0.0.1 (OAuth token
    // endpoints, webhooks, partners).
    PATCHBAY_OUTBOUND__ALLOW_LOOPBACK: 'true',
    // Background jobs look for work every 20 ms instead of 250 ms.
    PATCHBAY_JOBS__POLL_INTERVAL_MS: '20',
    ...env,
  });

  const argv = ['serve', '--sandbox', '--listen', '127.0.0.1:0', '--database-url', `sqlite://${path.join(dir, 'patchbay.db')}`];
  if (seedFile) argv.push('--seed', seedFile);
  argv.push(...args);

  // Logs go to stderr: into a file, so the pipe never fills and a failed start
  // can show them.
  const stderrPath = path.join(dir, 'stderr.log');
  const stderrFd = fs.openSync(stderrPath, 'w');
  const child = spawn(binary, argv, {
    cwd: dir, // so no ./patchbay.toml of the caller's is picked up
    env: childEnv,
    stdio: ['ignore', 'pipe', stderrFd],
  });
  fs.closeSync(stderrFd); // the child has its own copy

  // If the test process exits without stop(), don't leave the server behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const stdoutTail = [];
  const serverLog = () => {
    try {
      return fs.readFileSync(stderrPath, 'utf8');
    } catch {
      return '';
    }
  };

  let url;
  try {
    url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner within ${startupTimeoutMs / 1000} s`)), startupTimeoutMs);
      child.once('error', (e) => (clearTimeout(timer), reject(e)));
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`exited with ${signal ?? `status ${code}`} during start-up`));
      });
      // readline keeps consuming stdout after the banner, so the pipe never fills.
      readline.createInterface({ input: child.stdout }).on('line', (line) => {
        stdoutTail.push(line);
        if (stdoutTail.length > 200) stdoutTail.shift();
        const m = READY.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1].replace(/\/$/, ''));
        }
      });
    });
  } catch (e) {
    const report =
      `patchbay ${e.message}\ncommand: ${binary} ${argv.join(' ')}\n` +
      `--- stdout ---\n${stdoutTail.join('\n')}\n--- stderr (last 8 kB) ---\n${serverLog().slice(-8192)}`;
    child.kill('SIGKILL');
    process.off('exit', killOnExit);
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(report, { cause: e });
  }

  /**
   * Any request to the server; never throws for an HTTP status. Resolves to
   * `{ status, headers, body }` (body: the raw text) with a `json()` helper.
   * `bearer` sets `Authorization: Bearer ...`.
   */
  async function http(method, urlPath, { json, bearer, headers = {}, query } = {}) {
    let target = url + urlPath;
    if (query) {
      const qs = new URLSearchParams(
        Object.entries(query)
          .filter(([, v]) => v !== undefined && v !== null)
          .map(([k, v]) => [k, String(rfc3339(v))]),
      ).toString();
      if (qs) target += (target.includes('?') ? '&' : '?') + qs;
    }
    const h = { accept: 'application/json', ...headers };
    if (bearer) h.authorization = `Bearer ${bearer}`;
    let body;
    if (json !== undefined) {
      h['content-type'] = 'application/json';
      body = JSON.stringify(json);
    }
    const r = await fetch(target, { method, headers: h, body });
    const text = await r.text();
    return { status: r.status, headers: r.headers, body: text, json: () => (text ? JSON.parse(text) : null) };
  }

  /** An admin call with the admin token: the decoded JSON (null for 204); throws PatchbayError otherwise. */
  async function admin(method, urlPath, json, query) {
    const r = await http(method, urlPath, { json, bearer: adminToken, query });
    if (r.status < 200 || r.status >= 300) {
      let detail;
      try {
        detail = r.json();
      } catch {
        detail = r.body;
      }
      throw new PatchbayError(method, urlPath, r.status, detail);
    }
    return r.json();
  }

  const sandbox = (method, tail, json, query) => admin(method, `/admin/v1/sandbox${tail}`, json, query);
  const enc = encodeURIComponent;

  let stopped = null;

  return {
    url,
    adminToken,
    dir,
    process: child,
    http,
    admin,
    /** What the server wrote to stderr so far (its log). */
    serverLog,

    /** GET /admin/v1/sandbox. */
    status: () => sandbox('GET', ''),

    // ---- clock
    /** `{ now, now_ms, frozen, offset_ms }`. */
    clock: () => sandbox('GET', '/clock'),
    /** Moves the clock forward: '2h' / '30s', or milliseconds (number). */
    advance: (by) => sandbox('POST', '/clock/advance', typeof by === 'number' ? { by_ms: by } : { by }),
    /** Sets the clock to an instant (RFC 3339 string or Date). */
    setClock: (to) => sandbox('POST', '/clock/set', { to: rfc3339(to) }),
    /** Stops the clock, at now or at `at`. */
    freeze: (at) => sandbox('POST', '/clock/freeze', at === undefined ? {} : { at: rfc3339(at) }),
    /** Lets a frozen clock run on from where it stands. */
    resume: () => sandbox('POST', '/clock/resume', {}),

    // ---- deterministic ids, tokens and keys
    deterministic: (seed) => sandbox('PUT', '/deterministic', { seed }),
    deterministicOff: () => sandbox('DELETE', '/deterministic'),

    // ---- fault rules (docs/sandbox.md, "Fault rules")
    /** Adds a rule; resolves to it with its `id`. */
    addFault: (rule) => sandbox('POST', '/faults', rule),
    /** The rules, in creation order, each with `matched` and `hits`. */
    faults: async () => items(await sandbox('GET', '/faults')),
    fault: (id) => sandbox('GET', `/faults/${enc(id)}`),
    deleteFault: (id) => sandbox('DELETE', `/faults/${enc(id)}`),
    clearFaults: () => sandbox('DELETE', '/faults'),

    // ---- request journal
    /**
     * Entries, oldest first. Filters: direction, face, method, route, path
     * (glob), status, principal, tenant, call, since/until (RFC 3339 or Date),
     * limit (the newest N).
     */
    journal: async (filters = {}) => items(await sandbox('GET', '/journal', undefined, filters)),
    /**
     * Asserts how many entries match (`{ count }` or `{ atLeast, atMost }`);
     * resolves to `{ matched }`, throws an AssertionError carrying the server's
     * explanation and the entries it saw.
     */
    async verify(match, { count, atLeast, atMost } = {}) {
      const body = { match };
      if (count !== undefined) body.count = count;
      if (atLeast !== undefined) body.at_least = atLeast;
      if (atMost !== undefined) body.at_most = atMost;
      const r = await http('POST', '/admin/v1/sandbox/journal/verify', { json: body, bearer: adminToken });
      if (r.status === 409) {
        let detail;
        try {
          detail = r.json();
        } catch {
          detail = r.body;
        }
        throw new AssertionError({
          message: `journal verify failed for ${JSON.stringify(body)}:\n${JSON.stringify(detail, null, 2)}`,
          actual: detail?.matched,
          expected: count ?? { atLeast, atMost },
          operator: 'verify',
        });
      }
      if (r.status !== 200) throw new PatchbayError('POST', '/admin/v1/sandbox/journal/verify', r.status, r.body);
      return r.json();
    },
    clearJournal: () => sandbox('DELETE', '/journal'),

    // ---- reset and snapshots
    /**
     * Back to the start-up seed ('seed') or an empty database ('empty'); also
     * clears the journal and fault rules and puts the clock back to real time.
     */
    reset: (to = 'seed') => sandbox('POST', '/reset', { to }),
    /** Saves every table under `name` (replacing a snapshot of that name). */
    snapshot: (name) => sandbox('POST', '/snapshots', { name }),
    restore: (name) => sandbox('POST', `/snapshots/${enc(name)}/restore`, {}),
    snapshots: async () => items(await sandbox('GET', '/snapshots')),
    deleteSnapshot: (name) => sandbox('DELETE', `/snapshots/${enc(name)}`),

    /**
     * Upserts a seed document now (POST /admin/v1/seed). It does not change
     * what reset() goes back to: that is the start-up seed.
     */
    seed: (doc) => admin('POST', '/admin/v1/seed', doc),

    /** SIGTERM, up to 10 s for a graceful exit, then SIGKILL; removes `dir`. Safe to call twice. */
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          let timer;
          const grace = new Promise((resolve) => (timer = setTimeout(resolve, 10_000, 'timeout')));
          const outcome = await Promise.race([exited, grace]);
          clearTimeout(timer);
          if (outcome === 'timeout') {
            child.kill('SIGKILL');
            await exited;
          }
        }
        process.off('exit', killOnExit);
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
