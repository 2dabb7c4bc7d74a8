/**
 * The DigitalOcean driver against the DigitalOcean fake backed by a cloud (`backing` option):
 * droplets are the backing's servers, snapshots its images. The backing here is the memory compute
 * with snapshots of stopped servers (as the local cloud takes them; `snapshots: false` for a
 * backing without), the memory native firewall and a record of the zones, each call kept for the
 * assertions.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '@adt/test-utils';
import digitaloceanDriver from '../../src/drivers/digitalocean.ts';
import { digitaloceanFake } from '../../src/fakes/digitalocean.ts';
import { TEST_KEY } from './_keys.ts';
import { STOCK, testBacking as sharedBacking } from './_backing.ts';

const TOKEN = 'do-backed-token-2b8e';

// This suite's backing runs a new server at once (no first read as `creating`).
const testBacking = (o: { snapshots?: boolean } = {}) => sharedBacking({ ...o, boot: false });

type Backing = ReturnType<typeof testBacking>;
type Fake = ReturnType<typeof digitaloceanFake>;

async function withBackedFake<T>(run: (fake: Fake, baseUrl: string, b: Backing) => Promise<T>, b: Backing = testBacking()): Promise<T> {
  const fake = digitaloceanFake({ token: TOKEN, backing: b.backing });
  const baseUrl = await fake.listen();
  try {
    return await run(fake, baseUrl, b);
  } finally {
    await fake.close();
  }
}

const driver = (baseUrl: string) =>
  digitaloceanDriver({ token: TOKEN, baseUrl, region: 'lon1', size: 's-1vcpu-2gb', baseDelayMs: 5, maxDelayMs: 20 });

const base = { role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\necho backed\n' } as const;

// ---

const droplets = suite('digitalocean driver on a backed fake: droplets');

droplets("a droplet is the backing's server: its name, user-data, the stock image for debian-12-x64, its keys and tags", () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const s = await cloud.create({ ...base, name: 'ws-b7-1a2b', sshKeys: [TEST_KEY.line] });
    assert.equal(b.creates, [
      {
        name: 'ws-b7-1a2b',
        role: 'webserver',
        buildId: 'b7',
        userData: '#!/bin/sh\necho backed\n',
        image: STOCK,
        sshKeys: [TEST_KEY.line],
        tags: ['adt', 'adt-role-webserver', 'adt-build-b7', 'adt-b7-webserver'],
      },
    ]);
    assert.is(fake.state.droplets.get(Number(s.id))?.backing_id, 'ws-b7-1a2b');
    const running = await cloud.waitUntilRunning(s.id, { intervalMs: 1, timeoutMs: 2_000 });
    assert.is(running.publicIp, b.memory.servers.get('ws-b7-1a2b')!.publicIp);
    assert.is(running.privateIp, b.memory.servers.get('ws-b7-1a2b')!.privateIp);
  }),
);

droplets("an image that is no snapshot of the account is DigitalOcean's 422; another slug is not backed", () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    await rejects(cloud.create({ ...base, name: 'ws-b7-3c4d', image: '123456' }), {
      exitCode: 2,
      message: /HTTP 422: You specified an invalid image for Droplet creation\.$/,
    });
    await rejects(
      cloud.create({ ...base, name: 'ws-b7-3c4d', image: 'ubuntu-24-04-x64' }),
      /HTTP 422: image "ubuntu-24-04-x64" is not backed by the local cloud: it has debian-12-x64 and this account's snapshots/,
    );
    assert.is(b.creates.length, 0);
    assert.is(fake.state.droplets.size, 0);
  }),
);

// ---

const snapshots = suite('digitalocean driver on a backed fake: snapshots');

// A prepared image as the toolkit makes one (`fleet/images.ts`): a builder powers off, it is snapshotted, servers boot from it.
snapshots("a snapshot is the backing's snapshot of the droplet's server; droplets created from it are the backing's servers from it", () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const builder = await cloud.create({ ...base, role: 'build', name: 'bm-b7-1111', userData: '#!/bin/sh\npoweroff\n' });
    // Still running: the backing refuses, and its message is DigitalOcean's 422.
    await rejects(cloud.snapshot(builder.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 }), {
      message: /HTTP 422: the local cloud: server bm-b7-1111 is running: the local cloud snapshots stopped servers only/,
    });
    b.memory.servers.get('bm-b7-1111')!.state = 'stopped';
    assert.is((await cloud.get(builder.id))?.state, 'stopped', 'off, as the backing reports it');

    const image = await cloud.snapshot(builder.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 });
    assert.match(image, /^\d+$/);
    assert.equal(b.snapshotCalls.at(-1), { id: 'bm-b7-1111', name: 'adt-webserver-0a1b2c3d4e5f' }, "the droplet's server, by name");
    assert.equal(fake.state.backingImages.get(image), 'snap-1');
    const actions = fake.log.filter((l) => l.path.startsWith('/actions/') || l.path.endsWith('/actions'));
    assert.equal(
      actions.map((l) => [l.method, l.status]),
      [
        ['POST', 422],
        ['POST', 201],
        ['GET', 200],
      ],
      'refused, then made and polled until completed',
    );
    assert.ok(
      fake.log.some((l) => l.method === 'GET' && l.path === `/droplets/${builder.id}/snapshots`),
      'found by its name in the list',
    );

    // Listed as the Snapshots API lists them (ids as strings), through the driver's client.
    const listed = await cloud.api.get<{ snapshots: { id: string; name: string; resource_id: string; resource_type: string }[] }>(
      '/snapshots',
      { query: { resource_type: 'droplet' } },
    );
    assert.equal(
      listed.snapshots.map((s) => [s.id, s.name, s.resource_id, s.resource_type]),
      [[image, 'adt-webserver-0a1b2c3d4e5f', builder.id, 'droplet']],
    );

    // The builder goes; its snapshot stays, and a webserver is made from it.
    await cloud.destroy(builder.id);
    const ws = await cloud.create({ ...base, name: 'ws-b7-2222', image });
    assert.is(b.creates.at(-1)?.name, 'ws-b7-2222');
    assert.is(b.creates.at(-1)?.image, 'snap-1', "the backing's image of the snapshot");
    assert.is(b.memory.servers.get('ws-b7-2222')?.image, 'snap-1');
    assert.is(fake.state.droplets.get(Number(ws.id))?.image, Number(image), "sent as the integer the API's image ids are");

    // Deleted (204): forgotten (the backing's image stays), and no droplet is made from it any more.
    await cloud.api.delete(`/snapshots/${image}`);
    assert.is(fake.state.backingImages.size, 0);
    assert.ok(b.images.has('snap-1'), "the backing's image is not deleted (ComputeProvider has no image deletion)");
    await rejects(cloud.create({ ...base, name: 'ws-b7-3333', image }), /HTTP 422: You specified an invalid image for Droplet creation/);
  }),
);

// How `fleet/images.ts` prepares an image and deploys from it: snapshot the stopped builder, find it by name, create from its id.
snapshots(
  "findImage finds the snapshot of a stopped droplet by its name; a droplet created from its id is the backing's server from that image",
  () =>
    withBackedFake(async (fake, baseUrl, b) => {
      const cloud = driver(baseUrl);
      const name = 'adt-webserver-0a1b2c3d4e5f';
      assert.is(await cloud.findImage(name), null, 'not prepared yet');
      const builder = await cloud.create({ ...base, role: 'build', name: 'bm-b7-6666', userData: '#!/bin/sh\npoweroff\n' });
      b.memory.servers.get('bm-b7-6666')!.state = 'stopped';
      const image = await cloud.snapshot(builder.id, name, { intervalMs: 1 });
      await cloud.destroy(builder.id);

      const found = await cloud.findImage(name);
      assert.equal(found, { id: image, name });
      assert.is(await cloud.findImage('debian-12-x64'), null, 'the stock image is no snapshot of the account');
      const ws = await cloud.create({ ...base, name: 'ws-b7-6767', image: found!.id });
      const post = fake.log.filter((l) => l.method === 'POST' && l.path === '/droplets').at(-1)!.body as { image: unknown };
      assert.is(post.image, Number(image), 'the id as an integer');
      assert.is(b.creates.at(-1)?.image, 'snap-1', "the backing's image of the snapshot");
      assert.is(b.memory.servers.get('ws-b7-6767')?.image, 'snap-1');
      assert.is((await cloud.waitUntilRunning(ws.id, { intervalMs: 1, timeoutMs: 2_000 })).state, 'running');
    }),
);

snapshots('snapshots of a backing whose compute takes none are refused with a 422 that says so', () =>
  withBackedFake(
    async (fake, baseUrl) => {
      const cloud = driver(baseUrl);
      const s = await cloud.create({ ...base, name: 'ws-b7-4444' });
      await rejects(
        cloud.snapshot(s.id, 'adt-b7-webserver', { intervalMs: 1 }),
        /HTTP 422: snapshots are not backed by the local cloud: its compute \(test-backing\) takes none/,
      );
      assert.equal(fake.state.snapshots, []);
    },
    testBacking({ snapshots: false }),
  ),
);

snapshots('a backing snapshot that fails after the answer is an errored action, which the driver reports', () => {
  const b = testBacking();
  let fail: (e: Error) => void = () => {};
  // A snapshot that goes on past the answer, then fails (a copy that broke).
  b.backing.compute.snapshot = () => new Promise<string>((_resolve, reject) => (fail = reject));
  return withBackedFake(async (fake, baseUrl) => {
    const cloud = driver(baseUrl);
    const s = await cloud.create({ ...base, role: 'build', name: 'bm-b7-5555' });
    const made = cloud.snapshot(s.id, 'adt-webserver-ffff', { intervalMs: 5, timeoutMs: 10_000 });
    for (let i = 0; i < 400 && !fake.log.some((l) => l.method === 'GET' && l.path.startsWith('/actions/')); i++)
      await new Promise((r) => setTimeout(r, 5));
    assert.is(await cloud.findImage('adt-webserver-ffff'), null, 'not found while being made');
    fail(new Error('copying the disk failed'));
    await rejects(made, { code: 'SNAPSHOT_FAILED', message: /snapshot adt-webserver-ffff of droplet \d+ failed/ });
    assert.equal(fake.state.snapshots, []);
    assert.is(fake.state.backingImages.size, 0);
  }, b);
});

// ---

const state = suite('digitalocean driver on a backed fake: state');

state('exportState/importState: a restarted fake keeps its snapshots, each the backing image it was', async () => {
  const b = testBacking();
  const saved = await withBackedFake(async (fake, baseUrl) => {
    const cloud = driver(baseUrl);
    const builder = await cloud.create({ ...base, role: 'build', name: 'bm-b7-9999' });
    b.memory.servers.get('bm-b7-9999')!.state = 'stopped';
    const image = await cloud.snapshot(builder.id, 'adt-webserver-abcdef012345', { intervalMs: 1 });
    await cloud.destroy(builder.id);
    return { state: JSON.parse(JSON.stringify(fake.exportState())) as ReturnType<Fake['exportState']>, image };
  }, b);
  await withBackedFake(async (fake, baseUrl) => {
    fake.importState(saved.state);
    const cloud = driver(baseUrl);
    const listed = await cloud.api.get<{ snapshots: { id: string; name: string }[] }>('/snapshots');
    assert.equal(
      listed.snapshots.map((s) => [s.id, s.name]),
      [[saved.image, 'adt-webserver-abcdef012345']],
    );
    const ws = await cloud.create({ ...base, name: 'ws-b7-8888', image: saved.image });
    assert.is(b.creates.at(-1)?.image, 'snap-1');
    assert.ok(Number(ws.id) > Number(saved.image), 'ids go on from where they were');
  }, b);
});

state('a state saved before snapshots were backed (no backingImages) loads', async () => {
  const b = testBacking();
  const saved = await withBackedFake(async (fake, baseUrl) => {
    await driver(baseUrl).create({ ...base, name: 'ws-b7-7777' });
    const { backingImages: _b, ...old } = JSON.parse(JSON.stringify(fake.exportState())) as ReturnType<Fake['exportState']>;
    return old;
  }, b);
  await withBackedFake(async (fake, baseUrl) => {
    fake.importState(saved);
    assert.is((await driver(baseUrl).list({ buildId: 'b7' })).length, 1);
    assert.is(fake.state.backingImages.size, 0);
  }, b);
});

droplets.run();
snapshots.run();
state.run();
