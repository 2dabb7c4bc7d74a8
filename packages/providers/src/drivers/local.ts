/**
 * The `local` cloud: this Linux machine as a small cloud, so a whole fleet runs with no account.
 *
 * - A **server** is a network namespace plus a persistent mount namespace in which /etc, /var,
 *   /home, /root, /opt and /srv are overlays on this machine's (writes land in the server's own
 *   upper directories) and /run and /tmp are private tmpfs. Role scripts run unchanged; /etc/nginx
 *   or /var/lib/mysql belong to that server alone.
 * - **Networks**: a public bridge `<cloudId>-pub` and a private "VPC" bridge `<cloudId>-vpc`, with
 *   addresses from 198.18.0.0/15 only. The root namespace is the build machine (`.1` on both). An
 *   `outsider` namespace on the public bridge (`.254`) plays "the internet". The root namespace does
 *   not route between the bridges, so the outsider never reaches the VPC.
 * - **Native firewall**: enforced outside the servers, in the root namespace's iptables: bridged
 *   frames pass through iptables (br_netfilter), so chain `ADT-<cloudId>-FW` (jumped to from FORWARD
 *   and OUTPUT) filters every packet to a server by its destination address before it reaches the
 *   server; a server's own `iptables -F` changes nothing there. Packets a server sends with an
 *   address that is not its own are dropped (no spoofing past the rules).
 * - **State** lives in `stateDir` (default /var/lib/adt-local/cloud/<cloudId>) so another process
 *   sees the same cloud: list, get and destroy work from a fresh process.
 * - `create` runs the user-data script inside the new server detached, like cloud-init, logging to
 *   the server's /var/log/cloud-init-output.log; readiness is observable through marker files.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errorFactory, execaRunner, processAlive, sleep, type Argv, type Runner, type RunOptions, type RunResult } from '@adt/core';
import { nameMatches, parseServerName } from '../naming.ts';
import { validateRule } from '../rules.ts';
import type {
  ComputeProvider,
  CreateServerOptions,
  InboundRule,
  ListServersFilter,
  NativeFirewallProvider,
  Role,
  Server,
  WaitOptions,
} from '../types.ts';

export const DRIVER_NAME = 'local';
const fail = errorFactory('providers', DRIVER_NAME);

/** The directories a server gets its own copy of (overlays on this machine's). */
export const OVERLAID_DIRS = ['/etc', '/var', '/home', '/root', '/opt', '/srv'] as const;
/** Private, empty at start. */
export const PRIVATE_DIRS = ['/run', '/tmp'] as const;

export interface LocalCloudOptions {
  /** Short name of this cloud, used in link and chain names: 1-5 lowercase letters/digits (default `adt`). */
  cloudId?: string;
  /** Where the cloud keeps its state (default /var/lib/adt-local/cloud/<cloudId>). */
  stateDir?: string;
  /** The public network, a /24 inside 198.18.0.0/15 (default 198.18.0.0/24). */
  publicCidr?: string;
  /** The private (VPC) network, a /24 inside 198.18.0.0/15 (default 198.18.1.0/24). */
  privateCidr?: string;
  /** Resolver written into each server's /etc/resolv.conf (default: the build machine's public address). */
  nameserver?: string;
  /**
   * Paths of this machine hidden from servers (an empty tmpfs over them), because /var and the others
   * are overlays on this machine's: default /var/lib/adt-local (every server's files, the S3 data,
   * the deployment keys) and the cloud's own state dir.
   */
  hiddenPaths?: string[];
  /**
   * Directories of this machine bind-mounted into every server (read-only unless `readOnly: false`),
   * e.g. the toolkit's code at /opt/adt, as a real server would get it from its artifact. Mounted
   * before /tmp and /run become private, so a host path under /tmp works too.
   */
  shares?: { hostPath: string; target: string; readOnly?: boolean }[];
  runner?: Runner;
}

interface ServerRecord extends Server {
  n: number;
  netns: string;
  mntns: string;
  utsns: string;
}

// --- Internal helpers ---

