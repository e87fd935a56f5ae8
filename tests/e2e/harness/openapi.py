"""Every REST reply the end-to-end suites receive is checked against the
gateway's own OpenAPI document (docs/testing.md, "Replies against the
document").

LumoGateway.request() hands each exchange to `check_reply`: when the path
and verb are an operation of the document, the status must be one the
operation documents (an undocumented status fails the test) and a JSON body
must validate against that status's schema. Exchanges that match no
operation (unknown paths, other verbs, the portal's pages) are not
operations of the API and are left to the tests that make them.

Each operation checked is recorded, one line "<verb> <path template>
<status>", in a file of LUMO_OPENAPI_COVERAGE_DIR (set by ctest; one file
per process), so that the coverage report (openapi_coverage.py) can say how
many operations of the document the suites exercised.

The validator covers the subset of OpenAPI 3.0 schemas the gateway
generates: $ref into components, type, format (not checked), nullable,
properties, required, items, additionalProperties, enum, allOf.
"""

import json
import os
import re
import threading

COVERAGE_DIR_ENV = "LUMO_OPENAPI_COVERAGE_DIR"

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: (isinstance(v, (int, float))
                         and not isinstance(v, bool)),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


class ReplyMismatch(AssertionError):
    """A reply the document does not describe."""


def _resolve(document, schema):
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/components/schemas/"):
            raise ReplyMismatch(f"unsupported $ref {ref}")
        schema = document["components"]["schemas"][
            ref[len("#/components/schemas/"):]]
    return schema


def validate(document, schema, value, where="$"):
    """Raises ReplyMismatch naming the first place `value` breaks
    `schema`."""
    schema = _resolve(document, schema)
    if value is None:
        if schema.get("nullable") or not schema:
            return
        raise ReplyMismatch(f"{where}: null where the document does not say "
                            "nullable")
    for part in schema.get("allOf", ()):
        validate(document, part, value, where)
    kind = schema.get("type")
    if kind is not None and not _TYPES[kind](value):
        raise ReplyMismatch(f"{where}: {type(value).__name__} where the "
                            f"document says {kind}")
    if "enum" in schema and value not in schema["enum"]:
        raise ReplyMismatch(f"{where}: {value!r} is not one of the "
                            "documented values")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                raise ReplyMismatch(f"{where}: required member {name} "
                                    "missing")
        extra = schema.get("additionalProperties")
        for name, member in value.items():
            if name in props:
                validate(document, props[name], member, f"{where}.{name}")
            elif isinstance(extra, dict):
                validate(document, extra, member, f"{where}.{name}")
            elif "properties" in schema and extra is not True:
                raise ReplyMismatch(f"{where}: member {name} is not in the "
                                    "document")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(document, schema["items"], item, f"{where}[{i}]")


class Document:
    """One OpenAPI document and its operations, matched by verb and path.
    Immutable; thread-safe."""

    def __init__(self, text):
        self.raw = json.loads(text)
        self.operations = []
        for template, item in self.raw["paths"].items():
            pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+",
                                   re.escape(template)) + "$"
            literals = template.count("/") - template.count("{")
            for verb, op in item.items():
                self.operations.append(
                    (verb.upper(), re.compile(pattern), template, literals,
                     op))

    def find(self, verb, path):
        """(template, operation) of the most specific match, or None."""
        path = path.split("?", 1)[0]
        best = None
        for op_verb, pattern, template, literals, op in self.operations:
            if op_verb == verb and pattern.match(path):
                if best is None or literals > best[2]:
                    best = (template, op, literals)
        return None if best is None else best[:2]


_lock = threading.Lock()


def _record(verb, template, status):
    directory = os.environ.get(COVERAGE_DIR_ENV)
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    line = f"{verb} {template} {status}\n"
    with _lock:
        with open(os.path.join(directory, f"{os.getpid()}.txt"), "a") as f:
            f.write(line)


def check_reply(document, verb, path, status, headers, body):
    """Raises ReplyMismatch when an operation's reply is not as documented;
    records the operation as covered."""
    found = document.find(verb, path)
    if found is None:
        return
    template, op = found
    responses = op.get("responses", {})
    documented = responses.get(str(status))
    if documented is None:
        raise ReplyMismatch(
            f"{verb} {template} answered {status}, which the document does "
            f"not list (it lists {sorted(responses)})")
    content = documented.get("content")
    if content is None:
        if body:
            raise ReplyMismatch(f"{verb} {template} {status}: a body where "
                                "the document says none")
    else:
        ctype = headers.get("content-type", "").split(";")[0].strip()
        if ctype not in content:
            raise ReplyMismatch(f"{verb} {template} {status}: content type "
                                f"{ctype!r}, documented {sorted(content)}")
        schema = content[ctype]["schema"]
        raw_file = (schema.get("type") == "string"
                    and schema.get("format") == "binary")
        if ctype == "application/json" and not raw_file:
            try:
                value = json.loads(body)
            except ValueError as e:
                raise ReplyMismatch(f"{verb} {template} {status}: body is not "
                                    f"JSON ({e})") from None
            try:
                validate(document.raw, schema, value)
            except ReplyMismatch as e:
                raise ReplyMismatch(f"{verb} {template} {status}: {e}") \
                    from None
    _record(verb, template, status)


def report(directory, document):
    """(covered, total, uncovered templates) of the operations recorded in
    `directory`."""
    covered = set()
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            with open(os.path.join(directory, name)) as f:
                for line in f:
                    verb, template, _ = line.split()
                    covered.add((verb, template))
    every = {(verb, template)
             for verb, _, template, _, _ in document.operations}
    return (len(covered & every), len(every),
            sorted(f"{v} {t}" for v, t in every - covered))


def main(argv):
    """`python3 -m harness.openapi reset|report <dir>`: empty the coverage
    folder before a run; print the coverage after it and fail unless every
    operation of the document was exercised."""
    if len(argv) != 3 or argv[1] not in ("reset", "report"):
        print("usage: python3 -m harness.openapi reset|report <dir>")
        return 2
    directory = argv[2]
    if argv[1] == "reset":
        import shutil
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
        return 0
    from harness.gateway import api_document
    covered, total, missing = report(directory, api_document())
    print(f"operations covered by the e2e suites' replies: {covered} / "
          f"{total}")
    for operation in missing:
        print(f"  not exercised: {operation}")
    return 0 if covered == total else 1


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv))
