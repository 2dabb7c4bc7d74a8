/**
 * What the build machine keeps of a build, in STATE_DIR/builds/<build id>/ (the directory 0700,
 * every secret 0600):
 *
 *   deployment.json      which site and cloud it is (a BUILD_ID deployed for another site is refused)
 *   datastore.key        the deployment's datastore key (hex)
 *   auth.key             the authentication server's own datastore key (WEB_FIREWALL=auth)
 *   ssh/id_ed25519(.pub) the build's SSH key pair: root's key on every server
 *   ssh/known_hosts      the servers' host keys, pinned when they were created
 *   ca/                  the build's local CA (TLS=local-ca)
 *   tls/, tls-auth/      certificates issued by it
 *   lego/                the ACME account and lego's files (TLS=acme)
 *   acme-root.pem        the root a client trusts for an ACME certificate
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSecretKey, parseSecretKey } from '@adt/configstore';
import { generateKeyPair, type KeyPair } from '@adt/launch';
import type { Deployment } from './settings.ts';

/** What a build directory records about its deployment (to refuse a clash on re-runs). */
export interface BuildRecord {
  siteUrl: string;
  buildId: string;
  provider: string;
  cloudId: string;
  configBucket: string;
  createdAt: string;
}

export class BuildState {
  readonly dir: string;
  readonly d: Deployment;
  constructor(d: Deployment) {
    this.d = d;
    this.dir = join(d.stateDir, 'builds', d.buildId);
  }

  get recordFile() {
    return join(this.dir, 'deployment.json');
  }
  get keyFile() {
    return join(this.dir, 'datastore.key');
  }
  get authKeyFile() {
    return join(this.dir, 'auth.key');
  }
  get sshKeyFile() {
    return join(this.dir, 'ssh', 'id_ed25519');
  }
  get knownHostsFile() {
    return join(this.dir, 'ssh', 'known_hosts');
  }
  get caDir() {
    return join(this.dir, 'ca');
  }
  get legoDir() {
    return join(this.dir, 'lego');
  }
  get acmeRootFile() {
    return join(this.dir, 'acme-root.pem');
  }

  exists(): boolean {
    return existsSync(this.keyFile);
  }

  record(): BuildRecord | null {
    try {
      return JSON.parse(readFileSync(this.recordFile, 'utf8')) as BuildRecord;
    } catch {
      return null;
    }
  }

  async ensureDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
  }

  /** A new build: its record and datastore key. Returns the key. */
  async create(): Promise<Buffer> {
    await this.ensureDir();
    const key = generateSecretKey();
    await writeFile(this.keyFile, key.toString('hex'), { mode: 0o600 });
    const record: BuildRecord = {
      siteUrl: this.d.siteUrl,
      buildId: this.d.buildId,
      provider: this.d.provider,
      cloudId: this.d.local.cloudId,
      configBucket: this.d.configBucket,
      createdAt: new Date().toISOString(),
    };
    await writeFile(this.recordFile, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    return key;
  }

  /** The deployment's datastore key, when the build has one. */
  key(): Buffer | undefined {
    return existsSync(this.keyFile) ? parseSecretKey(readFileSync(this.keyFile, 'utf8'), this.keyFile) : undefined;
  }

  /** The authentication server's own key (made on first use). */
  async authKey(): Promise<Buffer> {
    if (!existsSync(this.authKeyFile)) {
      await this.ensureDir();
      await writeFile(this.authKeyFile, generateSecretKey().toString('hex'), { mode: 0o600 });
    }
    return parseSecretKey(await readFile(this.authKeyFile, 'utf8'), this.authKeyFile);
  }

  /** The build's SSH key pair (made on first use). */
  async sshKey(): Promise<KeyPair> {
    if (!existsSync(this.sshKeyFile)) {
      await mkdir(join(this.dir, 'ssh'), { recursive: true, mode: 0o700 });
      const pair = await generateKeyPair(`adt-build-${this.d.buildId}`);
      await writeFile(this.sshKeyFile, pair.privateKey, { mode: 0o600 });
      await writeFile(`${this.sshKeyFile}.pub`, `${pair.publicKey}\n`, { mode: 0o644 });
    }
    return { privateKey: await readFile(this.sshKeyFile, 'utf8'), publicKey: (await readFile(`${this.sshKeyFile}.pub`, 'utf8')).trim() };
  }

  /** Other builds recorded in the same STATE_DIR on the same local cloud. */
  async otherBuilds(): Promise<string[]> {
    const dir = join(this.d.stateDir, 'builds');
    const names = await readdir(dir).catch(() => [] as string[]);
    return names.filter((n) => {
      if (n === this.d.buildId) return false;
      try {
        return (JSON.parse(readFileSync(join(dir, n, 'deployment.json'), 'utf8')) as BuildRecord).cloudId === this.d.local.cloudId;
      } catch {
        return false;
      }
    });
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
