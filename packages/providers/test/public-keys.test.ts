/** The SSH public keys of `create` as the real-cloud drivers read them (`parsePublicKeys` in `drivers/_cloud.ts`). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { throws } from '@adt/test-utils';
import { parsePublicKeys, sameKey } from '../src/drivers/_cloud.ts';
import { freshKeyPair, TEST_KEY } from './drivers/_keys.ts';

const test = suite('SSH public keys of create');

test('fingerprints as ssh-keygen prints them, a stable name, the line as sent', () => {
  const [k] = parsePublicKeys('digitalocean', [`  ${TEST_KEY.line}\n`]);
  assert.is(k!.md5, TEST_KEY.md5);
  assert.is(k!.sha256, TEST_KEY.sha256);
  assert.is(k!.line, TEST_KEY.line);
  assert.is(k!.type, 'ssh-ed25519');
  assert.match(k!.name, /^adt-[0-9a-f]{12}$/);
  // The name depends on the key only: not on its comment, spacing or driver.
  const [again] = parsePublicKeys('vultr', [TEST_KEY.line.replace(' ', '   ').replace(/adt-build-x$/, 'elsewhere')]);
  assert.is(again!.name, k!.name);
  assert.is(parsePublicKeys('x', [freshKeyPair().publicKey])[0]!.name === k!.name, false);
});

test('the same key twice is kept once; no keys is none', () => {
  const other = freshKeyPair().publicKey;
  const keys = parsePublicKeys('x', [TEST_KEY.line, other, TEST_KEY.line.replace(/ \S+$/, ' another-comment')]);
  assert.equal(
    keys.map((k) => k.line),
    [TEST_KEY.line, other],
  );
  assert.equal(parsePublicKeys('x', undefined), []);
  assert.ok(sameKey(`${TEST_KEY.line.replace(/ \S+$/, '')}  c`, keys[0]!));
  assert.not.ok(sameKey(other, keys[0]!));
});

test('refused with exit 2 naming the entry, the text never quoted back', () => {
  const pair = freshKeyPair();
  const e = throws(() => parsePublicKeys('linode', [TEST_KEY.line, pair.privateKey]), { code: 'BAD_SSH_KEY', exitCode: 2 });
  assert.match(e.message, /^\[adt:providers\] \[linode\] sshKeys\[1\]: this is a private key/);
  assert.not.ok(e.message.includes(pair.privateBase64.slice(0, 16)));
  throws(() => parsePublicKeys('x', [7 as unknown as string]), { message: /sshKeys\[0\]: not a string/ });
  throws(() => parsePublicKeys('x', ['']), { message: /sshKeys\[0\]: not "<type> <base64>/ });
});

test.run();
