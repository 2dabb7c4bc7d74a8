import { storeError } from './errors.ts';

const MAX_KEY_BYTES = 1024;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Checks a key against our rules (stricter than S3's, so keys stay portable and safe as paths):
 * non-empty, at most 1,024 UTF-8 bytes, no leading `/`, no empty, `.` or `..` segment, no control
 * characters, no backslash.
 */
export function validateKey(key: unknown, what = 'key'): string {
  if (typeof key !== 'string' || key.length === 0) throw invalid(what, String(key), 'must be a non-empty string');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES)
    throw invalid(what, key.slice(0, 40) + '...', `must be at most ${MAX_KEY_BYTES} bytes`);
  if (key.startsWith('/')) throw invalid(what, key, 'must not start with "/"');
  if (CONTROL.test(key) || key.includes('\\')) throw invalid(what, JSON.stringify(key), 'must not contain control characters or "\\"');
  const segments = key.split('/');
  segments.forEach((s, i) => {
    if (s === '..' || s === '.') throw invalid(what, key, 'must not contain "." or ".." segments');
    if (s === '' && i !== segments.length - 1) throw invalid(what, key, 'must not contain empty segments ("//")');
  });
  if (key.endsWith('/') && what === 'key') throw invalid(what, key, 'must not end with "/" (that is a prefix)');
  return key;
}

/** A prefix is a key that may be empty (everything) and may end with `/`. */
export function validatePrefix(prefix: unknown): string {
  if (prefix === '') return '';
  return validateKey(prefix, 'prefix');
}

function invalid(what: string, value: string, rule: string) {
  return storeError('INVALID_KEY', `invalid ${what} "${value}": ${rule}`, { exitCode: 2 });
}
