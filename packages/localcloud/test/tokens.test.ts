/** The API's token store on its own (no root, no network): what concurrent changes leave in its file. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newAccountToken, TokenStore } from '../src/tokens.ts';

const test = suite<{ dir: string }>('local cloud API tokens: the store');

test.before(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-tokens-'));
});
test.after(async (ctx) => {
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
});

test('tokens made at the same moment (a deploy making its autoscalers in parallel) all authenticate', async ({ dir }) => {
  const store = new TokenStore(newAccountToken(), join(dir, 'parallel', 'tokens.json'));
  const made = await Promise.all(
    Array.from({ length: 5 }, (_, i) => store.create({ buildId: 'b1', roles: ['webserver'] }, `autoscaler ${i + 1}`)),
  );
  assert.is(store.list().length, 5, 'every token kept');
  for (const t of made) assert.equal(store.authenticate(t.token), { kind: 'scoped', id: t.id, buildId: 'b1', roles: ['webserver'] });
});

test("a revocation at the same moment as a create of another build's token: each sees the other's change", async ({ dir }) => {
  const store = new TokenStore(newAccountToken(), join(dir, 'revoke', 'tokens.json'));
  const old = await store.create({ buildId: 'b1', roles: ['webserver'] });
  const [revoked, other] = await Promise.all([store.revokeBuild('b1'), store.create({ buildId: 'b2', roles: ['webserver'] })]);
  assert.is(revoked, 1);
  assert.is(store.authenticate(old.token), null, 'the revoked token is refused');
  assert.is(store.authenticate(other.token)?.kind, 'scoped', "the other build's token works");
});

test.run();
