"""Verify the API key of an incoming HTTP request with LumoKeys and turn the
outcome into the HTTP answer to send (docs/clients.md).

    verifier = Verifier.from_env(tenant="acme-corp")
    verdict = verifier.verify(request_headers, required_scopes=["admin:read"],
                              client_ip=peer_address)
    if not verdict.ok:
        send(verdict.status, verdict.headers, verdict.body_json())
    else:
        ... verdict.key.id, verdict.key.scopes ...

A Verifier holds one gRPC channel for the process; verify() is thread-safe.
The key is never logged and never part of an answer.
"""

import json
import os
from dataclasses import dataclass, field

import grpc

from lumokeys import stubs

# Reasons that all mean "this key does not authenticate you"; the answer
# does not say which, so that probing keys teaches nothing.
_INVALID = {"MALFORMED", "NOT_FOUND", "REVOKED", "EXPIRED", "ROTATED",
            "WRONG_TENANT"}


@dataclass
class Verdict:
    """The outcome of one verification. `ok` with `key` (the key's
    metadata), or the HTTP `status`, `headers` and error `body` to send."""
    ok: bool
    reason: str
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: dict = None
    key: object = None

    def body_json(self):
        return json.dumps(self.body).encode() if self.body else b""


def _refusal(reason, status, code, message, headers=None):
    return Verdict(ok=False, reason=reason, status=status,
                   headers=dict(headers or {}),
                   body={"error": True, "status": status, "code": code,
                         "message": message})


def presented_key(headers):
    """(key, None) from `Authorization: Bearer|ApiKey <key>` or
    `X-API-Key`, (None, None) when neither is there, (None, Verdict) when
    the request is malformed (two different keys, another scheme).
    `headers` is any case-insensitive mapping with .get()."""
    keys = []
    authorization = headers.get("Authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() not in ("bearer", "apikey") or not value.strip():
            return None, _refusal(
                "", 401, "invalid_token",
                "Authorization must be 'Bearer <key>' or 'ApiKey <key>'",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        keys.append(value.strip())
    header_key = headers.get("X-API-Key")
    if header_key:
        keys.append(header_key.strip())
    if len(set(keys)) > 1:
        return None, _refusal("", 400, "invalid_request",
                              "send the key in Authorization or X-API-Key, "
                              "not two different keys")
    return (keys[0] if keys else None), None


class Verifier:
    """Verifies keys for one tenant over one channel. Thread-safe."""

    def __init__(self, address, service_token, tenant, ca_file=None,
                 cert_file=None, key_file=None, server_name=None,
                 timeout_s=2.0):
        self._tenant = tenant
        self._timeout_s = timeout_s
        self._metadata = (("x-lumo-service-token", service_token),)
        if ca_file:
            def read(path):
                with open(path, "rb") as f:
                    return f.read()
            credentials = grpc.ssl_channel_credentials(
                root_certificates=read(ca_file),
                private_key=read(key_file) if key_file else None,
                certificate_chain=read(cert_file) if cert_file else None)
            options = ()
            if server_name:
                options = (("grpc.ssl_target_name_override", server_name),)
            self._channel = grpc.secure_channel(address, credentials,
                                                options=options)
        else:
            self._channel = grpc.insecure_channel(address)
        gen = stubs.modules()
        self._pb2 = gen.auth_pb2
        self._stub = gen.auth_pb2_grpc.AuthServiceStub(self._channel)

    @classmethod
    def from_env(cls, tenant=None, env=None):
        """The `lumokeys` CLI's settings: LUMOKEYS_ADDRESS,
        LUMOKEYS_SERVICE_TOKEN_FILE, LUMOKEYS_TENANT, LUMOKEYS_TLS_CA_FILE,
        LUMOKEYS_TLS_CERT_FILE, LUMOKEYS_TLS_KEY_FILE,
        LUMOKEYS_TLS_SERVER_NAME, LUMOKEYS_TIMEOUT (seconds)."""
        env = os.environ if env is None else env

        def need(name):
            value = env.get(name)
            if not value:
                raise ValueError(f"{name} is not set")
            return value

        with open(need("LUMOKEYS_SERVICE_TOKEN_FILE")) as f:
            token = f.read().strip()
        return cls(need("LUMOKEYS_ADDRESS"), token,
                   tenant or need("LUMOKEYS_TENANT"),
                   ca_file=env.get("LUMOKEYS_TLS_CA_FILE"),
                   cert_file=env.get("LUMOKEYS_TLS_CERT_FILE"),
                   key_file=env.get("LUMOKEYS_TLS_KEY_FILE"),
                   server_name=env.get("LUMOKEYS_TLS_SERVER_NAME"),
                   timeout_s=float(env.get("LUMOKEYS_TIMEOUT") or 2.0))

    def close(self):
        self._channel.close()

    def verify(self, headers, required_scopes=(), client_ip=""):
        """The Verdict for the key in `headers` (see docs/clients.md for the
        mapping). Fails closed: any error of the call is a 503."""
        key, refused = presented_key(headers)
        if refused is not None:
            return refused
        if key is None:
            return _refusal("", 401, "invalid_token", "an API key is required",
                            {"WWW-Authenticate": "Bearer"})
        request = self._pb2.VerifyApiKeyRequest(
            key=key, tenant_slug=self._tenant,
            required_scopes=list(required_scopes), client_ip=client_ip)
        try:
            reply, call = self._stub.VerifyApiKey.with_call(
                request, metadata=self._metadata, timeout=self._timeout_s)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                headers = {}
                for k, v in e.trailing_metadata() or ():
                    if k == "retry-after":
                        headers["Retry-After"] = v
                return _refusal("RATE_LIMITED", 429, "rate_limit_exceeded",
                                "too many failed attempts; retry later",
                                headers)
            return _refusal("", 503, "service_unavailable",
                            "key verification is unavailable")
        reason = self._pb2.VerifyReason.Name(reply.reason)
        if reply.valid and reason == "VALID":
            return Verdict(ok=True, reason=reason, key=reply.key)
        if reason in _INVALID:
            return _refusal(reason, 401, "invalid_token",
                            "the API key is not valid",
                            {"WWW-Authenticate":
                             'Bearer error="invalid_token"'})
        if reason == "INSUFFICIENT_SCOPE":
            scope = " ".join(required_scopes)
            return _refusal(reason, 403, "insufficient_scope",
                            f"the API key lacks a required scope ({scope})",
                            {"WWW-Authenticate":
                             f'Bearer error="insufficient_scope", '
                             f'scope="{scope}"'})
        if reason == "IP_NOT_ALLOWED":
            return _refusal(reason, 403, "ip_not_allowed",
                            "the API key may not be used from this address")
        if reason == "RATE_LIMITED":
            return _refusal(reason, 429, "rate_limit_exceeded",
                            "the API key's rate limit is exhausted")
        return _refusal(reason, 503, "service_unavailable",
                        "unexpected verification outcome")