function parse24(cidr: string, field: string): string {
  const m = /^198\.(18|19)\.(\d{1,3})\.0\/24$/.exec(cidr);
  if (!m || Number(m[2]) > 255)
    throw fail('BAD_NETWORK', `${field} "${cidr}": a /24 inside 198.18.0.0/15, e.g. 198.18.0.0/24`, { exitCode: 2 });
  return `198.${m[1]}.${m[2]}`;
}

export class LocalCloud implements ComputeProvider {
  readonly name = DRIVER_NAME;
  readonly flags = { snapshots: false, privateNetworking: true };
  readonly cloudId: string;
  readonly stateDir: string;
  readonly publicPrefix: string;
  readonly privatePrefix: string;
  readonly nameserver: string;
  readonly firewall: NativeFirewallProvider;
  readonly hiddenPaths: string[];
  readonly shares: { hostPath: string; target: string; readOnly: boolean }[];
  readonly #run: Runner;

  constructor(options: LocalCloudOptions = {}) {
    this.cloudId = options.cloudId ?? 'adt';
    if (!/^[a-z][a-z0-9]{0,4}$/.test(this.cloudId))
      throw fail('BAD_CLOUD_ID', `cloudId "${this.cloudId}": 1-5 lowercase letters and digits, starting with a letter`, { exitCode: 2 });
    this.stateDir = options.stateDir ?? `/var/lib/adt-local/cloud/${this.cloudId}`;
    this.publicPrefix = parse24(options.publicCidr ?? '198.18.0.0/24', 'publicCidr');
    this.privatePrefix = parse24(options.privateCidr ?? '198.18.1.0/24', 'privateCidr');
    if (this.publicPrefix === this.privatePrefix) throw fail('BAD_NETWORK', 'publicCidr and privateCidr must differ', { exitCode: 2 });
    this.nameserver = options.nameserver ?? `${this.publicPrefix}.1`;
    this.#run = options.runner ?? execaRunner({ timeoutMs: 30_000 });
    // Under /tmp or /run a path is private to each server already; under an overlaid directory it
    // is hidden; anywhere else servers would see it, so it is refused.
    const wanted = [...new Set([...(options.hiddenPaths ?? ['/var/lib/adt-local']), this.stateDir])];
    this.hiddenPaths = wanted.filter((h) => !/^\/(tmp|run)\//.test(h));
    for (const h of this.hiddenPaths) {
      if (!/^\/(etc|var|home|root|opt|srv)\//.test(h))
        throw fail(
          'BAD_OPTION',
          `"${h}" (stateDir or hiddenPaths) must be under ${OVERLAID_DIRS.join(', ')} (hidden from servers) or /tmp, /run (private to each server)`,
          { exitCode: 2 },
        );
    }
    this.shares = (options.shares ?? []).map((sh, i) => {
      for (const [field, path] of [
        ['hostPath', sh.hostPath],
        ['target', sh.target],
      ] as const) {
        if (!/^\/[A-Za-z0-9._/-]*$/.test(path) || path.includes('..'))
          throw fail('BAD_OPTION', `shares[${i}].${field}: "${path}" must be an absolute path of letters, digits, . _ / -`, {
            exitCode: 2,
          });
      }
      if (!/^\/(opt|srv)\//.test(sh.target))
        throw fail('BAD_OPTION', `shares[${i}].target: "${sh.target}" must be under /opt or /srv (the server's own directories)`, {
          exitCode: 2,
        });
      return { hostPath: sh.hostPath, target: sh.target, readOnly: sh.readOnly ?? true };
    });
    this.firewall = new LocalNativeFirewall(this);
  }

  // Names of things in the root namespace.
  get publicBridge() {
    return `${this.cloudId}-pub`;
  }
  get privateBridge() {
    return `${this.cloudId}-vpc`;
  }
  get chain() {
    return `ADT-${this.cloudId}-FW`;
  }
  get outsiderNetns() {
    return `${this.cloudId}-outsider`;
  }
  get buildMachine() {
    return { publicIp: `${this.publicPrefix}.1`, privateIp: `${this.privatePrefix}.1` };
  }
  get outsiderIp() {
    return `${this.publicPrefix}.254`;
  }
  #nsfsDir() {
    return join(this.stateDir, 'nsfs');
  }
  #serverDir(name: string) {
    return join(this.stateDir, 'servers', name);
  }

  /** Unmounts `path` when mounted; a mount still in use (a process holding it) is detached lazily. */
  async #unmount(path: string): Promise<void> {
    const mounted = () => readFile('/proc/self/mountinfo', 'utf8').then((m) => m.split('\n').some((l) => l.split(' ')[4] === path));
    if (!(await mounted())) return;
    const r = await this.#exec(['umount', path], { nothrow: true });
    if (r.exitCode !== 0 && (await mounted())) await this.#exec(['umount', '--lazy', path], { nothrow: true });
  }

