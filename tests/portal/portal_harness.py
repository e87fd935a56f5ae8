"""The e2e harness with the portal's scrypt cost lowered for tests
(`--portal_scrypt_log_n`, docs/portal.md): on this 2-core test machine the
OWASP cost (N=2^17, 128 MiB) takes seconds per login under load, which
would make every login-heavy test slow and flaky. Everything else is the
shared harness; the production default is asserted by portal_unit_test."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402

TEST_SCRYPT_LOG_N = 12


class PortalServer(harness.LumoServer):
    def _server_args(self):
        return super()._server_args() + [
            f"--portal_scrypt_log_n={TEST_SCRYPT_LOG_N}"]


class PortalServerTestCase(harness.LumoServerTestCase):
    @classmethod
    def setUpClass(cls):
        # LumoServerTestCase.setUpClass with PortalServer.
        super(harness.LumoServerTestCase, cls).setUpClass()
        cls.server = PortalServer()
        cls.server.start()
