/**
 * Encryption at rest for secret values: AES-256-GCM (node:crypto) with a per-deployment 32-byte
 * key that never enters the bucket. The object key is bound as additional authenticated data, so
 * a ciphertext copied to another key does not decrypt.
 *
 * Stored form: `ADTENC1\n` + 12-byte IV + 16-byte tag + ciphertext.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { storeError } from './errors.ts';

const MAGIC = Buffer.from('ADTENC1\n', 'ascii');
export const SECRET_KEY_BYTES = 32;

/** A fresh random deployment key. */
export function generateSecretKey(): Buffer {
  return randomBytes(SECRET_KEY_BYTES);
}

/** Parses a key file's content: 64 hex characters or 44 base64 characters (a trailing newline is fine). */
export function parseSecretKey(text: string, source = 'secret key'): Buffer {
  const t = text.trim();
  const buf = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/]{43}=$/.test(t) ? Buffer.from(t, 'base64') : null;
  if (!buf || buf.length !== SECRET_KEY_BYTES) {
    throw storeError('NO_SECRET_KEY', `${source}: expected 32 bytes as 64 hex or 44 base64 characters`, { exitCode: 2 });
  }
  return buf;
}

export function isEncrypted(body: Uint8Array): boolean {
  return body.length >= MAGIC.length && Buffer.from(body.subarray(0, MAGIC.length)).equals(MAGIC);
}

export function encrypt(plain: Uint8Array, key: Uint8Array, objectKey: string): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(objectKey, 'utf8'));
  const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([MAGIC, iv, cipher.getAuthTag(), ct]);
}

export function decrypt(body: Uint8Array, key: Uint8Array, objectKey: string): Buffer {
  const buf = Buffer.from(body);
  const iv = buf.subarray(MAGIC.length, MAGIC.length + 12);
  const tag = buf.subarray(MAGIC.length + 12, MAGIC.length + 28);
  const ct = buf.subarray(MAGIC.length + 28);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.from(objectKey, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch (cause) {
    throw storeError('DECRYPT_FAILED', `cannot decrypt "${objectKey}": wrong deployment key, or the object was altered`, {
      cause: new Error(String((cause as Error).message)),
    });
  }
}
