// The MySQL 8.0 grammar check: parses every statement read from stdin
// (records "SOURCE\x1fSQL\0") with node-sql-parser's MySQL grammar, and
// refuses syntax MySQL 8.0 deprecates that the parser still accepts
// (VALUES() in ON DUPLICATE KEY UPDATE). Prints each failure with its
// source; exits 1 if any statement fails or none was read.
//
// With `--sources DIR`, also checks coverage: every SQL text written in the
// C++ files of DIR (adjacent string literals joined, as the compiler does;
// printf placeholders split them) must occur in some statement read, so a
// statement that no test ran is reported instead of escaping the check.
'use strict';
const fs = require('fs');
const { Parser } = require('node-sql-parser');

const sourcesAt = process.argv.indexOf('--sources');
const sourcesDir = sourcesAt >= 0 ? process.argv[sourcesAt + 1] : null;

// The parser's MySQL grammar lacks a few forms the MySQL 8.0 reference
// documents; those are checked by what they are made of:
// - `SET a = x, SESSION b = y`: each assignment as a SET of its own;
// - `DO expr, ...`: the expressions, as `SELECT expr, ...` (DO takes the
//   same expressions and discards the result);
// - `SET SESSION TRANSACTION ISOLATION LEVEL <level>`: by its exact form;
// - `SAVEPOINT name`, `RELEASE SAVEPOINT name` ("SAVEPOINT, ROLLBACK TO
//   SAVEPOINT, and RELEASE SAVEPOINT Statements"): by their exact form;
// - `a <=> b` (NULL-safe equality, "Comparison Functions and Operators"):
//   with `=` in its place (same precedence and operands);
// - index hints after a table name, `FORCE|USE|IGNORE INDEX (name, ...)`
//   ("Index Hints"): checked as a plain name list, then left out (they
//   change the plan, never the statement's meaning).
function splitTopLevelCommas(text) {
  const parts = [];
  let depth = 0;
  let quote = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== null) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

function parseProblem(sql) {
  try {
    parser.astify(sql, { database: 'mysql' });
    return null;
  } catch (e) {
    return `MySQL grammar: ${String(e.message).split('\n')[0].slice(0, 200)}`;
  }
}

function grammarProblem(sql) {
  sql = sql.replace(/<=>/g, '=');
  const hint = /\s(?:FORCE|USE|IGNORE)\s+INDEX\s*\(([^)]*)\)/gi;
  for (const m of sql.matchAll(hint)) {
    if (!/^\s*[A-Za-z_][A-Za-z0-9_]*(\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*\s*$/.test(m[1])) {
      return `index hint: not a list of index names: ${m[0].trim()}`;
    }
  }
  sql = sql.replace(hint, '');
  if (/^SET\s+SESSION\s+TRANSACTION\s+ISOLATION\s+LEVEL\s+(REPEATABLE\s+READ|READ\s+COMMITTED|READ\s+UNCOMMITTED|SERIALIZABLE)$/i.test(sql)) {
    return null;
  }
  if (/^(RELEASE\s+)?SAVEPOINT\s+[A-Za-z_][A-Za-z0-9_]*$/i.test(sql)) {
    return null;
  }
  const set = /^SET\s+([\s\S]*)$/i.exec(sql);
  if (set !== null) {
    for (const assignment of splitTopLevelCommas(set[1])) {
      const problem = parseProblem(`SET ${assignment}`);
      if (problem !== null) return `${problem} (in: SET ${assignment})`;
    }
    return null;
  }
  const doStatement = /^DO\s+([\s\S]*)$/i.exec(sql);
  if (doStatement !== null) return parseProblem(`SELECT ${doStatement[1]}`);
  return parseProblem(sql);
}

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
  const problem = grammarProblem(sql) ||
    (/ON\s+DUPLICATE\s+KEY\s+UPDATE[\s\S]*\bVALUES\s*\(/i.test(sql)
      ? 'VALUES() in ON DUPLICATE KEY UPDATE is deprecated in MySQL 8.0'
      : null);
  if (problem !== null) {
    failed++;
    console.log(`FAIL ${source}: ${problem}\n  ${sql.replace(/\n/g, '\n  ')}`);
  }
}
console.log(`${records.length} statements checked with the MySQL 8.0 grammar, ${failed} failed`);

