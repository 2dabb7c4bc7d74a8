/**
 * Optional encryption of backup parts with a key the user holds (the bucket provider cannot read
 * them): AES-256-GCM as a stream. Layout: `ADTBK1\n` + 12-byte IV + ciphertext + 16-byte tag.
 * Decryption holds back the last 16 bytes (the tag) and fails at the end if anything was altered.
 */
import { createCipheriv, createDecipheriv, randomBytes, type DecipherGCM } from 'node:crypto';
import { Transform } from 'node:stream';
import { errorFactory } from '@adt/core';

const MAGIC = Buffer.from('ADTBK1\n', 'ascii');
const fail = errorFactory('backup', 'crypto');

export function encryptStream(key: Uint8Array): Transform {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  let started = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const out = cipher.update(chunk);
      cb(null, started ? out : ((started = true), Buffer.concat([MAGIC, iv, out])));
    },
    flush(cb) {
      const head = started ? Buffer.alloc(0) : Buffer.concat([MAGIC, iv]);
      cb(null, Buffer.concat([head, cipher.final(), cipher.getAuthTag()]));
    },
  });
}

export function decryptStream(key: Uint8Array): Transform {
  let header = Buffer.alloc(0);
  let decipher: DecipherGCM | undefined;
  let tail = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        if (!decipher) {
          header = Buffer.concat([header, chunk]);
          if (header.length < MAGIC.length + 12) return cb();
          if (!header.subarray(0, MAGIC.length).equals(MAGIC))
            return cb(fail('NOT_ENCRYPTED', 'this part is not an encrypted backup part'));
          decipher = createDecipheriv('aes-256-gcm', key, header.subarray(MAGIC.length, MAGIC.length + 12));
          chunk = header.subarray(MAGIC.length + 12);
        }
        const data = Buffer.concat([tail, chunk]);
        tail = data.subarray(Math.max(0, data.length - 16));
        cb(null, decipher.update(data.subarray(0, Math.max(0, data.length - 16))));
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb) {
      if (!decipher || tail.length !== 16) return cb(fail('TRUNCATED', 'the encrypted part is truncated'));
      try {
        decipher.setAuthTag(tail);
        cb(null, decipher.final());
      } catch {
        cb(fail('DECRYPT_FAILED', 'the part does not decrypt: wrong backup key, or the archive was altered'));
      }
    },
  });
}
