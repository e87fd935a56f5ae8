"""LumoKeys for Python services: verify the API key of an incoming request
(lumokeys.verify.Verifier) with stubs generated from LumoKeys' protos
(lumokeys.generate). docs/clients.md describes the answers."""

from lumokeys.verify import Verdict, Verifier, presented_key

__all__ = ["Verdict", "Verifier", "presented_key"]
