/**
 * The emulated clouds' API: which token a request carries (a bearer token; Exoscale's signed key
 * under /exoscale/ only), that a signature is checked, and what a scoped token (an autoscaler's)
 * may change through each API: its build's servers of its roles, its build's firewalls, DNS
 * records and keys; nothing else. The emulators run backed by a memory cloud here (the e2e suites
 * of roles/build run them backed by the local cloud).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { serverName, type EmulatedProvider } from '@adt/providers';
import memoryCompute, { MemoryNativeFirewall } from '@adt/providers/drivers/memory';
import { exoscaleSignature } from '@adt/providers/drivers/exoscale';
import type { FakeRequest } from '@adt/providers/fakes/harness';
import { requestToken, scopeProblem, startEmulators } from '../src/emulators.ts';
import type { LocalCloud } from '../src/cloud.ts';
import type { Principal } from '../src/tokens.ts';

const scoped: Principal = { kind: 'scoped', id: 't1', buildId: 'b1', roles: ['webserver'] };
const account: Principal = { kind: 'account' };
const request = (method: string, path: string, body?: unknown): FakeRequest => ({
  method,
  path,
  query: new URLSearchParams(),
  body,
  headers: {},
});
const web = serverName({ role: 'webserver', buildId: 'b1', slot: 1 });

async function emulators() {
  const stateDir = await mkdtemp(join(tmpdir(), 'adt-emulators-'));
  // What the emulators take of the local cloud: its state dir, compute, native firewall, private network.
  const cloud = Object.assign(memoryCompute(), { stateDir, firewall: new MemoryNativeFirewall(), privateCidr: '198.19.1.0/24' });
  const map = startEmulators({
    cloud: cloud as unknown as LocalCloud,
    apiUrl: 'http://127.0.0.1:1',
    dns: { apiUrl: 'http://127.0.0.1:1', apiKey: 'unused' },
  });
  return { map, done: () => rm(stateDir, { recursive: true, force: true }) };
}

test('a request carries a bearer token; an Exoscale-signed key counts under /exoscale/ only', () => {
  const req = (authorization: string) => ({ headers: { authorization } }) as IncomingMessage;
  assert.is(requestToken(req('Bearer abc'), '/v1/servers'), 'abc');
  const signed = 'EXO2-HMAC-SHA256 credential=key1,expires=1,signature=x';
  assert.is(requestToken(req(signed), '/exoscale/v2/instance'), 'key1');
  assert.is(requestToken(req(signed), '/digitalocean/v2/droplets'), undefined, 'not a bearer token elsewhere');
  assert.is(requestToken(req('Basic abc'), '/exoscale/v2/instance'), undefined);
});

test("Exoscale's emulation checks the signature with the token as key and secret", async () => {
  const { map, done } = await emulators();
  try {
    const e = map.get('exoscale')!;
    const url = 'http://127.0.0.1:1/exoscale/v2/instance?zone=x';
    const body = '{"name":"n"}';
    const authorization = exoscaleSignature(
      { apiKey: 'tok', apiSecret: 'tok' },
      { method: 'POST', url, body },
      Math.floor(Date.now() / 1000) + 60,
    );
    const req: FakeRequest = {
      ...request('POST', '/instance'),
      query: new URL(url).searchParams,
      headers: { authorization },
      fullPath: '/exoscale/v2/instance',
    };
    assert.is(e.verify!(req, body, 'tok'), null);
    assert.is(e.verify!(req, '{"name":"m"}', 'tok'), 'invalid request signature', 'another body');
    assert.is(e.verify!(req, body, 'other'), 'invalid API key', "another token's key");
    assert.is(e.verify!({ ...req, headers: {} }, body, 'tok'), 'missing or malformed Authorization header');
  } finally {
    await done();
  }
});

test("a scoped token creates its build's servers of its roles only, and changes nothing of the account", async () => {
  const { map, done } = await emulators();
  try {
    const creates: Record<EmulatedProvider, [string, string]> = {
      digitalocean: ['/droplets', 'name'],
      linode: ['/linode/instances', 'label'],
      vultr: ['/instances', 'label'],
      exoscale: ['/instance', 'name'],
    };
    for (const [provider, [path, field]] of Object.entries(creates) as [EmulatedProvider, [string, string]][]) {
      const e = map.get(provider)!;
      assert.is(scopeProblem(scoped, e, request('POST', path, { [field]: web })), null, `${provider}: its webserver`);
      for (const name of [serverName({ role: 'database', buildId: 'b1' }), serverName({ role: 'webserver', buildId: 'b2', slot: 1 })])
        assert.match(scopeProblem(scoped, e, request('POST', path, { [field]: name })) ?? '', /creates webserver servers of build b1 only/);
      assert.is(scopeProblem(scoped, e, request('GET', '/anything')), null, `${provider}: reads`);
      assert.is(scopeProblem(account, e, request('DELETE', `${path}/1`)), null, `${provider}: the account token may`);
    }
    // Instances, firewalls it does not know are not its build's: refused.
    assert.match(
      scopeProblem(scoped, map.get('digitalocean')!, request('DELETE', '/droplets/77')) ?? '',
      /changes webserver servers of build b1 only/,
    );
    assert.match(
      scopeProblem(scoped, map.get('linode')!, request('PUT', '/networking/firewalls/9/rules')) ?? '',
      /firewalls of build b1 only/,
    );
    assert.match(scopeProblem(scoped, map.get('vultr')!, request('POST', '/firewalls/abc/rules')) ?? '', /firewalls of build b1 only/);
    assert.match(
      scopeProblem(scoped, map.get('exoscale')!, request('PUT', '/security-group/abc:attach')) ?? '',
      /firewalls of build b1 only/,
    );
    // Its own build's firewall it may change; another build's not (Linode's, by label).
    const linode = map.get('linode')!;
    const firewall = async (label: string) => {
      const r = await linode.handle(
        request('POST', '/networking/firewalls', {
          label,
          rules: { inbound: [], inbound_policy: 'DROP', outbound: [], outbound_policy: 'ACCEPT' },
        }),
        '',
      );
      assert.is(r.status, 200, JSON.stringify(r.body));
      return (r.body as { id: number }).id;
    };
    const own = await firewall('adt-b1-ws');
    const other = await firewall('adt-b2-ws');
    assert.is(scopeProblem(scoped, linode, request('PUT', `/networking/firewalls/${own}/rules`)), null, "its build's firewall");
    assert.match(scopeProblem(scoped, linode, request('PUT', `/networking/firewalls/${other}/rules`)) ?? '', /firewalls of build b1 only/);
    // Records and keys: an autoscaler's work.
    assert.is(scopeProblem(scoped, map.get('digitalocean')!, request('POST', '/domains/x.test/records')), null);
    assert.is(scopeProblem(scoped, map.get('linode')!, request('DELETE', '/domains/3/records/4')), null);
    assert.is(scopeProblem(scoped, map.get('exoscale')!, request('POST', '/ssh-key')), null);
    // Everything else needs the account token.
    for (const [provider, method, path] of [
      ['digitalocean', 'POST', '/domains'],
      ['digitalocean', 'POST', '/firewalls'],
      ['linode', 'POST', '/images'],
      ['vultr', 'DELETE', '/domains/x.test'],
      ['exoscale', 'POST', '/security-group'],
    ] as [EmulatedProvider, string, string][])
      assert.match(
        scopeProblem(scoped, map.get(provider)!, request(method, path)) ?? '',
        /needs the account token/,
        `${provider} ${method} ${path}`,
      );
  } finally {
    await done();
  }
});

test.run();
