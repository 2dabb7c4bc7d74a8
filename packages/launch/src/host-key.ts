/**
 * SSH keys made by whoever creates a server: the server's ed25519 host key (its public half is
 * recorded as the server's pinned known host: the build's helpers connect with strict host key
 * checking and never trust a key on first use), and the build machine's own key pair. Made with
 * OpenSSH's ssh-keygen, in a private temporary directory removed at once.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorFactory, execaRunner, outputTail, type Runner } from '@adt/core';

const fail = errorFactory('launch', 'ssh');

export interface KeyPair {
  /** OpenSSH private key (PEM-like "OPENSSH PRIVATE KEY"): a secret. */
  privateKey: string;
  /** `ssh-ed25519 AAAA... comment` */
  publicKey: string;
}

/** A new ed25519 key pair with `comment`. */
export async function generateKeyPair(comment: string, runner: Runner = execaRunner({ timeoutMs: 30_000 })): Promise<KeyPair> {
  if (!/^[A-Za-z0-9@._-]{1,64}$/.test(comment)) throw fail('BAD_COMMENT', `key comment "${comment}"`, { exitCode: 2 });
  const dir = await mkdtemp(join(tmpdir(), 'adt-key-'));
  try {
    const file = join(dir, 'key');
    const r = await runner.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { nothrow: true });
    if (r.exitCode !== 0) throw fail('KEYGEN_FAILED', `ssh-keygen failed (is openssh-client installed?): ${outputTail(r)}`);
    return { privateKey: await readFile(file, 'utf8'), publicKey: (await readFile(`${file}.pub`, 'utf8')).trim() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A known_hosts line for `alias` (the server's name, used as HostKeyAlias). */
export function knownHostsLine(alias: string, publicKey: string): string {
  const [type, key] = publicKey.trim().split(/\s+/);
  if (!type || !key || !/^ssh-ed25519$/.test(type))
    throw fail('BAD_HOST_KEY', `host key of ${alias}: an ssh-ed25519 public key`, { exitCode: 2 });
  return `${alias} ${type} ${key}`;
}
