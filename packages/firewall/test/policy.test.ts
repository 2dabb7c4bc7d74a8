import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { throws } from '@adt/test-utils';
import { computePolicies, fingerprint, normaliseSource, type FleetSnapshot } from '../src/index.ts';
import { renderRestore } from '../src/backends/iptables.ts';
import { ufwRuleArgvs } from '../src/backends/ufw.ts';

const fleet: FleetSnapshot = {
  buildMachine: ['198.18.0.1'],
  webservers: ['198.18.1.11', '198.18.1.12'],
  autoscalers: ['198.18.1.21'],
  databases: ['198.18.1.31'],
  auth: [],
  authorisedClients: [
    { ip: '198.18.0.200', expiresAt: '2026-11-25T12:00:00Z' },
    { ip: '198.18.0.201', expiresAt: '2026-11-24T00:00:00Z' },
  ],
};
const now = new Date('2026-11-25T00:00:00Z');
const ports = (p: { rules: { port: unknown; sources: string[] }[] }) =>
  Object.fromEntries(p.rules.map((r) => [JSON.stringify(r.port), r.sources]));

const policy = suite('policy');

policy('SSH only from the build machine and the fleet, on every role', () => {
  const p = computePolicies(fleet, { webMode: 'open', now });
  for (const role of ['webserver', 'database', 'autoscaler', 'auth'] as const) {
    assert.equal(ports(p[role])['22'], ['198.18.0.1/32', '198.18.1.11/32', '198.18.1.12/32', '198.18.1.21/32', '198.18.1.31/32'], role);
  }
});

policy('the database port only from webservers and autoscalers, and only on the database', () => {
  const p = computePolicies(fleet, { webMode: 'open', dbPort: 5432, now });
  assert.equal(ports(p.database)['5432'], ['198.18.1.11/32', '198.18.1.12/32', '198.18.1.21/32']);
  assert.is(ports(p.webserver)['5432'], undefined);
  assert.is(ports(p.autoscaler)['5432'], undefined);
});

policy('web modes: open, Cloudflare only, authorised clients only (expired grants dropped)', () => {
  assert.equal(ports(computePolicies(fleet, { webMode: 'open', now }).webserver)['443'], ['0.0.0.0/0', '::/0']);
  const cf = ports(computePolicies(fleet, { webMode: 'cloudflare', now }).webserver)['443']!;
  assert.ok(cf.includes('173.245.48.0/20') && cf.includes('2606:4700::/32'));
  assert.not.ok(cf.includes('0.0.0.0/0'));
  assert.ok(cf.includes('198.18.1.21/32'), 'autoscalers probe webservers in every mode');
  assert.equal(ports(computePolicies(fleet, { webMode: 'auth', now }).webserver)['443'], [
    '198.18.0.1/32',
    '198.18.0.200/32',
    '198.18.1.21/32',
  ]);
  assert.equal(
    ports(computePolicies(fleet, { webMode: 'auth', now: new Date('2026-11-26T00:00:00Z') }).webserver)['443'],
    ['198.18.0.1/32', '198.18.1.21/32'],
    'no grant left: 443 closed but to the health checks',
  );
  assert.equal(ports(computePolicies(fleet, { webMode: 'auth', now }).auth)['443'], ['0.0.0.0/0', '::/0'], 'the sign-in page is open');
  assert.equal(ports(computePolicies(fleet, { webMode: 'open', http: true, now }).webserver)['80'], ['0.0.0.0/0', '::/0']);
});

policy('declared extra ports land on their role only', () => {
  const p = computePolicies(fleet, {
    webMode: 'open',
    now,
    extraPorts: [
      { role: 'webserver', port: 8443, protocol: 'tcp', source: '0.0.0.0/0' },
      { role: 'database', port: [9100, 9110], protocol: 'udp', source: '198.18.1.0/24' },
    ],
  });
  assert.equal(ports(p.webserver)['8443'], ['0.0.0.0/0']);
  assert.equal(p.database.rules.find((r) => r.protocol === 'udp')?.port, [9100, 9110]);
  assert.is(ports(p.autoscaler)['8443'], undefined);
});

