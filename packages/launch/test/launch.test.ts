/** The user-data, the envelope and the host keys, as data; publishing and launching against a real S3 server and the memory cloud. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigStore, keys } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { MemoryCompute } from '@adt/providers/drivers/memory';
import { startEmbeddedS3, type EmbeddedS3 } from '@adt/localcloud/services/s3';
import { quietAwsSdk, removeTempDir, tempDir, testS3Client, throws } from '@adt/test-utils';
import {
  envelopeObject,
  generateKeyPair,
  knownHostsLine,
  launchServer,
  openEnvelope,
  publishArtifacts,
  rolePackages,
  sealEnvelope,
  userDataScript,
  type Envelope,
  type UserDataOptions,
} from '../src/index.ts';

quietAwsSdk();
const SHA = 'a'.repeat(64);
const base: UserDataOptions = {
  role: 'webserver',
  server: 'ws-b1-abc123',
  buildId: 'b1',
  runtime: { url: 'http://198.18.1.1:9700/b/artifacts/runtime.tar.gz?X-Amz-Signature=x%2Fy', sha256: SHA, dir: 'node-v20.20.2-linux-x64' },
  bundle: { url: 'http://198.18.1.1:9700/b/artifacts/bundle.tar.gz?X-Amz-Expires=420', sha256: 'b'.repeat(64) },
  envelope: {
    url: 'http://198.18.1.1:9700/b/bootstrap/ws-b1-abc123.envelope?X-Amz-Expires=420',
    deleteUrl: 'http://x/y?z=1',
    key: 'c'.repeat(64),
  },
  expiresAt: '2026-12-01T00:00:00.000Z',
  mode: 'bootstrap',
};

const userData = suite('user-data');

userData('a small shell script: fetch, check, unpack, then the role bootstrap; links single-quoted', () => {
  const u = userDataScript(base);
  assert.ok(u.startsWith('#!/bin/sh\n'));
  assert.ok(Buffer.byteLength(u) < 16 * 1024, 'fits every cloud (Exoscale: 24 KiB raw)');
  const fetchBundle = u.indexOf("get 'http://198.18.1.1:9700/b/artifacts/bundle.tar.gz");
  const check = u.indexOf(`echo '${'b'.repeat(64)}  '"$B/bundle.tar.gz" | sha256sum -c`);
  const unpack = u.indexOf('tar -xzf "$B/bundle.tar.gz" -C /opt/adt');
  assert.ok(fetchBundle > 0 && fetchBundle < check && check < unpack, 'checked before it is unpacked');
  assert.ok(
    u.indexOf('if [ ! -x /opt/adt/runtime/aaaaaaaaaaaaaaaa/node-v20.20.2-linux-x64/bin/node ]') > 0,
    'Node is fetched only when absent',
  );
  assert.match(u, /exec \/opt\/adt\/roles\/webserver\/bootstrap\n$/);
  assert.match(u, /umask 077/, "the envelope's link and key go to a 0600 file");
});

userData('an image builder gets no envelope and prepares the image; unpack-only runs nothing', () => {
  const builder = userDataScript({ ...base, envelope: null, mode: 'prepare-image' });
  assert.not.match(builder, /envelope/);
  assert.match(builder, /bootstrap --prepare-image\n$/);
  const unpack = userDataScript({ ...base, envelope: null, mode: 'unpack' });
  assert.not.match(unpack, /bootstrap/);
  throws(() => userDataScript({ ...base, mode: 'prepare-image' }), /an envelope/);
  throws(() => userDataScript({ ...base, envelope: null }), /an envelope/);
});

userData('values a shell would read otherwise are refused', () => {
  throws(() => userDataScript({ ...base, bundle: { ...base.bundle, url: "http://x/'; rm -rf /; '" } }), /bundle\.url/);
  throws(() => userDataScript({ ...base, bundle: { ...base.bundle, sha256: 'not-a-sha' } }), /bundle\.sha256/);
  throws(() => userDataScript({ ...base, runtime: { ...base.runtime, dir: '../../etc' } }), /runtime\.dir/);
  throws(() => userDataScript({ ...base, server: 'WS; reboot' }), /server/);
});

// ---

const envelope = suite('envelope');

const sample = (): Envelope => ({
  version: 1,
  server: 'ws-b1-abc123',
  role: 'webserver',
  buildId: 'b1',
  datastoreEnv: { ADT_CONFIG_BUCKET: 'b' },
  datastoreKey: 'd'.repeat(64),
  sshHostKey: { privateKey: 'PRIVATE', publicKey: 'ssh-ed25519 AAAA ws' },
  authorizedKeys: ['ssh-ed25519 BBBB build'],
});

envelope('sealed with a key of its own; only that key and that server open it', () => {
  const sealed = sealEnvelope(sample());
  assert.not.ok(sealed.body.toString('latin1').includes('PRIVATE'), 'encrypted');
  assert.is(openEnvelope(sealed.body, sealed.key, 'ws-b1-abc123').datastoreKey, 'd'.repeat(64));
  throws(() => openEnvelope(sealed.body, 'e'.repeat(64), 'ws-b1-abc123'), 'DECRYPT_FAILED');
  // Bound to its object's name: another server's envelope does not open as this one's.
  throws(() => openEnvelope(sealed.body, sealed.key, 'ws-b1-other1'), 'DECRYPT_FAILED');
  assert.is(envelopeObject('ws-b1-abc123'), 'bootstrap/ws-b1-abc123.envelope');
});

// ---

const ssh = suite('host keys');

ssh('an ed25519 pair from ssh-keygen, and its known_hosts line under the server name', async () => {
  const k = await generateKeyPair('ws-b1-abc123');
  assert.match(k.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
  assert.match(k.publicKey, /^ssh-ed25519 \S+ ws-b1-abc123$/);
  assert.match(knownHostsLine('ws-b1-abc123', k.publicKey), /^ws-b1-abc123 ssh-ed25519 \S+$/);
  throws(() => knownHostsLine('x', 'ssh-rsa AAAA'), /ssh-ed25519/);
});

// ---

const launch = suite<{ s3: EmbeddedS3; dir: string }>('publishing and launching');

launch.before(async (ctx) => {
  ctx.dir = await tempDir('adt-launch-');
  ctx.s3 = await startEmbeddedS3({ directory: join(ctx.dir, 's3') });
});
launch.after(async (ctx) => {
  await ctx.s3?.stop();
  await removeTempDir(ctx.dir);
});

launch(
  'artifacts go up once; a launch seals the envelope, records the host key, and its user-data holds no secret',
  async ({ s3, dir }) => {
    const client = testS3Client({ endpoint: s3.endpoint, credentials: s3.credentials });
    const store = new ConfigStore({ driver: s3Driver({ bucket: 'cfg-b1', client }), secretKey: Buffer.alloc(32, 1), writeBudget: null });
    await store.ensureBucket();
    await writeFile(join(dir, 'bundle.tar.gz'), 'bundle bytes');
    await writeFile(join(dir, 'runtime.tar.gz'), 'runtime bytes');
    const artifacts = {
      bundle: { file: join(dir, 'bundle.tar.gz'), sha256: SHA, bytes: 12, version: '0.2.0', inputs: 'i' },
      runtime: { file: join(dir, 'runtime.tar.gz'), sha256: 'f'.repeat(64), bytes: 13, node: 'v20.20.2', dir: 'node-v20.20.2-linux-x64' },
    };
    const first = await publishArtifacts(store, client, artifacts);
    assert.is(first.uploaded.length, 2);
    const again = await publishArtifacts(store, client, artifacts);
    assert.is(again.uploaded.length, 0, 'named by their checksums: not uploaded twice');
    assert.not.ok(again.changed);
    const compute = new MemoryCompute();
    const secret = 'e'.repeat(64);
    const l = await launchServer(
      { compute, store, s3: client, linkSeconds: 300, authorizedKeys: ['ssh-ed25519 AAAA build'] },
      {
        name: 'ws-b1-abc123',
        role: 'webserver',
        buildId: 'b1',
        secrets: { datastoreEnv: { ADT_S3_SECRET_ACCESS_KEY: 'S3-SECRET-VALUE' }, datastoreKey: secret },
      },
    );
    assert.ok(l.hostKey?.startsWith('ssh-ed25519 '));
    assert.is((await store.get(keys.hostKeys.key('ws-b1-abc123')))?.publicKey, l.hostKey);
    for (const s of [secret, 'S3-SECRET-VALUE', 'OPENSSH PRIVATE KEY']) assert.not.ok(l.userData.includes(s), `${s} not in the user-data`);
    // What the user-data names is what a server fetches: the envelope, once, with its key.
    const url = /printf '[^']*' '([^']+)' '([^']+)' '([0-9a-f]{64})'/.exec(l.userData)!;
    const body = Buffer.from(await (await fetch(url[1]!)).arrayBuffer());
    const e = openEnvelope(body, url[3]!, 'ws-b1-abc123');
    assert.is(e.datastoreKey, secret);
    assert.is((await fetch(url[2]!, { method: 'DELETE' })).status, 204);
    assert.is((await fetch(url[1]!)).status, 404, 'gone once taken');
    assert.ok(
      rolePackages('webserver').includes('php8.2-fpm') && rolePackages('database').includes('mariadb-server'),
      'each role its packages',
    );
  },
);

userData.run();
envelope.run();
ssh.run();
launch.run();
