/**
 * One end-to-end suite for a cloud whose API the local cloud emulates (EMULATOR=local) and whose
 * driver knows no private range of the fleet (Linode, Vultr, Exoscale): the cloud's firewalls name each
 * server's addresses, so the database's lets in the webservers there are. Every call goes through
 * that cloud's driver to the local cloud's emulation of its API: its instances are real local
 * servers that run their user-data, its firewalls the cloud's native rules, its domain served by
 * the cloud's PowerDNS. TLS=local-ca (lego's DNS-01 providers of these clouds talk to their own
 * APIs only). Production mode: the autoscaler, with a token scoped to the build, heals a killed
 * webserver and scales, and applies the firewalls again as webservers come and go (a webserver it
 * made reaches the database; one it destroyed no longer does). Destroy leaves nothing on the
 * emulated account or the cloud.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { localCloudConfig } from '@adt/fleet';
import { attachLocalCloud } from '@adt/localcloud';
import { keys } from '@adt/configstore';
import { EMULATED_APIS, type EmulatedProvider } from '@adt/providers';
import { cleanup, setup } from '@adt/test-utils';
import {
  aRecords,
  deploymentOf,
  fetchFromOutsider,
  helper,
  killWebStack,
  openTestFleet,
  productionFleet,
  removeFleet,
  until,
  zx,
  type Fleet,
} from './_fleet.ts';

/** An instance as the test reads it from the cloud's API. */
export interface CloudInstance {
  id: string;
  name: string;
  role: string;
  /** Running, as the API says it. */
  running: boolean;
  publicIp: string;
}

export interface EmulatedCloud {
  provider: EmulatedProvider;
  /** The local cloud's id (also the site's zone: `<id>.test`) and its networks' third octet. */
  cloudId: string;
  net: number;
  instances(get: ApiGet): Promise<CloudInstance[]>;
  /** Names of the build's firewalls, and what the deploy's should be. */
  firewalls(get: ApiGet): Promise<string[]>;
  expectedFirewalls: string[];
  /** The A records of `www` in the zone, through the API. */
  siteRecords(get: ApiGet): Promise<string[]>;
  /** The addresses the database's cloud firewall lets reach port 3306. */
  databaseSources(get: ApiGet): Promise<string[]>;
  /** A GET through the API's own client where it signs its requests (Exoscale); default: the bearer token. */
  client?(baseUrl: string, token: string): ApiGet;
  /** More settings of the deployment file (IMAGES=prepared: the roles' images made through the cloud's snapshots). */
  extra?: string[];
}

export type ApiGet = <T>(path: string) => Promise<T>;