  /** Runs argv, turning a missing tool into a clear error. */
  async #exec(argv: Argv, options: RunOptions = {}): Promise<RunResult> {
    return this.#run.run(argv, options);
  }

  // --- The cloud itself ---

  /** Creates the bridges, the build machine's addresses, the outsider and the firewall chain. Idempotent. */
  async ensureNetwork(): Promise<void> {
    if (process.getuid?.() !== 0)
      throw fail('NOT_ROOT', 'the local cloud needs root (network and mount namespaces): run as root', { exitCode: 2 });
    for (const f of ['/proc/self/ns/net', '/proc/self/ns/mnt'])
      if (!existsSync(f)) throw fail('NO_KERNEL_FEATURE', `${f} is missing: this kernel has no namespaces`);
    if (!(await readFile('/proc/filesystems', 'utf8')).includes('overlay'))
      throw fail('NO_KERNEL_FEATURE', "overlayfs is not available in this kernel (needed for the servers' /etc, /var...)");
    await mkdir(this.#nsfsDir(), { recursive: true, mode: 0o700 });
    await mkdir(join(this.stateDir, 'servers'), { recursive: true, mode: 0o700 });
    await mkdir(join(this.stateDir, 'addresses'), { recursive: true, mode: 0o700 });
    // Persistent mount namespaces are bind mounts of nsfs files, which must sit on a private mount.
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    if (!mounts.split('\n').some((l) => l.split(' ')[4] === this.#nsfsDir())) {
      await this.#exec(['mount', '--bind', this.#nsfsDir(), this.#nsfsDir()]);
      await this.#exec(['mount', '--make-private', this.#nsfsDir()]);
    }
    for (const [bridge, prefix] of [
      [this.publicBridge, this.publicPrefix],
      [this.privateBridge, this.privatePrefix],
    ] as const) {
      if ((await this.#exec(['ip', 'link', 'show', bridge], { nothrow: true })).exitCode !== 0) {
        await this.#exec(['ip', 'link', 'add', bridge, 'type', 'bridge']);
      }
      await this.#exec(['ip', 'addr', 'replace', `${prefix}.1/24`, 'dev', bridge]);
      await this.#exec(['ip', 'link', 'set', bridge, 'up']);
    }
    // Bridged frames go through iptables, where the native firewall is.
    await writeFile('/proc/sys/net/bridge/bridge-nf-call-iptables', '1').catch(() => {
      throw fail('NO_KERNEL_FEATURE', 'br_netfilter is not loaded (net.bridge.bridge-nf-call-iptables): load the br_netfilter module');
    });
    await this.#ensureOutsider();
    await (this.firewall as LocalNativeFirewall).sync();
  }

  async #ensureOutsider(): Promise<void> {
    const ns = this.outsiderNetns;
    if (existsSync(`/run/netns/${ns}`)) return;
    await this.#exec(['ip', 'netns', 'add', ns]);
    const host = `${this.cloudId}o0`;
    await this.#exec(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', `${this.cloudId}o1`]);
    await this.#exec(['ip', 'link', 'set', `${this.cloudId}o1`, 'netns', ns]);
    await this.#exec(['ip', 'link', 'set', host, 'master', this.publicBridge, 'up']);
    const inNs = (...a: string[]) => this.#exec(['ip', '-n', ns, ...a] as unknown as Argv);
    await inNs('link', 'set', `${this.cloudId}o1`, 'name', 'eth0');
    await inNs('addr', 'add', `${this.outsiderIp}/24`, 'dev', 'eth0');
    await inNs('link', 'set', 'eth0', 'up');
    await inNs('link', 'set', 'lo', 'up');
  }

  /** argv that runs `argv` as "the internet" (inside the outsider namespace). */
  outsiderArgv(argv: string[]): Argv {
    return ['ip', 'netns', 'exec', this.outsiderNetns, ...argv] as unknown as Argv;
  }

  /** Destroys every server of this cloud, the outsider, the bridges, the chain and the state. */
  async teardown(): Promise<void> {
    for (const s of await this.list()) await this.destroy(s.id);
    await (this.firewall as LocalNativeFirewall).removeChain();
    if (existsSync(`/run/netns/${this.outsiderNetns}`)) {
      await this.#killNetnsProcesses(this.outsiderNetns);
      await this.#exec(['ip', 'netns', 'del', this.outsiderNetns], { nothrow: true });
    }
    await this.#exec(['ip', 'link', 'del', `${this.cloudId}o0`], { nothrow: true });
    for (const b of [this.publicBridge, this.privateBridge]) await this.#exec(['ip', 'link', 'del', b], { nothrow: true });
    await this.#unmount(this.#nsfsDir());
    await rm(this.stateDir, { recursive: true, force: true });
  }

  // --- Servers ---

  /**
   * Reserves a free host number (2-253), going round from the last one given rather than taking the
   * lowest: an address freed a moment ago is not handed out again at once, since other machines
   * may still hold its old link-layer address in their ARP caches (real clouds rarely reuse an IP
   * at once either). `mkdir` is atomic, so parallel creates never share one.
   */
  async #allocate(): Promise<number> {
    const lastFile = join(this.stateDir, 'addresses', 'last');
    const last = Number(await readFile(lastFile, 'utf8').catch(() => '1')) || 1;
    for (let i = 1; i <= 252; i++) {
      const n = ((last - 2 + i) % 252) + 2;
      try {
        await mkdir(join(this.stateDir, 'addresses', String(n)));
        await writeFile(lastFile, String(n));
        return n;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    throw fail('POOL_EXHAUSTED', `no free address left in ${this.publicPrefix}.0/24 (252 servers): destroy some servers`);
  }

  async create(o: CreateServerOptions): Promise<Server> {
    const parsed = parseServerName(o.name);
    if (!parsed || parsed.role !== o.role || parsed.buildId !== o.buildId) {
      throw fail('BAD_NAME', `server name "${o.name}" must come from serverName({ role: '${o.role}', buildId: '${o.buildId}' })`, {
        exitCode: 2,
      });
    }
    if (!o.userData.startsWith('#!'))
      throw fail('BAD_USER_DATA', `user-data of ${o.name} must be a script starting with "#!"`, { exitCode: 2 });
    if (!existsSync(`/sys/class/net/${this.publicBridge}`)) await this.ensureNetwork();
    const dir = this.#serverDir(o.name);
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST')
        throw fail('NAME_TAKEN', `a server named ${o.name} already exists in the local cloud "${this.cloudId}"`, { exitCode: 2 });
      throw e;
    }
    let n = 0;
    try {
      n = await this.#allocate();
      const record: ServerRecord = {
        id: o.name,
        name: o.name,
        role: o.role,
        buildId: o.buildId,
        state: 'creating',
        publicIp: `${this.publicPrefix}.${n}`,
        privateIp: `${this.privatePrefix}.${n}`,
        tags: ['adt', `role:${o.role}`, `build:${o.buildId}`, ...(o.tags ?? [])],
        createdAt: new Date().toISOString(),
        n,
        netns: `${this.cloudId}-${n}`,
        mntns: join(this.#nsfsDir(), `${o.name}.mnt`),
        utsns: join(this.#nsfsDir(), `${o.name}.uts`),
      };
      await writeJsonAtomic(join(dir, 'server.json'), record);
      await this.#createNetwork(record);
      await this.#createFilesystem(record, o.userData);
      await this.#startUserData(record);
      record.state = 'running';
      await writeJsonAtomic(join(dir, 'server.json'), record);
      return publicView(record);
    } catch (e) {
      // Nothing half-made stays behind.
      await this.destroy(o.name).catch(() => {});
      if (n) await rmdir(join(this.stateDir, 'addresses', String(n))).catch(() => {});
      throw e;
    }
  }

  async #createNetwork(r: ServerRecord): Promise<void> {
    await this.#exec(['ip', 'netns', 'add', r.netns]);
    const inNs = (...a: string[]) => this.#exec(['ip', '-n', r.netns, ...a] as unknown as Argv);
    for (const [tag, bridge, ip, dev] of [
      ['p', this.publicBridge, r.publicIp!, 'eth0'],
      ['v', this.privateBridge, r.privateIp!, 'eth1'],
    ] as const) {
      const host = `${this.cloudId}${tag}${r.n}`;
      const peer = `${this.cloudId}${tag}${r.n}x`;
      await this.#exec(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
      await this.#exec(['ip', 'link', 'set', peer, 'netns', r.netns]);
      await this.#exec(['ip', 'link', 'set', host, 'master', bridge, 'up']);
      await inNs('link', 'set', peer, 'name', dev);
      await inNs('addr', 'add', `${ip}/24`, 'dev', dev);
      await inNs('link', 'set', dev, 'up');
    }
    await inNs('link', 'set', 'lo', 'up');
    await inNs('route', 'add', 'default', 'via', `${this.publicPrefix}.1`, 'dev', 'eth0');
    await (this.firewall as LocalNativeFirewall).sync();
  }

  async #createFilesystem(r: ServerRecord, userData: string): Promise<void> {
    const dir = this.#serverDir(r.name);
    for (const d of OVERLAID_DIRS) {
      await mkdir(join(dir, 'upper', d), { recursive: true });
      await mkdir(join(dir, 'work', d), { recursive: true });
    }
    // Files the server sees from its first moment: identity, resolver, user-data.
    const upper = (p: string) => join(dir, 'upper', p);
    await mkdir(upper('/etc'), { recursive: true });
    await writeFile(upper('/etc/hostname'), `${r.name}\n`);
    await writeFile(upper('/etc/hosts'), `127.0.0.1 localhost\n${r.privateIp} ${r.name}\n`);
    await writeFile(upper('/etc/resolv.conf'), `nameserver ${this.nameserver}\n`);
    await mkdir(upper('/var/lib/cloud/instance'), { recursive: true });
    await mkdir(upper('/var/log'), { recursive: true });
    await writeFile(upper('/var/lib/cloud/instance/user-data'), userData, { mode: 0o700 });
    await writeFile(r.mntns, '');
    await this.#exec(['unshare', `--mount=${r.mntns}`, '--propagation', 'private', 'true']);
    // Its own host name, in its own UTS namespace.
    await writeFile(r.utsns, '');
    await this.#exec(['unshare', `--uts=${r.utsns}`, 'hostname', r.name]);
    const script = [
      // /var last: the upper directories live under /var/lib, and must be resolved before it is overlaid.
      ...[...OVERLAID_DIRS.filter((d) => d !== '/var'), '/var'].map(
        (d) => `mount -t overlay overlay -o lowerdir=${d},upperdir=${join(dir, 'upper', d)},workdir=${join(dir, 'work', d)} ${d}`,
      ),
      // Shared host directories, while /tmp and /run still show this machine's.
      ...this.shares.map(
        (sh) =>
          `mkdir -p ${sh.target} && mount --bind ${sh.hostPath} ${sh.target}${sh.readOnly ? ` && mount -o remount,bind,ro ${sh.target}` : ''}`,
      ),
      ...PRIVATE_DIRS.map((d) => `mount -t tmpfs -o mode=${d === '/tmp' ? '1777' : '0755'} tmpfs ${d}`),
      // Other servers' files, the S3 data and the keys stay out of sight.
      ...this.hiddenPaths.map((h) => `{ [ ! -d ${h} ] || mount -t tmpfs -o mode=0700,size=1m tmpfs ${h}; }`),
      'mkdir -p /run/netns /run/lock',
    ].join(' && ');
    await this.#exec(['nsenter', `--mount=${r.mntns}`, '--', 'sh', '-c', script]);
  }

  /** argv that runs `argv` inside server `r` (both namespaces, with its hostname in the environment). */
  #argvIn(r: ServerRecord, argv: string[]): Argv {
    return [
      'nsenter',
      `--net=/run/netns/${r.netns}`,
      `--mount=${r.mntns}`,
      `--uts=${r.utsns}`,
      '--',
      'env',
      `HOSTNAME=${r.name}`,
      ...argv,
    ] as unknown as Argv;
  }

  async #startUserData(r: ServerRecord): Promise<void> {
    // Like cloud-init: run once, detached from us, output to the server's own log, markers for readiness.
    const boot = [
      'touch /var/lib/cloud/instance/boot-started',
      '/var/lib/cloud/instance/user-data > /var/log/cloud-init-output.log 2>&1',
      'echo $? > /var/lib/cloud/instance/boot-finished',
    ].join('; ');
    const argv = this.#argvIn(r, ['setsid', 'sh', '-c', boot]);
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: 'ignore' });
    child.unref();
  }

  /** Runs a command inside a server (like `ssh server cmd`), with optional stdin. */
  async exec(id: string, argv: string[], options: RunOptions = {}): Promise<RunResult> {
    const r = await this.#record(id);
    if (!r) throw fail('NOT_FOUND', `no server ${id} in the local cloud "${this.cloudId}"`, { exitCode: 2 });
    return this.#exec(this.#argvIn(r, argv), options);
  }

  /** argv for running a command inside a server, e.g. to spawn a long-lived process in tests. */
  async execArgv(id: string, argv: string[]): Promise<Argv> {
    const r = await this.#record(id);
    if (!r) throw fail('NOT_FOUND', `no server ${id} in the local cloud "${this.cloudId}"`, { exitCode: 2 });
    return this.#argvIn(r, argv);
  }

  /** Where the server's user-data output is, seen from the build machine. */
  userDataLog(id: string): string {
    return join(this.#serverDir(id), 'upper/var/log/cloud-init-output.log');
  }

  /** `started` once the user-data runs, `finished` with its exit code when it ended. */
  async bootStatus(id: string): Promise<{ started: boolean; exitCode: number | null }> {
    const base = join(this.#serverDir(id), 'upper/var/lib/cloud/instance');
    const finished = await readFile(join(base, 'boot-finished'), 'utf8').catch(() => null);
    return { started: existsSync(join(base, 'boot-started')), exitCode: finished === null ? null : Number(finished.trim()) };
  }

  async #record(id: string): Promise<ServerRecord | null> {
    try {
      return JSON.parse(await readFile(join(this.#serverDir(id), 'server.json'), 'utf8')) as ServerRecord;
    } catch {
      return null;
    }
  }

  async get(id: string): Promise<Server | null> {
    const r = await this.#record(id);
    if (!r) return null;
    if (r.state === 'running' && !existsSync(`/run/netns/${r.netns}`)) r.state = 'error';
    return publicView(r);
  }

  async list(filter: ListServersFilter = {}): Promise<Server[]> {
    const names = await readdir(join(this.stateDir, 'servers')).catch(() => [] as string[]);
    const out: Server[] = [];
    for (const name of names.sort()) {
      if (!nameMatches(name, filter)) continue;
      const s = await this.get(name);
      if (s) out.push(s);
    }
    return out;
  }

  async waitUntilRunning(id: string, options: WaitOptions = {}): Promise<Server> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    while (Date.now() < deadline) {
      options.signal?.throwIfAborted();
      const s = await this.get(id);
      if (!s) throw fail('NOT_FOUND', `no server ${id} in the local cloud "${this.cloudId}"`);
      if (s.state === 'error') throw fail('SERVER_FAILED', `server ${id} is in error (its namespace is gone)`);
      if (s.state === 'running' && (await this.bootStatus(id)).started) return s;
      await sleep(options.intervalMs ?? 50);
    }
    throw fail(
      'TIMEOUT',
      `server ${id} did not start its user-data within ${(options.timeoutMs ?? 30_000) / 1000} s: see ${this.userDataLog(id)}`,
    );
  }

  async #killNetnsProcesses(netns: string): Promise<void> {
    // Every process whose network namespace is the server's: TERM, then KILL what is left (bounded).
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const pids = (await this.#exec(['ip', 'netns', 'pids', netns], { nothrow: true })).stdout
        .split('\n')
        .map(Number)
        .filter((p) => p > 0);
      if (!pids.length) return;
      for (const pid of pids) {
        try {
          process.kill(pid, signal);
        } catch {}
      }
      for (let i = 0; i < 50 && pids.some(processAlive); i++) await sleep(50);
    }
  }

  async destroy(id: string): Promise<void> {
    const r = await this.#record(id);
    const dir = this.#serverDir(id);
    if (!r) {
      await rm(dir, { recursive: true, force: true });
      return;
    }
    if (existsSync(`/run/netns/${r.netns}`)) {
      await this.#killNetnsProcesses(r.netns);
      await this.#exec(['ip', 'netns', 'del', r.netns], { nothrow: true });
    }
    for (const tag of ['p', 'v']) await this.#exec(['ip', 'link', 'del', `${this.cloudId}${tag}${r.n}`], { nothrow: true });
    for (const ns of [r.mntns, r.utsns]) {
      if (ns && existsSync(ns)) {
        await this.#unmount(ns);
        await rm(ns, { force: true });
      }
    }
    await rm(dir, { recursive: true, force: true });
    await rmdir(join(this.stateDir, 'addresses', String(r.n))).catch(() => {});
    await (this.firewall as LocalNativeFirewall).sync();
  }

  async dispose(): Promise<void> {}
}

/**
 * Writes JSON so that a reader in another process never sees half of it: a temporary file in the
 * same directory, then a rename (atomic on one filesystem). Servers' records are read concurrently
 * by the cloud API, the autoscalers (through it) and the native firewall's render.
 */
async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2), { mode: 0o600 });
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

