"""An example web service (the standard library's http.server) whose
GET /hello needs an API key with the scope `admin:read`.

    LUMOKEYS_ADDRESS=... LUMOKEYS_SERVICE_TOKEN_FILE=... \\
    LUMOKEYS_TENANT=acme-corp [LUMOKEYS_TLS_CA_FILE=...] \\
    PYTHONPATH=client/python python3 client/python/examples/hello_service.py 127.0.0.1:8090

Prints "listening on <host>:<port>" once it serves (port 0: any free one).
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lumokeys import Verifier

REQUIRED_SCOPES = ["admin:read"]


def make_handler(verifier):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/hello":
                self.answer(404, {}, {"error": True, "status": 404,
                                      "code": "resource_not_found",
                                      "message": "no such page"})
                return
            verdict = verifier.verify(self.headers, REQUIRED_SCOPES,
                                      client_ip=self.client_address[0])
            if not verdict.ok:
                self.answer(verdict.status, verdict.headers, verdict.body)
                return
            self.answer(200, {}, {"hello": verdict.key.name,
                                  "keyId": verdict.key.id,
                                  "scopes": list(verdict.key.scopes)})

        def answer(self, status, headers, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass  # request lines may carry nothing secret, but keep quiet

    return Handler


def main(argv):
    host, _, port = (argv[1] if len(argv) > 1 else "127.0.0.1:8090") \
        .rpartition(":")
    verifier = Verifier.from_env()
    server = ThreadingHTTPServer((host, int(port)), make_handler(verifier))
    print(f"listening on {host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        verifier.close()


if __name__ == "__main__":
    main(sys.argv)