policy('bad input is refused with a clear error naming the field, exit code 2', () => {
  const cases: [() => unknown, RegExp][] = [
    [
      () =>
        computePolicies(fleet, { webMode: 'open', extraPorts: [{ role: 'webserver', port: 70000, protocol: 'tcp', source: '0.0.0.0/0' }] }),
      /extraPorts\[0\]\.port/,
    ],
    [
      () =>
        computePolicies(fleet, {
          webMode: 'open',
          extraPorts: [{ role: 'webserver', port: 'http' as never, protocol: 'tcp', source: '0.0.0.0/0' }],
        }),
      /extraPorts\[0\]\.port/,
    ],
    [
      () =>
        computePolicies(fleet, { webMode: 'open', extraPorts: [{ role: 'database', port: 3306, protocol: 'tcp', source: '0.0.0.0/0' }] }),
      /database port/,
    ],
    [
      () =>
        computePolicies(fleet, { webMode: 'open', extraPorts: [{ role: 'webserver', port: [20, 30], protocol: 'tcp', source: '::/0' }] }),
      /SSH/,
    ],
    [
      () =>
        computePolicies(fleet, {
          webMode: 'open',
          extraPorts: [{ role: 'webserver', port: 8080, protocol: 'tcp', source: 'example.com' }],
        }),
      /extraPorts\[0\]\.source/,
    ],
    [() => computePolicies({ ...fleet, webservers: ['0.0.0.0/0'] }, { webMode: 'open' }), /open SSH and the database to everyone/],
    [() => computePolicies({ ...fleet, databases: ['not-an-ip'] }, { webMode: 'open' }), /databases\[0\]/],
    [
      () =>
        computePolicies({ ...fleet, authorisedClients: [{ ip: '198.18.0.0/24', expiresAt: '2099-01-01T00:00:00Z' }] }, { webMode: 'auth' }),
      /single address/,
    ],
    [() => computePolicies(fleet, { webMode: 'cloudflare', cloudflare: { v4: [], v6: [] } }), /empty Cloudflare list/],
    [() => computePolicies(fleet, { webMode: 'everyone' as never }), /webMode/],
    [() => computePolicies(fleet, { webMode: 'open', sshPort: 0 }), /sshPort/],
  ];
  for (const [fn, re] of cases) {
    throws(fn, { message: re, exitCode: 2 }, String(re));
  }
});

policy('the same fleet gives the same fingerprint, whatever the order; a change gives another', () => {
  const a = computePolicies(fleet, { webMode: 'open', now });
  const b = computePolicies({ ...fleet, webservers: [...fleet.webservers].reverse() }, { webMode: 'open', now });
  assert.is(fingerprint(a.database), fingerprint(b.database));
  const c = computePolicies({ ...fleet, webservers: ['198.18.1.11'] }, { webMode: 'open', now });
  assert.is.not(fingerprint(a.database), fingerprint(c.database));
  assert.is(normaliseSource('2001:DB8::1', 'x'), '2001:db8::1/128');
});

policy.run();

// ---

const builders = suite('backends as data');

builders('iptables-restore input: our chain, default deny, v4 and v6 split, fingerprint first', () => {
  const p = computePolicies(fleet, { webMode: 'open', now }).webserver;
  const v4 = renderRestore(p, 'abc123', 4);
  const lines = v4.split('\n');
  assert.equal(lines.slice(0, 4), [
    '*filter',
    ':ADT-INPUT - [0:0]',
    '-F ADT-INPUT',
    '-A ADT-INPUT -m comment --comment "adt-policy:abc123 role:webserver"',
  ]);
  assert.ok(
    lines.includes(
      '-A ADT-INPUT -s 198.18.0.1/32 -p tcp -m tcp --dport 22 -m comment --comment "ssh from the build machine and the fleet" -j ACCEPT',
    ),
  );
  assert.ok(lines.includes('-A ADT-INPUT -p tcp -m tcp --dport 443 -m comment --comment "https from anywhere" -j ACCEPT'));
  assert.equal(lines.slice(-3), ['-A ADT-INPUT -j DROP', 'COMMIT', '']);
  assert.not.match(v4, /::/);
  const v6 = renderRestore(p, 'abc123', 6);
  assert.match(v6, /-p ipv6-icmp -j ACCEPT/);
  assert.not.match(v6, /198\.18/);
  assert.not.match(v6, /adt-policy/);
});

builders("ufw argv: one allow per (rule, source), in ufw's own syntax", () => {
  const p = computePolicies(fleet, { webMode: 'auth', now }).webserver;
  const argvs = ufwRuleArgvs(p).map((a) => a.join(' '));
  assert.ok(argvs.includes('ufw allow from 198.18.0.1 to any port 22 proto tcp comment ssh from the build machine and the fleet'));
  assert.ok(
    argvs.includes(
      'ufw allow from 198.18.0.200 to any port 443 proto tcp comment ' +
        'https from authorised clients only; https from autoscalers and the build machine (health checks)',
    ),
    argvs.join('\n'),
  );
  const open = ufwRuleArgvs(computePolicies(fleet, { webMode: 'open', now }).webserver).map((a) => a.join(' '));
  assert.is(open.filter((a) => a.startsWith('ufw allow 443/tcp')).length, 1, 'anywhere (v4 and v6) is one ufw rule, in its short form');
});

builders.run();
