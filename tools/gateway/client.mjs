// A connector-gateway client written the way many public apps read their
// integrations' tokens (global fetch, X-Replit-Token), run unchanged against
// Patchbay by tests/gateway.rs. No dependencies: Node's own fetch; the server's
// CA comes from NODE_EXTRA_CA_CERTS.
//
// Environment: CONNECTORS_HOSTNAME (host[:port]), REPL_IDENTITY or
// WEB_REPL_RENEWAL (the identity), CONNECTOR (default google-mail).
// Prints one JSON line: {access_token, expires_at, connection_id}.

async function getAccessToken() {
  const hostname = process.env.CONNECTORS_HOSTNAME;
  const xReplitToken = process.env.REPL_IDENTITY
    ? 'repl ' + process.env.REPL_IDENTITY
    : process.env.WEB_REPL_RENEWAL
      ? 'depl ' + process.env.WEB_REPL_RENEWAL
      : null;
  if (!xReplitToken) {
    throw new Error('X_REPLIT_TOKEN not found for repl/depl');
  }
  const connector = process.env.CONNECTOR || 'google-mail';
  const res = await fetch(
    'https://' + hostname + '/api/v2/connection?include_secrets=true&connector_names=' + connector,
    { headers: { Accept: 'application/json', X_REPLIT_TOKEN: xReplitToken } },
  );
  if (!res.ok) {
    throw new Error(`connection lookup failed: HTTP ${res.status} ${await res.text()}`);
  }
  const data = await res.json();
  const connectionSettings = data.items?.[0];
  const accessToken =
    connectionSettings?.settings?.access_token || connectionSettings?.settings?.oauth?.credentials?.access_token;
  if (!connectionSettings || !accessToken) {
    throw new Error(connector + ' not connected');
  }
  return {
    access_token: accessToken,
    expires_at: connectionSettings.settings.expires_at ?? connectionSettings.settings.oauth?.credentials?.expires_at,
    connection_id: connectionSettings.id,
  };
}

getAccessToken().then(
  (r) => console.log(JSON.stringify(r)),
  (e) => {
    console.error(String(e?.cause ?? e));
    process.exit(1);
  },
);
