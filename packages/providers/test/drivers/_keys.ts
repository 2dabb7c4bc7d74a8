/** SSH public keys for the drivers' tests: a fixed one with its known fingerprints, fresh ones, and private material to refuse. */
import { generateKeyPairSync } from 'node:crypto';

/** Made by `ssh-keygen -t ed25519 -C adt-build-x` (its private half was thrown away); fingerprints from `ssh-keygen -l [-E md5]`. */
export const TEST_KEY = {
  line: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICoVop2J/kCD9quxkxz+8k/Vs366bT4zrhRbwiEgUL7Q adt-build-x',
  md5: '70:71:98:69:df:cd:00:50:b2:7e:f6:94:83:34:d7:36',
  sha256: 'SHA256:pWuxMNaRwEfe9fJlusT/9l9eTqWnJilm/nUKtMQlSM0',
};

/** A new ed25519 key pair: its OpenSSH public line and its private key (PKCS#8 PEM), which must never be sent. */
export function freshKeyPair(comment = 'adt-test'): { publicKey: string; privateKey: string; privateBase64: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const x = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  // The blob as OpenSSH writes it: string "ssh-ed25519", string <32-byte key>, each with its uint32 length.
  const field = (b: Buffer) => {
    const out = Buffer.concat([Buffer.alloc(4), b]);
    out.writeUInt32BE(b.length, 0);
    return out;
  };
  const blob = Buffer.concat([field(Buffer.from('ssh-ed25519')), field(x)]);
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  return {
    publicKey: `ssh-ed25519 ${blob.toString('base64')} ${comment}`,
    privateKey: pem,
    privateBase64: pem.split('\n')[1]!,
  };
}
