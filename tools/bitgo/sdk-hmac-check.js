// Signs Network requests with npm @bitgo/sdk-hmac exactly as BitGoJS's sdk-api does
// (calculateRequestHeaders over the full URL and the body text), sends them to Patchbay,
// and verifies every answer with the library's verifyResponse. Exits non-zero on any failure.
//   PATCHBAY_URL=http://127.0.0.1:8080 BITGO_TOKEN=v2x... node tools/bitgo/sdk-hmac-check.js
const { calculateRequestHeaders, verifyResponse } = require('@bitgo/sdk-hmac');

const base = process.env.PATCHBAY_URL;
const token = process.env.BITGO_TOKEN;
const ent = '/api/network/v1/enterprises/ent-acme/clients/connections';

async function call(method, path, body, authVersion = 2) {
  const url = base + path;
  const text = body === undefined ? '' : JSON.stringify(body);
  const { hmac, timestamp, tokenHash } = calculateRequestHeaders({ url, token, text, method, authVersion });
  const headers = {
    Authorization: 'Bearer ' + tokenHash,
    'Auth-Timestamp': timestamp.toString(),
    HMAC: hmac,
    'BitGo-Auth-Version': authVersion === 3 ? '3.0' : '2.0',
  };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(url, { method: method.toUpperCase(), headers, body: body === undefined ? undefined : text });
  const answer = await resp.text();
  const check = verifyResponse({
    url,
    statusCode: resp.status,
    text: answer,
    timestamp: resp.headers.get('timestamp'),
    token,
    hmac: resp.headers.get('hmac'),
    method,
    authVersion,
  });
  if (!check.isValid) throw new Error(`invalid response HMAC for ${method} ${path}: ${JSON.stringify(check)}`);
  return { status: resp.status, body: JSON.parse(answer) };
}

(async () => {
  let verified = 0;
  const list = await call('get', ent + '?pageSize=1&pageNumber=0');
  if (list.status !== 200 || list.body.connections.length !== 1) throw new Error('list: ' + JSON.stringify(list));
  verified++;
  const id = list.body.connections[0].id;
  const put = await call('put', `${ent}/${id}`, { name: 'Renamed by sdk-hmac' });
  if (put.status !== 200 || put.body.connection.name !== 'Renamed by sdk-hmac') throw new Error('put: ' + JSON.stringify(put));
  verified++;
  const bad = await call('get', ent + '/not-a-uuid');
  if (bad.status !== 400 || typeof bad.body.error !== 'string') throw new Error('bad id: ' + JSON.stringify(bad));
  verified++;
  const v3 = await call('get', ent + '?pageSize=1', undefined, 3);
  if (v3.status !== 200 || v3.body.connections.length !== 1) throw new Error('v3 list: ' + JSON.stringify(v3));
  verified++;
  console.log(`verified ${verified} signed answers`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
