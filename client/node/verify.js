'use strict';
// Verify the API key of an incoming HTTP request with LumoKeys and turn the
// outcome into the HTTP answer to send (docs/clients.md).
//
//   const { Verifier } = require('lumokeys');
//   const verifier = Verifier.fromEnv({ tenant: 'acme-corp' });
//   const verdict = await verifier.verify(req.headers, ['admin:read'],
//                                         req.socket.remoteAddress);
//   if (!verdict.ok) { res.writeHead(verdict.status, verdict.headers); ... }
//
// The stubs come from LumoKeys' protos, loaded with @grpc/proto-loader. One
// channel per Verifier; verify() may run concurrently. The key is never
// logged and never part of an answer.
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = process.env.LUMOKEYS_PROTO_DIR ||
    path.join(__dirname, '..', '..', 'proto');

// Reasons that all mean "this key does not authenticate you"; the answer
// does not say which.
const INVALID = new Set(['MALFORMED', 'NOT_FOUND', 'REVOKED', 'EXPIRED',
                         'ROTATED', 'WRONG_TENANT']);

function refusal(reason, status, code, message, headers = {}) {
  return {
    ok: false, reason, status, headers,
    body: { error: true, status, code, message },
  };
}

// { key } from `Authorization: Bearer|ApiKey <key>` or `X-API-Key`, {} when
// neither is there, { refused } when the request is malformed. `headers` is
// Node's lower-cased header object.
function presentedKey(headers) {
  const keys = [];
  const authorization = headers['authorization'];
  if (authorization) {
    const match = /^\s*(\S+)\s+(\S+)\s*$/.exec(authorization);
    if (!match || !['bearer', 'apikey'].includes(match[1].toLowerCase())) {
      return { refused: refusal('', 401, 'invalid_token',
          "Authorization must be 'Bearer <key>' or 'ApiKey <key>'",
          { 'WWW-Authenticate': 'Bearer error="invalid_token"' }) };
    }
    keys.push(match[2]);
  }
  const headerKey = headers['x-api-key'];
  if (headerKey) keys.push(headerKey.trim());
  if (new Set(keys).size > 1) {
    return { refused: refusal('', 400, 'invalid_request',
        'send the key in Authorization or X-API-Key, not two different keys') };
  }
  return keys.length ? { key: keys[0] } : {};
}

class Verifier {
  constructor({ address, serviceToken, tenant, caFile, certFile, keyFile,
                serverName, timeoutMs = 2000 }) {
    const definition = protoLoader.loadSync('lumo/auth/v1/auth.proto', {
      includeDirs: [PROTO_DIR], keepCase: true, enums: String,
      longs: String, defaults: true,
    });
    const auth = grpc.loadPackageDefinition(definition).lumo.auth.v1;
    const credentials = caFile
      ? grpc.credentials.createSsl(
          fs.readFileSync(caFile),
          keyFile ? fs.readFileSync(keyFile) : null,
          certFile ? fs.readFileSync(certFile) : null)
      : grpc.credentials.createInsecure();
    const options = serverName
      ? { 'grpc.ssl_target_name_override': serverName } : {};
    this.client = new auth.AuthService(address, credentials, options);
    this.tenant = tenant;
    this.timeoutMs = timeoutMs;
    this.metadata = new grpc.Metadata();
    this.metadata.set('x-lumo-service-token', serviceToken);
  }

  // The `lumokeys` CLI's settings: LUMOKEYS_ADDRESS,
  // LUMOKEYS_SERVICE_TOKEN_FILE, LUMOKEYS_TENANT, LUMOKEYS_TLS_CA_FILE,
  // LUMOKEYS_TLS_CERT_FILE, LUMOKEYS_TLS_KEY_FILE, LUMOKEYS_TLS_SERVER_NAME,
  // LUMOKEYS_TIMEOUT (seconds).
  static fromEnv({ tenant, env = process.env } = {}) {
    const need = (name) => {
      if (!env[name]) throw new Error(`${name} is not set`);
      return env[name];
    };
    return new Verifier({
      address: need('LUMOKEYS_ADDRESS'),
      serviceToken: fs.readFileSync(need('LUMOKEYS_SERVICE_TOKEN_FILE'),
                                    'utf8').trim(),
      tenant: tenant || need('LUMOKEYS_TENANT'),
      caFile: env.LUMOKEYS_TLS_CA_FILE,
      certFile: env.LUMOKEYS_TLS_CERT_FILE,
      keyFile: env.LUMOKEYS_TLS_KEY_FILE,
      serverName: env.LUMOKEYS_TLS_SERVER_NAME,
      timeoutMs: 1000 * Number(env.LUMOKEYS_TIMEOUT || 2),
    });
  }

  close() { this.client.close(); }

  // Resolves to { ok: true, reason, key } or the refusal to send (see
  // docs/clients.md). Fails closed: an error of the call is a 503.
  verify(headers, requiredScopes = [], clientIp = '') {
    const { key, refused } = presentedKey(headers);
    if (refused) return Promise.resolve(refused);
    if (!key) {
      return Promise.resolve(refusal('', 401, 'invalid_token',
          'an API key is required', { 'WWW-Authenticate': 'Bearer' }));
    }
    const request = { key, tenant_slug: this.tenant,
                      required_scopes: requiredScopes, client_ip: clientIp };
    const deadline = new Date(Date.now() + this.timeoutMs);
    return new Promise((resolve) => {
      this.client.VerifyApiKey(request, this.metadata, { deadline },
                               (err, reply) => {
        if (err) {
          if (err.code === grpc.status.RESOURCE_EXHAUSTED) {
            const wait = err.metadata && err.metadata.get('retry-after')[0];
            resolve(refusal('RATE_LIMITED', 429, 'rate_limit_exceeded',
                'too many failed attempts; retry later',
                wait ? { 'Retry-After': String(wait) } : {}));
          } else {
            resolve(refusal('', 503, 'service_unavailable',
                            'key verification is unavailable'));
          }
          return;
        }
        resolve(verdictOf(reply, requiredScopes));
      });
    });
  }
}

function verdictOf(reply, requiredScopes) {
  const reason = reply.reason;
  if (reply.valid && reason === 'VALID') {
    return { ok: true, reason, key: reply.key };
  }
  if (INVALID.has(reason)) {
    return refusal(reason, 401, 'invalid_token', 'the API key is not valid',
                   { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
  }
  if (reason === 'INSUFFICIENT_SCOPE') {
    const scope = requiredScopes.join(' ');
    return refusal(reason, 403, 'insufficient_scope',
        `the API key lacks a required scope (${scope})`,
        { 'WWW-Authenticate':
            `Bearer error="insufficient_scope", scope="${scope}"` });
  }
  if (reason === 'IP_NOT_ALLOWED') {
    return refusal(reason, 403, 'ip_not_allowed',
                   'the API key may not be used from this address');
  }
  if (reason === 'RATE_LIMITED') {
    return refusal(reason, 429, 'rate_limit_exceeded',
                   "the API key's rate limit is exhausted");
  }
  return refusal(reason, 503, 'service_unavailable',
                 'unexpected verification outcome');
}

module.exports = { Verifier, presentedKey };
