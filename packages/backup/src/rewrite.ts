/**
 * Rewriting an SQL dump as it streams (line by line; a dump's statements are lines):
 *
 * - **the site's domain** replaced by another (a baseline carries `baseline.invalid`; a deploy
 *   from it puts its own name back). PHP-serialised strings (`s:<length>:"..."`, stored by
 *   WordPress in options and post meta) get their length fixed, else PHP could not read them back;
 * - **password hashes** (phpass, WordPress, bcrypt, argon2) removed: a baseline never carries a
 *   credential, even hashed. The accounts stay; their passwords must be set again.
 */
import { Transform } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

export interface DumpRewrite {
  /** Host names to replace (e.g. `www.example.com`), each with `to`. Letters, digits, dots, hyphens. */
  domains?: { from: string; to: string }[];
  /** Remove password hashes (their column becomes the empty string). */
  scrubPasswordHashes?: boolean;
}

export interface RewriteStats {
  domains: number;
  serialisedFixed: number;
  hashes: number;
}

const HASHES = [
  /\$P\$[./0-9A-Za-z]{31}/g,
  /\$wp\$2y\$\d\d\$[./0-9A-Za-z]{53}/g,
  /\$2[aby]\$\d\d\$[./0-9A-Za-z]{53}/g,
  /\$argon2(?:id|i|d)\$v=\d+\$[^'"\s,)]+/g,
];
const HOST = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i;
// A PHP-serialised string inside an SQL string literal: s:12:\"...\"; (quotes escaped by the dump).
const SERIALISED = /s:(\d+):\\"(.*?)\\";/g;

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Rewrites one line; pure (for tests and for the stream below). */
export function rewriteLine(line: string, r: DumpRewrite, stats: RewriteStats = { domains: 0, serialisedFixed: 0, hashes: 0 }): string {
  let out = line;
  for (const { from, to } of r.domains ?? []) {
    if (!out.includes(from)) continue;
    const re = new RegExp(escapeRe(from), 'g');
    const delta = Buffer.byteLength(to) - Buffer.byteLength(from);
    stats.domains += out.split(from).length - 1;
    // Serialised strings first: their declared length changes by delta per occurrence.
    out = out.replace(SERIALISED, (whole, n: string, body: string) => {
      const count = body.split(from).length - 1;
      if (!count) return whole;
      stats.serialisedFixed++;
      return `s:${Number(n) + count * delta}:\\"${body.replace(re, to)}\\";`;
    });
    out = out.replace(re, to);
  }
  if (r.scrubPasswordHashes) {
    for (const h of HASHES) {
      out = out.replace(h, () => {
        stats.hashes++;
        return '';
      });
    }
  }
  return out;
}

/** A Transform applying `rewriteLine` to every line of the stream; `stats` is filled as it goes. */
export function rewriteDump(r: DumpRewrite, stats: RewriteStats = { domains: 0, serialisedFixed: 0, hashes: 0 }): Transform {
  for (const d of r.domains ?? []) {
    if (!HOST.test(d.from) || !HOST.test(d.to))
      throw new RangeError(`domain rewrite ${d.from} -> ${d.to}: host names only (letters, digits, dots, hyphens)`);
  }
  let pending = '';
  // A character split across two chunks is decoded whole.
  const decoder = new StringDecoder('utf8');
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      pending += decoder.write(chunk);
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      cb(null, lines.length ? `${lines.map((l) => rewriteLine(l, r, stats)).join('\n')}\n` : '');
    },
    flush(cb) {
      pending += decoder.end();
      cb(null, pending ? rewriteLine(pending, r, stats) : '');
    },
  });
}
