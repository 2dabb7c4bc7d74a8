/**
 * A server's user-data: a `#!/bin/sh` script (a cloud-init user-data script on the real clouds;
 * the local cloud runs it the same way), a few hundred bytes, that needs only what a stock Debian
 * image has (sh, curl, sha256sum, tar, gzip). It downloads the Node runtime (unless the image
 * already has that one) and the role bundle through links that expire, checks both against the
 * SHA-256 it carries, unpacks them into /opt/adt, writes the envelope's link and key to a 0600
 * file for the bootstrap, and runs the role's bootstrap (or, for an image builder, its
 * `--prepare-image`). It holds no long-lived secret (see envelope.ts).
 */
import type { Role } from '@adt/providers';

/** Where the toolkit is on every server. */
export const CODE_DIR = '/opt/adt';
/** Where the user-data leaves the envelope's link and key for the bootstrap (0600, deleted once read). */
export const ENVELOPE_FILE = '/var/lib/adt/boot/envelope.json';

export interface UserDataOptions {
  role: Role;
  server: string;
  buildId: string;
  runtime: { url: string; sha256: string; dir: string };
  bundle: { url: string; sha256: string };
  /** The envelope's link (GET), its delete link and key; null for an image builder, which gets no secret. */
  envelope: { url: string; deleteUrl: string; key: string } | null;
  /** When the links expire (ISO 8601), for the script's comment. */
  expiresAt: string;
  /**
   * bootstrap: configure the role; prepare-image: install its packages, clean up and power off;
   * unpack: only fetch, check and unpack the bundle and Node (a server with the toolkit on it and
   * nothing run: tests of the roles' commands, debugging).
   */
  mode: 'bootstrap' | 'prepare-image' | 'unpack';
}

// A presigned URL is letters, digits and URL punctuation; nothing a shell would interpret inside single quotes.
const URL_SAFE = /^https?:\/\/[A-Za-z0-9._~:/?#[\]@!$&()*+,;=%-]+$/;
const SHA = /^[0-9a-f]{64}$/;

function quoted(url: string, field: string): string {
  if (!URL_SAFE.test(url) || url.includes("'")) throw new Error(`${field}: an http(s) URL without quotes or spaces`);
  return `'${url}'`;
}

export function userDataScript(o: UserDataOptions): string {
  for (const [field, v] of [
    ['runtime.sha256', o.runtime.sha256],
    ['bundle.sha256', o.bundle.sha256],
  ] as const) {
    if (!SHA.test(v)) throw new Error(`${field}: 64 hex digits`);
  }
  if (!/^node-v\d+\.\d+\.\d+-linux-x64$/.test(o.runtime.dir)) throw new Error('runtime.dir: node-vX.Y.Z-linux-x64');
  if (!/^[a-z0-9-]{1,64}$/.test(o.server) || !/^[a-z0-9]{1,24}$/.test(o.buildId)) throw new Error('server and buildId: names of ours');
  if (o.envelope && !SHA.test(o.envelope.key)) throw new Error('envelope.key: 64 hex digits');
  if ((o.mode === 'bootstrap') !== Boolean(o.envelope)) throw new Error('a bootstrap gets an envelope; nothing else does');
  const runtimeDir = `${CODE_DIR}/runtime/${o.runtime.sha256.slice(0, 16)}`;
  const lines = [
    '#!/bin/sh',
    `# First boot of ${o.server}, a ${o.role} of build ${o.buildId} (Agile Deployment Toolkit).`,
    o.envelope
      ? `# No secret in here: the links expire at ${o.expiresAt}, and the server deletes its envelope once it read it.`
      : o.mode === 'prepare-image'
        ? "# An image builder: no secret at all. It installs the role's packages, cleans up and powers off."
        : '# Unpack only: no secret at all. It fetches, checks and unpacks the toolkit, and runs nothing.',
    'set -eu',
    'umask 022',
    'log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) [boot] $*"; }',
    'get() { curl -fsS --retry 8 --retry-delay 2 --retry-connrefused --connect-timeout 10 --max-time 900 -o "$2" "$1"; }',
    'B=/var/lib/adt/boot',
    `mkdir -p "$B" ${CODE_DIR}/runtime`,
    'log "user-data started"',
    `if [ ! -x ${runtimeDir}/${o.runtime.dir}/bin/node ]; then`,
    `  get ${quoted(o.runtime.url, 'runtime.url')} "$B/runtime.tar.gz"`,
    `  echo '${o.runtime.sha256}  '"$B/runtime.tar.gz" | sha256sum -c --quiet -`,
    `  mkdir -p ${runtimeDir} && tar -xzf "$B/runtime.tar.gz" -C ${runtimeDir} --no-same-owner && rm -f "$B/runtime.tar.gz"`,
    `  log "Node ${o.runtime.dir.replace(/^node-|-linux-x64$/g, '')} installed"`,
    'fi',
    `ln -sfn ${runtimeDir}/${o.runtime.dir} ${CODE_DIR}/runtime/current`,
    `get ${quoted(o.bundle.url, 'bundle.url')} "$B/bundle.tar.gz"`,
    `echo '${o.bundle.sha256}  '"$B/bundle.tar.gz" | sha256sum -c --quiet -`,
    `tar -xzf "$B/bundle.tar.gz" -C ${CODE_DIR} --no-same-owner && rm -f "$B/bundle.tar.gz"`,
    `echo '${o.bundle.sha256}' > ${CODE_DIR}/BUNDLE.sha256`,
    `log "role bundle ${o.bundle.sha256.slice(0, 12)} checked and unpacked"`,
  ];
  if (o.envelope) {
    const [url, deleteUrl] = [quoted(o.envelope.url, 'envelope.url'), quoted(o.envelope.deleteUrl, 'envelope.deleteUrl')];
    lines.push(
      '( umask 077',
      `  printf '{"url":"%s","deleteUrl":"%s","key":"%s"}\\n' ${url} ${deleteUrl} '${o.envelope.key}' > ${ENVELOPE_FILE} )`,
      `exec ${CODE_DIR}/roles/${o.role}/bootstrap`,
    );
  } else if (o.mode === 'prepare-image') {
    lines.push(`exec ${CODE_DIR}/roles/${o.role}/bootstrap --prepare-image`);
  } else {
    lines.push('log "unpacked; nothing run (unpack only)"');
  }
  return `${lines.join('\n')}\n`;
}
