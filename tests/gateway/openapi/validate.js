// Validates an OpenAPI document (file path or '-' for stdin) against the
// OpenAPI 3.0 schema, checks that every expected route is listed and that
// every operation has a unique operationId.
// Usage: node validate.js <file|-> [METHOD PATH]...
'use strict';
const fs = require('fs');
const SwaggerParser = require('@apidevtools/swagger-parser');

async function main() {
  const [source, ...expected] = process.argv.slice(2);
  const text = fs.readFileSync(source === '-' ? 0 : source, 'utf8');
  const doc = JSON.parse(text);
  await SwaggerParser.validate(JSON.parse(text));
  const missing = [];
  for (let i = 0; i + 1 < expected.length; i += 2) {
    const method = expected[i].toLowerCase();
    const path = expected[i + 1];
    if (!doc.paths[path] || !doc.paths[path][method]) missing.push(`${method} ${path}`);
  }
  // Every operation has an operationId, unique in the document (generated
  // clients name their calls by it).
  const ids = new Map();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const where = `${method} ${path}`;
      if (!op.operationId) missing.push(`operationId of ${where}`);
      else if (ids.has(op.operationId)) {
        missing.push(`unique operationId ${op.operationId} (${ids.get(op.operationId)}, ${where})`);
      } else ids.set(op.operationId, where);
    }
  }
  if (missing.length) {
    console.error('missing: ' + missing.join(', '));
    process.exit(1);
  }
  const count = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
  console.log(`valid OpenAPI ${doc.openapi}: ${count} operations`);
}

main().catch((err) => {
  console.error('invalid OpenAPI document: ' + err.message);
  process.exit(1);
});
