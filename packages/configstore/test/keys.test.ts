import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { throws } from '@adt/test-utils';
import { keys, isSecretKey } from '../src/index.ts';

const families = suite('typed keys');

families('IP families build and parse exactly, with no prefix collisions', () => {
  assert.is(keys.webserverIps.key('198.18.1.5').path, 'webserverips/198.18.1.5');
  assert.is(keys.webserverIps.parse('webserverips/198.18.1.5'), '198.18.1.5');
  assert.is(keys.webserverIps.parse('webserverips/198.18.1.5x'), null);
  assert.is(keys.webserverIps.parse('webserverpublicips/198.18.1.5'), null);
  assert.is(keys.webserverIps.parse('webserverips/'), null);
  assert.is(keys.authorisedIps.key('2001:db8::1').path, 'authorised-ips/2001:db8::1');
});

families('IP families refuse what is not an IP address', () => {
  for (const bad of ['', 'abc', '198.18.1', '198.18.1.256', '198.18.1.5/24', '../x']) {
    throws(() => keys.webserverIps.key(bad), { code: 'INVALID_KEY', exitCode: 2 }, bad);
  }
});

families('desired counts are per autoscaler number, parsed exactly (1 is not 10)', () => {
  assert.is(keys.desiredWebservers(1).path, 'scaling/1/desired');
  assert.is(keys.parseDesiredWebservers('scaling/10/desired'), 10);
  assert.is(keys.parseDesiredWebservers('scaling/1/desired'), 1);
  assert.is(keys.parseDesiredWebservers('scaling/01/desired'), null);
  assert.is(keys.parseDesiredWebservers('scaling/1/desiredx'), null);
  for (const bad of [0, -1, 1.5, 100, Number.NaN]) assert.throws(() => keys.desiredWebservers(bad));
});

families('names of leases and markers are restricted to safe characters', () => {
  assert.is(keys.leases.key('autoscaler-1').path, 'leases/autoscaler-1');
  assert.is(keys.leases.parse('leases/autoscaler-1'), 'autoscaler-1');
  assert.is(keys.leases.parse('leases/a/b'), null);
  for (const bad of ['', '../x', 'a/b', '.hidden', 'x'.repeat(129)]) assert.throws(() => keys.leases.key(bad), undefined, bad);
});

families('credentials and secrets are the secret keys', () => {
  assert.ok(isSecretKey(keys.dbCredentials.path));
  assert.ok(isSecretKey('secrets/smtp'));
  assert.not.ok(isSecretKey('webserverips/198.18.1.5'));
  assert.not.ok(isSecretKey('credentialsx/a'));
});

families.run();