export function emulatedCloudSuite(c: EmulatedCloud): void {
  const test = suite<{ f: Fleet }>(`${c.provider}, emulated by the local cloud: deploy, heal, scale, firewalls follow, destroy`);

  setup(test, async (ctx) => {
    ctx.f = await productionFleet(c.cloudId, c.net, [
      `PROVIDER=${c.provider}`,
      'EMULATOR=local',
      'WEBSERVERS=2',
      'TLS=local-ca',
      'READY_TIMEOUT=600',
      ...(c.extra ?? []),
    ]);
  });

  test.after(async (ctx) => cleanup(`the ${c.cloudId} fleet`, [() => removeFleet(ctx.f)]));

  /** A GET on the emulated API with the cloud's account token (what the user's token is there). */
  const api =
    (f: Fleet): ApiGet =>
    async <T>(path: string) => {
      const access = await attachLocalCloud(localCloudConfig(deploymentOf(f.file)));
      if (!access) throw new Error(`the ${c.cloudId} cloud does not run`);
      const base = `${access.url}/${c.provider}${EMULATED_APIS[c.provider]}`;
      if (c.client) return c.client(base, access.token)<T>(path);
      const r = await fetch(`${base}${path}`, {
        headers: { authorization: `Bearer ${access.token}` },
      });
      if (!r.ok) throw new Error(`GET ${path}: HTTP ${r.status} ${await r.text()}`);
      return (await r.json()) as T;
    };
  const web = async (f: Fleet) => (await c.instances(api(f))).filter((i) => i.role === 'webserver');

  test(`deploy goes through ${c.provider}'s API: instances, firewalls, the domain; the site answers on HTTPS through its DNS`, async ({
    f,
  }) => {
    const r = await zx('deploy.mjs', ['--config', f.file]);
    assert.is(r.exitCode, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`on ${c.provider} \\(emulated by the local cloud "${c.cloudId}"\\)`));
    const all = await c.instances(api(f));
    assert.equal(all.map((i) => i.role).sort(), ['autoscaler', 'database', 'webserver', 'webserver']);
    for (const i of all) assert.ok(i.running, `${i.name} is running`);
    assert.equal((await c.firewalls(api(f))).sort(), [...c.expectedFirewalls].sort());
    const ips = (await web(f)).map((i) => i.publicIp).sort();
    assert.equal(await c.siteRecords(api(f)), ips, "the site's records, written through the API");
    assert.equal(await aRecords(f), ips, "and served by the cloud's DNS to resolvers");
    for (const ip of ips) assert.ok([200, 302].includes(await fetchFromOutsider(f, ip)), `${ip} serves the site on HTTPS`);
    const db = await c.databaseSources(api(f));
    for (const ip of ips) assert.ok(db.includes(ip), `the database's cloud firewall lets ${ip} in (${db.join(', ')})`);
    if (c.extra?.includes('IMAGES=prepared')) {
      // Each role's image made once through the cloud's snapshots; the servers booted from them.
      for (const role of ['webserver', 'database', 'autoscaler'])
        assert.match(r.stdout, new RegExp(`${role}: image adt-${role}-[0-9a-f]{12} prepared in [\\d.]+ s`), r.stdout);
      const fleet = await openTestFleet(f.file);
      try {
        const image = await fleet.store.get(keys.webserverImage);
        assert.match(image?.from ?? '', /^adt-webserver-[0-9a-f]{12}$/, "the autoscalers' image is recorded (config/webserver-image)");
      } finally {
        await fleet.close();
      }
    }
  });

  test('a re-run converges: nothing created, nothing destroyed', async ({ f }) => {
    const ids = async () => (await c.instances(api(f))).map((i) => i.id).sort();
    const before = await ids();
    const r = await zx('deploy.mjs', ['--config', f.file]);
    assert.is(r.exitCode, 0, r.stderr + r.stdout);
    assert.equal(await ids(), before, `the re-run's output:\n${r.stdout}`);
  });

  test("the autoscaler replaces a killed webserver and scales to 3; the database's cloud firewall follows", async ({ f }) => {
    const [dying] = await web(f);
    assert.ok(dying, 'a webserver to kill');
    const kill = await killWebStack(f, dying!.name);
    assert.is(kill.exitCode, 0, kill.stderr);
    assert.ok(
      await until(async () => {
        const now = await web(f);
        return now.length === 2 && !now.some((i) => i.id === dying!.id) && (await aRecords(f)).length === 2;
      }, 600_000),
      'a replacement instance serves (it reached the database), and the dead one is destroyed through the API',
    );
    assert.ok(
      await until(async () => !(await c.databaseSources(api(f))).includes(dying!.publicIp), 30_000),
      'the destroyed webserver no longer reaches the database',
    );
    const scale = await helper('AdjustScaling', ['--config', f.file, '3']);
    assert.is(scale.exitCode, 0, scale.stderr);
    assert.ok(await until(async () => (await aRecords(f)).length === 3, 600_000), 'three webservers in DNS');
    for (const ip of await aRecords(f)) assert.ok([200, 302].includes(await fetchFromOutsider(f, ip)), `${ip} serves`);
    const db = await c.databaseSources(api(f));
    for (const i of await web(f)) assert.ok(db.includes(i.publicIp), `${i.name} is let into the database`);
    assert.equal(await c.siteRecords(api(f)), await aRecords(f), "the cloud's DNS holds what the API holds");
  });

  test('destroy removes every instance, firewall and record it made, and the cloud goes', async ({ f }) => {
    const r = await zx('destroy.mjs', ['--config', f.file], { timeoutMs: 300_000 });
    assert.is(r.exitCode, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /the cloud's firewall rules removed: webserver, database, autoscaler\n/, r.stdout);
    assert.match(r.stdout, new RegExp(`DNS records removed: www\\.${c.cloudId}\\.test A`));
    assert.match(r.stdout, new RegExp(`${c.provider} \\(emulated by the local cloud "${c.cloudId}"\\): torn down`));
    assert.is(await attachLocalCloud(localCloudConfig(deploymentOf(f.file))), null, 'the cloud is gone');
  });

  test.run();
}