function publicView(r: ServerRecord): Server {
  const { n: _n, netns: _netns, mntns: _mntns, utsns: _utsns, ...server } = r;
  return server;
}

// --- The native firewall of the local cloud ---

/**
 * Rules per (build, role) are kept in the state dir; `sync` renders chain ADT-<cloudId>-FW for every
 * server and swaps it in with one `iptables-restore --noflush` (atomic). Servers of a role with no
 * rules applied are open, like a cloud server with no firewall attached.
 */
export class LocalNativeFirewall implements NativeFirewallProvider {
  readonly name = DRIVER_NAME;
  readonly #cloud: LocalCloud;
  readonly #run: Runner;

  constructor(cloud: LocalCloud, runner: Runner = execaRunner({ timeoutMs: 30_000 })) {
    this.#cloud = cloud;
    this.#run = runner;
  }

  #file(buildId: string, role: Role) {
    return join(this.#cloud.stateDir, 'firewall', `${buildId}.${role}.json`);
  }

  async apply(buildId: string, role: Role, rules: InboundRule[]): Promise<void> {
    for (const [i, rule] of rules.entries()) validateRule(rule, `rules[${i}]`);
    await mkdir(join(this.#cloud.stateDir, 'firewall'), { recursive: true, mode: 0o700 });
    await writeJsonAtomic(this.#file(buildId, role), rules);
    await this.sync();
  }

  async get(buildId: string, role: Role): Promise<InboundRule[] | null> {
    return readFile(this.#file(buildId, role), 'utf8').then(
      (t) => JSON.parse(t) as InboundRule[],
      () => null,
    );
  }

  async remove(buildId: string, role: Role): Promise<void> {
    await rm(this.#file(buildId, role), { force: true });
    await this.sync();
  }

  /** The iptables-restore input for the current servers and rules, as data. */
  async render(): Promise<string> {
    const c = this.#cloud;
    const lines = ['*filter', `:${c.chain} - [0:0]`, `-F ${c.chain}`];
    // The root namespace does not route between the public and the private network.
    lines.push(
      `-A ${c.chain} -i ${c.publicBridge} -o ${c.privateBridge} -j DROP`,
      `-A ${c.chain} -i ${c.privateBridge} -o ${c.publicBridge} -j DROP`,
    );
    lines.push(`-A ${c.chain} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN`);
    for (const s of await c.list()) {
      // A server being destroyed at the same time may already be gone: it simply has no rules.
      const record = await readFile(join(c.stateDir, 'servers', s.id, 'server.json'), 'utf8')
        .then((t) => JSON.parse(t) as { n: number })
        .catch(() => null);
      if (!record) continue;
      const ips = [s.publicIp, s.privateIp].filter((x): x is string => Boolean(x));
      // Anti-spoofing: what leaves a server's ports carries that server's addresses.
      for (const [tag, ip] of [
        ['p', s.publicIp],
        ['v', s.privateIp],
      ] as const) {
        if (ip) lines.push(`-A ${c.chain} -m physdev --physdev-in ${c.cloudId}${tag}${record.n} ! -s ${ip} -j DROP`);
      }
      const rules = await this.get(s.buildId, s.role);
      if (rules === null) continue;
      for (const ip of ips) {
        for (const rule of rules) {
          for (const src of rule.protocol === 'icmp' ? (rule.sources.length ? rule.sources : ['0.0.0.0/0']) : rule.sources) {
            if (src.includes(':')) continue; // IPv4 only in the local cloud
            const port =
              rule.port === undefined ? [] : ['--dport', Array.isArray(rule.port) ? `${rule.port[0]}:${rule.port[1]}` : String(rule.port)];
            lines.push([`-A ${c.chain}`, '-d', ip, '-s', src, '-p', rule.protocol, ...port, '-j ACCEPT'].join(' '));
          }
        }
        lines.push(`-A ${c.chain} -d ${ip} -j DROP`);
      }
    }
    lines.push('COMMIT', '');
    return lines.join('\n');
  }

  /**
   * Applies the rendered chain atomically and makes sure FORWARD and OUTPUT jump to it. Syncs in this
   * process run one at a time; against other processes (the cloud API, a destroy) each sync renders
   * again after applying and applies again if the fleet changed meanwhile, so the last one to apply
   * always leaves the current picture (bounded: 5 rounds).
   */
  sync(): Promise<void> {
    const next = this.#queue.then(() => this.#sync());
    this.#queue = next.catch(() => {});
    return next;
  }

  #queue: Promise<void> = Promise.resolve();

  async #sync(): Promise<void> {
    const c = this.#cloud;
    let rendered = await this.render();
    for (let round = 0; round < 5; round++) {
      await this.#run.run(['iptables-restore', '--noflush', '--wait'], { input: rendered });
      const now = await this.render();
      if (now === rendered) break;
      rendered = now;
    }
    for (const [hook, match] of [
      ['FORWARD', []],
      ['OUTPUT', ['-o', c.publicBridge]],
      ['OUTPUT', ['-o', c.privateBridge]],
    ] as const) {
      const rule = [hook, ...match, '-j', c.chain];
      if ((await this.#run.run(['iptables', '--wait', '-C', ...rule] as unknown as Argv, { nothrow: true })).exitCode !== 0) {
        await this.#run.run(['iptables', '--wait', '-I', ...rule] as unknown as Argv);
      }
    }
  }

  async removeChain(): Promise<void> {
    const c = this.#cloud;
    for (const [hook, match] of [
      ['FORWARD', []],
      ['OUTPUT', ['-o', c.publicBridge]],
      ['OUTPUT', ['-o', c.privateBridge]],
    ] as const) {
      // Bounded: a rule inserted twice by accident is removed too.
      for (let i = 0; i < 10; i++) {
        if (
          (await this.#run.run(['iptables', '--wait', '-D', hook, ...match, '-j', c.chain] as unknown as Argv, { nothrow: true }))
            .exitCode !== 0
        )
          break;
      }
    }
    await this.#run.run(['iptables', '--wait', '-F', c.chain], { nothrow: true });
    await this.#run.run(['iptables', '--wait', '-X', c.chain], { nothrow: true });
  }
}

/** Registry entry point (convention: a default-exported factory). */
export default function localDriver(options: LocalCloudOptions = {}): LocalCloud {
  return new LocalCloud(options);
}