// The string literals of a C++ file, adjacent ones joined.
function literalGroups(text) {
  const groups = [];
  // A literal, or anything else that is not whitespace or a comment.
  const token = /"((?:[^"\\\n]|\\.)*)"|\/\/[^\n]*|\/\*[\s\S]*?\*\/|'(?:[^'\\\n]|\\.)*'|(\s+)|([^"'\s/]+|\/)/g;
  let current = null;
  let m;
  while ((m = token.exec(text)) !== null) {
    if (m[1] !== undefined) {
      const value = m[1].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      current = current === null ? value : current + value;
    } else if (m[2] !== undefined || m[0].startsWith('//') || m[0].startsWith('/*')) {
      // whitespace and comments keep adjacent literals together
    } else {
      if (current !== null) groups.push(current);
      current = null;
    }
  }
  if (current !== null) groups.push(current);
  return groups;
}

// SQL texts: literals that start with a keyword (so error messages, which
// mention statements in lower case or after a colon, are not taken for SQL).
const sqlWord = /^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|FROM|WHERE|AND|OR|LEFT JOIN|JOIN|ON|VALUES|ORDER BY|GROUP BY|LIMIT|START TRANSACTION|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT|SET|CREATE|ALTER|DROP|DO|WITH)\b/;
// Texts that are not statements although they start like one.
const notSql = new Set(['SELECT VERSION() returned no row']);
// Statements only a MySQL server is sent (the backend picks them when the
// server is not MariaDB), so no test here runs them: parsed as written,
// placeholders replaced by 1. The second is the session set-up as
// connection_pool.cc assembles it for MySQL.
// SQL texts of the backend that no test linked into the capture binary runs
// yet (pending_coverage.txt, one per line): reported, and parsed as written
// when they are whole statements; a text in the list that a test now runs
// fails the check, so the list only shrinks.
const pendingFile = `${__dirname}/pending_coverage.txt`;
const pending = fs.existsSync(pendingFile)
  ? fs.readFileSync(pendingFile, 'utf8').split('\n').filter((l) => l.length > 0 && !l.startsWith('#'))
  : [];
const mysqlOnly = [
  'SET SESSION max_execution_time = %d, SESSION innodb_lock_wait_timeout = %d',
  "SET time_zone = '+00:00', SESSION innodb_lock_wait_timeout = %d, " +
    "SESSION sql_mode = 'STRICT_ALL_TABLES', SESSION max_execution_time = %d",
];
let uncovered = 0;
if (sourcesDir !== null) {
  const statements = records.map((r) => r.slice(r.indexOf('\x1f') + 1));
  const files = fs.readdirSync(sourcesDir).filter((f) => f.endsWith('.cc')).sort();
  let checked = 0;
  let pendingSeen = 0;
  for (const file of files) {
    const text = fs.readFileSync(`${sourcesDir}/${file}`, 'utf8');
    for (const group of literalGroups(text)) {
      if (!sqlWord.test(group) || notSql.has(group) || mysqlOnly.includes(group)) {
        continue;
      }
      for (const piece of group.split(/%[-+ #0-9.]*[a-zA-Z%]/)) {
        const trimmed = piece.trim();
        if (trimmed.length < 4) continue;
        checked++;
        const seen = statements.some((sql) => sql.includes(trimmed));
        if (pending.includes(trimmed)) {
          if (seen) {
            uncovered++;
            console.log(`RUN NOW, remove from pending_coverage.txt: ${JSON.stringify(trimmed)}`);
          } else {
            pendingSeen++;
            const whole = /^(SELECT|INSERT|UPDATE|DELETE|REPLACE|CREATE)\b/.test(trimmed) &&
              !/\bVALUES$/.test(trimmed);
            const problem = whole ? grammarProblem(trimmed) : null;
            if (problem !== null) {
              failed++;
              console.log(`FAIL ${file} (pending coverage): ${problem}\n  ${trimmed}`);
            }
            console.log(`PENDING (no test runs it yet${whole ? '; parsed as written' : ''}) ${file}: ${JSON.stringify(trimmed)}`);
          }
        } else if (!seen) {
          uncovered++;
          console.log(`NOT RUN BY ANY TEST ${file}: ${JSON.stringify(trimmed)}`);
        }
      }
    }
  }
  for (const text of mysqlOnly) {
    const problem = grammarProblem(text.replace(/%[-+ #0-9.]*[a-zA-Z]/g, '1'));
    if (problem !== null) {
      failed++;
      console.log(`FAIL MySQL-only statement: ${problem}\n  ${text}`);
    }
  }
  console.log(`${checked} SQL texts in ${sourcesDir}, ${uncovered} not seen in any statement run, ${pendingSeen} pending coverage; ${mysqlOnly.length} MySQL-only statements parsed as written`);
}
process.exit(failed > 0 || uncovered > 0 || records.length === 0 ? 1 : 0);
