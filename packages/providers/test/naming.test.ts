import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { throws } from '@adt/test-utils';
import { serverName, parseServerName, nameMatches } from '../src/index.ts';

const naming = suite('server names');

naming('encode role, build and slot, and parse back exactly', () => {
  const n = serverName({ role: 'webserver', buildId: 'prod1', slot: 2, suffix: 'k3f9' });
  assert.is(n, 'ws-prod1-s2-k3f9');
  assert.equal(parseServerName(n), { role: 'webserver', buildId: 'prod1', slot: 2, suffix: 'k3f9' });
  assert.equal(parseServerName('db-prod1-7x2a'), { role: 'database', buildId: 'prod1', suffix: '7x2a' });
  assert.match(serverName({ role: 'autoscaler', buildId: 'b' }), /^as-b-[a-z0-9]{6}$/);
});

naming('slot 1 is not slot 10, and build ab is not abc (the original matched by substring)', () => {
  assert.ok(nameMatches('ws-prod1-s1-aaaa', { slot: 1 }));
  assert.not.ok(nameMatches('ws-prod1-s10-aaaa', { slot: 1 }));
  assert.not.ok(nameMatches('ws-abc-aaaa', { buildId: 'ab' }));
  assert.ok(nameMatches('ws-ab-aaaa', { buildId: 'ab', role: 'webserver' }));
  assert.not.ok(nameMatches('ws-ab-aaaa', { role: 'database' }));
});

naming('names of anything else parse to null and match nothing', () => {
  for (const n of [
    '',
    'web-1',
    'ws-prod1',
    'ws-Prod1-aaaa',
    'xx-prod1-aaaa',
    'ws-prod1-s0-aaaa',
    'ws-prod1-s100-aaaa',
    'ws-prod-1-aaaa',
    'ws-prod1-aaaa-extra',
  ]) {
    assert.is(parseServerName(n), null, n);
    assert.not.ok(nameMatches(n, {}), n);
  }
});

naming('bad parts are refused with exit code 2', () => {
  for (const parts of [
    { role: 'webserver', buildId: 'prod-1' },
    { role: 'webserver', buildId: '' },
    { role: 'nope', buildId: 'a' },
    { role: 'webserver', buildId: 'a', slot: 0 },
    { role: 'webserver', buildId: 'a', suffix: 'X!' },
  ]) {
    throws(() => serverName(parts as never), { exitCode: 2 }, JSON.stringify(parts));
  }
});

naming.run();
