/**
 * TLS for a deployment without ACME: a local certificate authority the build creates, and server
 * certificates it issues for the site name (and the servers' addresses). Clients that trust the CA
 * (tests, the operator's browser after importing it) verify the site like any other. Keys are
 * written 0600. Commands are `openssl` argv arrays; no key material passes on a command line.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { errorFactory, type Argv, type Runner } from '@adt/core';

const fail = errorFactory('webserver', 'tls');

export interface CertificateAuthority {
  keyFile: string;
  certFile: string;
}

export interface IssuedCertificate {
  keyFile: string;
  certFile: string;
  /** The certificate followed by the CA's: what nginx serves. */
  chainFile: string;
}

/** argv for a new CA (EC P-256 key, self-signed, 10 years), as data. */
export function caArgv(dir: string, commonName: string): Argv {
  return [
    'openssl',
    'req',
    '-x509',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-sha256',
    '-days',
    '3650',
    '-keyout',
    join(dir, 'ca.key'),
    '-out',
    join(dir, 'ca.crt'),
    '-subj',
    `/CN=${commonName}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ];
}

/** Creates a CA in `dir` unless one is there. */
export async function ensureCa(runner: Runner, dir: string, commonName = 'ADT local CA'): Promise<CertificateAuthority> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = { keyFile: join(dir, 'ca.key'), certFile: join(dir, 'ca.crt') };
  const exists = await readFile(ca.certFile).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await runner.run(caArgv(dir, commonName));
    await chmod(ca.keyFile, 0o600);
  }
  return ca;
}

/** The subjectAltName value for names and addresses, validated. */
export function subjectAltName(names: string[]): string {
  if (names.length === 0) throw fail('BAD_NAMES', 'a certificate needs at least one name', { exitCode: 2 });
  return names
    .map((n) => {
      if (isIP(n)) return `IP:${n}`;
      if (!/^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(n)) {
        throw fail('BAD_NAMES', `"${n}" is not a DNS name or IP address`, { exitCode: 2 });
      }
      return `DNS:${n}`;
    })
    .join(',');
}

/** Issues a server certificate for `names` (the first is the subject), valid `days` days. */
export async function issueCertificate(
  runner: Runner,
  ca: CertificateAuthority,
  outDir: string,
  names: string[],
  days = 397,
): Promise<IssuedCertificate> {
  const san = subjectAltName(names);
  await mkdir(outDir, { recursive: true, mode: 0o755 });
  const out: IssuedCertificate = {
    keyFile: join(outDir, 'server.key'),
    certFile: join(outDir, 'server.crt'),
    chainFile: join(outDir, 'fullchain.pem'),
  };
  const work = await mkdtemp(join(tmpdir(), 'adt-tls-'));
  try {
    const csr = join(work, 'server.csr');
    const ext = join(work, 'ext.cnf');
    await writeFile(
      ext,
      `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
    );
    await runner.run([
      'openssl',
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      out.keyFile,
      '-out',
      csr,
      '-subj',
      `/CN=${names[0]}`,
    ]);
    await chmod(out.keyFile, 0o600);
    await runner.run([
      'openssl',
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-CAcreateserial',
      '-CAserial',
      join(work, 'ca.srl'),
      '-out',
      out.certFile,
      '-days',
      String(days),
      '-sha256',
      '-extfile',
      ext,
    ]);
    await writeFile(out.chainFile, (await readFile(out.certFile, 'utf8')) + (await readFile(ca.certFile, 'utf8')));
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
