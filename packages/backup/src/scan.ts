/**
 * The secret scan that stands between a deployment and a shareable baseline. It reports where a
 * secret is (file and line) and which rule found it, never the secret itself.
 *
 * Rules, for every text file:
 * - `private-key`: a PEM private key block;
 * - `cloud-access-key`: an AWS-style access key id (AKIA/ASIA...), which S3-compatible clouds copy;
 * - `known-secret`: any value the caller knows is secret (the deployment's DB password, S3 keys...);
 * - `cms-db-password`: a database password in a CMS config file (WordPress `DB_PASSWORD`, Joomla
 *   `$password`, Drupal `'password' =>`, Moodle `$CFG->dbpass`);
 * - `config-assignment`: `password=`/`secret=`/`api_key=`/`token=`... with a value, in config-style
 *   files only (.env, .ini, .conf, .yml, .json, .cfg, .properties): in PHP code the word is everywhere;
 * - `env-file`, `htpasswd`: a `.env` or `.htpasswd` file with content (credentials by convention).
 * For SQL dumps, also `password-hash` (phpass, WordPress, bcrypt, argon2 hashes in user tables).
 */
import { createReadStream } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { basename, extname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

export interface Finding {
  /** Path relative to the scanned root, or the dump's name. */
  file: string;
  /** 1-based line number. */
  line: number;
  rule: string;
}

export interface ScanOptions {
  /** Values known to be secret in this deployment (at least 8 characters each; shorter ones are ignored). */
  knownSecrets?: string[];
  /** Paths (relative, glob-free prefixes) to skip, e.g. the config files a baseline excludes anyway. */
  skip?: string[];
  /** Files larger than this are not read (default 20 MiB): media, archives. */
  maxFileBytes?: number;
}

// The words that name a secret in a configuration key (config-assignment below).
const SECRET_WORDS = /(?:password|passwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|client[_-]?secret|private[_-]?key)/.source;

const LINE_RULES: { rule: string; re: RegExp; files?: (name: string) => boolean }[] = [
  { rule: 'private-key', re: /-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED )?PRIVATE KEY-----/ },
  { rule: 'cloud-access-key', re: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
  // The sample files' placeholders (password_here...) are not secrets.
  {
    rule: 'cms-db-password',
    re: /define\(\s*['"]DB_PASSWORD['"]\s*,\s*['"](?!password_here['"]|your[_-]?password|putyourpasswordhere)[^'"]+['"]\s*\)/,
  },
  { rule: 'cms-db-password', re: /public\s+\$password\s*=\s*['"][^'"]+['"]/ },
  { rule: 'cms-db-password', re: /['"]password['"]\s*=>\s*['"][^'"]+['"]/, files: (n) => /settings(\.local)?\.php$/.test(n) },
  { rule: 'cms-db-password', re: /\$CFG->dbpass\s*=\s*['"][^'"]+['"]/ },
  {
    rule: 'config-assignment',
    // A key whose name ends in a secret's word, then `:` or `=`, then a value of 6 characters or more.
    re: new RegExp(String.raw`(?:^|[\s"'{,])(?:[A-Za-z0-9_.-]*${SECRET_WORDS})["']?\s*[:=]\s*["']?[^\s"'#,}]{6,}`, 'i'),
    files: (n) =>
      /^\.env(\..+)?$/.test(basename(n)) ||
      ['.ini', '.conf', '.cfg', '.yml', '.yaml', '.json', '.properties', '.toml'].includes(extname(n).toLowerCase()),
  },
];

const HASH_RULES: { rule: string; re: RegExp }[] = [
  { rule: 'password-hash', re: /\$P\$[./0-9A-Za-z]{31}/ },
  { rule: 'password-hash', re: /\$wp\$2y\$\d\d\$/ },
  { rule: 'password-hash', re: /\$2[aby]\$\d\d\$[./0-9A-Za-z]{53}/ },
  { rule: 'password-hash', re: /\$argon2(?:id|i|d)\$v=\d+\$/ },
];

function lineRules(name: string, known: string[]) {
  const rules = LINE_RULES.filter((r) => !r.files || r.files(name));
  return (line: string): string[] => {
    const hits = rules.filter((r) => r.re.test(line)).map((r) => r.rule);
    if (known.some((k) => line.includes(k))) hits.push('known-secret');
    return [...new Set(hits)];
  };
}

/** Scans lines of a stream; `extra` rules apply on top of the file rules (used for SQL dumps). */
export async function scanLines(
  input: Readable,
  name: string,
  options: ScanOptions = {},
  extra: { rule: string; re: RegExp }[] = [],
): Promise<Finding[]> {
  const known = (options.knownSecrets ?? []).filter((k) => k.length >= 8);
  const check = lineRules(name, known);
  const findings: Finding[] = [];
  let n = 0;
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    n++;
    const rules = [...check(line), ...extra.filter((r) => r.re.test(line)).map((r) => r.rule)];
    for (const rule of new Set(rules)) findings.push({ file: name, line: n, rule });
  }
  return findings;
}

/** Scans an SQL dump stream: the file rules plus password hashes. */
export function scanSqlDump(input: Readable, name: string, options: ScanOptions = {}): Promise<Finding[]> {
  return scanLines(input, name, options, HASH_RULES);
}

/** Scans every text file under `root` (binary files, i.e. with a NUL byte in their first 8 KiB, are skipped). */
export async function scanTree(root: string, options: ScanOptions = {}): Promise<Finding[]> {
  const skip = (options.skip ?? []).map((s) => s.replace(/^\.?\//, ''));
  const max = options.maxFileBytes ?? 20 * 1024 * 1024;
  const findings: Finding[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    const rel = relative(root, full);
    if (skip.some((s) => rel === s || rel.startsWith(`${s.replace(/\/$/, '')}/`))) continue;
    const fh = await open(full, 'r');
    try {
      const { size } = await fh.stat();
      if (size === 0 || size > max) continue;
      const head = Buffer.alloc(Math.min(8192, size));
      await fh.read(head, 0, head.length, 0);
      if (head.includes(0)) continue;
    } finally {
      await fh.close();
    }
    const name = basename(rel);
    const fileFindings = await scanLines(createReadStream(full), rel, options);
    if ((/^\.env(\..+)?$/.test(name) && !/\.(example|sample|dist)$/.test(name)) || name === '.htpasswd') {
      if (!fileFindings.length) fileFindings.push({ file: rel, line: 1, rule: name === '.htpasswd' ? 'htpasswd' : 'env-file' });
    }
    findings.push(...fileFindings);
  }
  return findings.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line));
}

/** One line per finding, for error messages: `path:line: rule`. Never contains the secret. */
export function formatFindings(findings: Finding[]): string {
  return findings.map((f) => `${f.file}:${f.line}: ${f.rule}`).join('\n');
}
