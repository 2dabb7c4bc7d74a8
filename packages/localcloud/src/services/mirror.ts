/**
 * The local cloud's package mirror: Debian's apt-cacher-ng, a caching proxy of Debian's archive,
 * on the cloud's private network. Servers' apt goes through it (the cloud writes the proxy into
 * every server's apt configuration, as clouds point their images at their own mirrors), and so
 * does the build of the stock image, so each package is downloaded from Debian once per cloud.
 * Servers never reach the internet themselves: the mirror, on the build machine, does.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { errorFactory, startDaemon, stopDaemon } from '@adt/core';

const fail = errorFactory('localcloud', 'mirror');
const ACNG = '/usr/sbin/apt-cacher-ng';
/** The highest port apt-cacher-ng can listen on. */
export const MAX_PORT = 32767;

export interface MirrorOptions {
  /** Config, cache, logs and pid file (created 0700). */
  dataDir: string;
  address: string;
  port: number;
}

export interface Mirror {
  /** The proxy URL apt is given: http://<address>:<port> */
  proxy: string;
  pid: number;
}

function tcpAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 1000 }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
    s.on('timeout', () => (s.destroy(), resolve(false)));
  });
}

const identify = (dataDir: string) => (cmdline: string) => cmdline.includes('apt-cacher-ng') && cmdline.includes(dataDir);

/** Starts the mirror, or returns the one already running from `dataDir`. */
export async function startMirror(o: MirrorOptions): Promise<Mirror> {
  if (!existsSync(ACNG))
    throw fail('NOT_INSTALLED', `${ACNG} is missing: install the Debian package apt-cacher-ng (scripts/setup.sh does)`, { exitCode: 2 });
  // apt-cacher-ng 3.7 keeps its port in a signed 16-bit number: above 32767 it fails at start ("Error resolving address for binding").
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > MAX_PORT) {
    throw fail('BAD_PORT', `port ${o.port}: apt-cacher-ng listens on ports 1-${MAX_PORT} only (set LOCAL_MIRROR_PORT to one)`, {
      exitCode: 2,
    });
  }
  for (const d of ['conf', 'cache', 'log']) await mkdir(join(o.dataDir, d), { recursive: true, mode: 0o700 });
  // Our own configuration only: Debian's (/etc/apt-cacher-ng) remaps the archive to mirrors this machine may not reach.
  const conf = [
    '# Written by the Agile Deployment Toolkit: the local cloud package mirror (a caching proxy of deb.debian.org).',
    `CacheDir: ${join(o.dataDir, 'cache')}`,
    `LogDir: ${join(o.dataDir, 'log')}`,
    `Port: ${o.port}`,
    `BindAddress: ${o.address}`,
    // Its own control socket: the default (/run/apt-cacher-ng/socket) is shared by every mirror of the machine.
    `SocketPath: ${join(o.dataDir, 'socket')}`,
    'ExThreshold: 4',
    'ForeGround: 1',
    '',
  ].join('\n');
  await writeFile(join(o.dataDir, 'conf', 'acng.conf'), conf, { mode: 0o600 });
  const d = await startDaemon({
    name: 'mirror',
    dir: o.dataDir,
    argv: [ACNG, '-c', join(o.dataDir, 'conf'), `PidFile=${join(o.dataDir, 'acng.pid')}`],
    up: () => tcpAnswers(o.address, o.port),
    identify: identify(o.dataDir),
    conflictHint: `port ${o.port} on ${o.address} is taken: set LOCAL_MIRROR_PORT to a free port`,
  });
  return { proxy: `http://${o.address}:${o.port}`, pid: d.pid };
}

export function stopMirror(dataDir: string): Promise<boolean> {
  return stopDaemon(dataDir, 'mirror', { identify: identify(dataDir) });
}
