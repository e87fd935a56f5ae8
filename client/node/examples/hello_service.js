'use strict';
// An example web service (node:http) whose GET /hello needs an API key with
// the scope admin:read.
//
//   LUMOKEYS_ADDRESS=... LUMOKEYS_SERVICE_TOKEN_FILE=... \
//   LUMOKEYS_TENANT=acme-corp [LUMOKEYS_TLS_CA_FILE=...] \
//   node client/node/examples/hello_service.js 127.0.0.1:8091
//
// Prints "listening on <host>:<port>" once it serves (port 0: any free one).
const http = require('http');
const { Verifier } = require('..');

const REQUIRED_SCOPES = ['admin:read'];
const [host, port] = (process.argv[2] || '127.0.0.1:8091').split(/:(?=\d+$)/);
const verifier = Verifier.fromEnv();

function answer(res, status, headers, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json',
                          'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

const server = http.createServer(async (req, res) => {
  if (req.method !== 'GET' || req.url !== '/hello') {
    answer(res, 404, {}, { error: true, status: 404,
                           code: 'resource_not_found',
                           message: 'no such page' });
    return;
  }
  const verdict = await verifier.verify(req.headers, REQUIRED_SCOPES,
                                        req.socket.remoteAddress);
  if (!verdict.ok) {
    answer(res, verdict.status, verdict.headers, verdict.body);
    return;
  }
  answer(res, 200, {}, { hello: verdict.key.name, keyId: verdict.key.id,
                         scopes: verdict.key.scopes });
});

server.listen(Number(port), host, () => {
  console.log(`listening on ${host}:${server.address().port}`);
});
process.on('SIGTERM', () => {
  server.close();
  verifier.close();
});
