// The MySQL 8.0 grammar check: parses every statement read from stdin
// (records "SOURCE\x1fSQL\0") with node-sql-parser's MySQL grammar, and
// refuses syntax MySQL 8.0 deprecates that the parser still accepts
// (VALUES() in ON DUPLICATE KEY UPDATE). Prints each failure with its
// source; exits 1 if any statement fails or none was read.
'use strict';
const fs = require('fs');
const { Parser } = require('node-sql-parser');

const input = fs.readFileSync(0, 'utf8');
const records = input.split('\0').filter((r) => r.length > 0);
const parser = new Parser();
let failed = 0;
for (const record of records) {
  const sep = record.indexOf('\x1f');
  if (sep < 0) {
    console.error(`malformed record: ${record.slice(0, 80)}`);
    process.exit(2);
  }
  const source = record.slice(0, sep);
  const sql = record.slice(sep + 1);
  let problem = null;
  try {
    parser.astify(sql, { database: 'mysql' });
  } catch (e) {
    problem = `MySQL grammar: ${String(e.message).split('\n')[0].slice(0, 200)}`;
  }
  if (problem === null && /ON\s+DUPLICATE\s+KEY\s+UPDATE[\s\S]*\bVALUES\s*\(/i.test(sql)) {
    problem = 'VALUES() in ON DUPLICATE KEY UPDATE is deprecated in MySQL 8.0';
  }
  if (problem !== null) {
    failed++;
    console.log(`FAIL ${source}: ${problem}\n  ${sql.replace(/\n/g, '\n  ')}`);
  }
}
console.log(`${records.length} statements checked with the MySQL 8.0 grammar, ${failed} failed`);
process.exit(failed > 0 || records.length === 0 ? 1 : 0);
