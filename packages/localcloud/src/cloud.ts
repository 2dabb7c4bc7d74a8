/**
 * The `local` cloud: this Linux machine as a small cloud, so a whole fleet runs with no account.
 *
 * - A **server** is a host of its own: its own user, network, mount, PID, UTS and IPC namespaces, a root
 *   file system that is an overlay of its image (`images.ts`) under its own upper directory, and
 *   its own init (tini + the local init: sshd, cron, the user-data once; `guest.ts`). Nothing of
 *   the build machine is in its view: not its files, not its processes. It gets what a cloud VM
 *   gets: its user-data, its SSH keys, the network (a resolver and a package mirror on it).
 * - **Networks**: a public bridge `<cloudId>-pub` and a private "VPC" bridge `<cloudId>-vpc`, with
 *   addresses from 198.18.0.0/15 only. The root namespace is the build machine (`.1` on both). An
 *   `outsider` namespace on the public bridge (`.254`) plays "the internet". The root namespace does
 *   not route between the bridges, so the outsider never reaches the VPC.
 * - **Native firewall** (`firewall.ts`): enforced outside the servers, in the root namespace.
 * - **State** lives in `stateDir` so another process sees the same cloud: list, get and destroy
 *   work from a fresh process. Servers keep running when the process that created them exits.
 * - `create` returns at once, as a cloud's API does: the server is `creating` until its image is
 *   there and its init runs (`running`); `poweroff` inside it makes it `stopped`.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, readlink, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  commandLineOf,
  errorFactory,
  execaRunner,
  pollUntil,
  processAlive,
  sleep,
  tailFile,
  type Argv,
  type Runner,
  type RunOptions,
  type RunResult,
} from '@adt/core';
import {
  nameMatches,
  parseServerName,
  serverName,
  type ComputeProvider,
  type CreateServerOptions,
  type ListServersFilter,
  type Server,
  type WaitOptions,
} from '@adt/providers';
import { writeJsonAtomic } from './_files.ts';
import { LocalNativeFirewall } from './firewall.ts';
import { BOOT_STARTED, DROPPED_CAPABILITIES, guestFiles, launcherScript, USER_DATA_EXIT, USER_DATA_LOG } from './guest.ts';
import { ImageStore, STOCK_IMAGE, type ImageRecord } from './images.ts';

export const DRIVER_NAME = 'local';
const fail = errorFactory('localcloud', DRIVER_NAME);

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
  /** The package mirror servers' apt uses, as an HTTP proxy URL (default: none). */
  aptProxy?: string | null;
  /** Where images are kept (default /var/cache/adt-local/images, shared by the machine's clouds). */
  imageDir?: string;
  runner?: Runner;
}

interface ServerRecord extends Server {
  n: number;
  netns: string;
  image: string;
  /** PID (on this machine) of the server's `unshare` process: alive while the server runs. */
  pid: number | null;
  /** PID (on this machine) of the server's PID 1. */
  initPid: number | null;
  /** Why the cloud could not start it (state `error`). */
  error?: string;
}

/** A server as the local cloud reports it: what every cloud reports, plus its image. */
export interface LocalServer extends Server {
  image: string;
}

// --- Internal helpers ---

function parse24(cidr: string, field: string): string {
  const m = /^198\.(18|19)\.(\d{1,3})\.0\/24$/.exec(cidr);
  if (!m || Number(m[2]) > 255)
    throw fail('BAD_NETWORK', `${field} "${cidr}": a /24 inside 198.18.0.0/15, e.g. 198.18.0.0/24`, { exitCode: 2 });
  return `198.${m[1]}.${m[2]}`;
}

/** The parent PID of a process, from /proc/<pid>/stat (null when it is gone). */
function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** Where the servers' user namespaces are kept (bind mounts of their nsfs files), by network namespace name. */
const USERNS_DIR = '/run/adt-local/userns';
const usernsFile = (netns: string) => `${USERNS_DIR}/${netns}`;

async function childOf(pid: number): Promise<number | null> {
  const all = await readdir('/proc').catch(() => [] as string[]);
  for (const p of all) if (/^\d+$/.test(p) && parentOf(Number(p)) === pid) return Number(p);
  return null;
}

export class LocalCloud implements ComputeProvider {
  readonly name = DRIVER_NAME;
  readonly flags = { snapshots: true, privateNetworking: true, images: true, console: true };
  readonly cloudId: string;
  readonly stateDir: string;
  readonly publicPrefix: string;
  readonly privatePrefix: string;
  readonly nameserver: string;
  readonly aptProxy: string | null;
  readonly firewall: LocalNativeFirewall;
  readonly images: ImageStore;
  readonly #run: Runner;
  /** Launches in progress in this process, by server id. */
  readonly #launching = new Map<string, Promise<void>>();

  constructor(options: LocalCloudOptions = {}) {
    this.cloudId = options.cloudId ?? 'adt';
    if (!/^[a-z][a-z0-9]{0,4}$/.test(this.cloudId)) {
      throw fail('BAD_CLOUD_ID', `cloudId "${this.cloudId}": 1-5 lowercase letters and digits, starting with a letter`, { exitCode: 2 });
    }
    this.stateDir = options.stateDir ?? `/var/lib/adt-local/cloud/${this.cloudId}`;
    this.publicPrefix = parse24(options.publicCidr ?? '198.18.0.0/24', 'publicCidr');
    this.privatePrefix = parse24(options.privateCidr ?? '198.18.1.0/24', 'privateCidr');
    if (this.publicPrefix === this.privatePrefix) throw fail('BAD_NETWORK', 'publicCidr and privateCidr must differ', { exitCode: 2 });
    this.nameserver = options.nameserver ?? `${this.publicPrefix}.1`;
    this.aptProxy = options.aptProxy ?? null;
    this.#run = options.runner ?? execaRunner({ timeoutMs: 30_000 });
    this.firewall = new LocalNativeFirewall(this);
    this.images = new ImageStore({ dir: options.imageDir });
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
  get publicCidr() {
    return `${this.publicPrefix}.0/24`;
  }
  get privateCidr() {
    return `${this.privatePrefix}.0/24`;
  }
  #serverDir(name: string) {
    return join(this.stateDir, 'servers', name);
  }

  #exec(argv: Argv, options: RunOptions = {}): Promise<RunResult> {
    return this.#run.run(argv, options);
  }

  // --- The cloud itself ---

  /** Creates the bridges, the build machine's addresses, the outsider and the firewall chain. Idempotent. */
  async ensureNetwork(): Promise<void> {
    if (process.getuid?.() !== 0) {
      throw fail('NOT_ROOT', 'the local cloud needs root (network and mount namespaces): run as root', { exitCode: 2 });
    }
    for (const f of ['/proc/self/ns/net', '/proc/self/ns/mnt', '/proc/self/ns/pid']) {
      if (!existsSync(f)) throw fail('NO_KERNEL_FEATURE', `${f} is missing: this kernel has no namespaces`);
    }
    if (!(await readFile('/proc/filesystems', 'utf8')).includes('overlay')) {
      throw fail('NO_KERNEL_FEATURE', "overlayfs is not available in this kernel (needed for the servers' root file systems)");
    }
    await mkdir(join(this.stateDir, 'servers'), { recursive: true, mode: 0o700 });
    await mkdir(join(this.stateDir, 'addresses'), { recursive: true, mode: 0o700 });
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
    await this.firewall.sync();
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

  /** Destroys every server of this cloud, the outsider, the bridges, the chain and the state (not the images). */
  async teardown(): Promise<void> {
    for (const s of await this.list()) await this.destroy(s.id);
    await this.firewall.removeChain();
    if (existsSync(`/run/netns/${this.outsiderNetns}`)) {
      await this.#killNetnsProcesses(this.outsiderNetns);
      await this.#exec(['ip', 'netns', 'del', this.outsiderNetns], { nothrow: true });
    }
    await this.#exec(['ip', 'link', 'del', `${this.cloudId}o0`], { nothrow: true });
    for (const b of [this.publicBridge, this.privateBridge]) await this.#exec(['ip', 'link', 'del', b], { nothrow: true });
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

  /**
   * Creates a server and returns at once (state `creating`), with its addresses; it boots in the
   * background (building the stock image first when the machine has none) and is `running` once
   * its init runs. `image`: an image id or name (default `debian-12`). `sshKeys`: public keys for
   * root. The user-data runs once, as cloud-init runs a user-data script.
   */
  async create(o: CreateServerOptions & { sshKeys?: string[] }): Promise<LocalServer> {
    const parsed = parseServerName(o.name);
    if (!parsed || parsed.role !== o.role || parsed.buildId !== o.buildId) {
      throw fail('BAD_NAME', `server name "${o.name}" must come from serverName({ role: '${o.role}', buildId: '${o.buildId}' })`, {
        exitCode: 2,
      });
    }
    if (!o.userData.startsWith('#!'))
      throw fail('BAD_USER_DATA', `user-data of ${o.name} must be a script starting with "#!"`, { exitCode: 2 });
    if (Buffer.byteLength(o.userData) > 64 * 1024) {
      throw fail('BAD_USER_DATA', `user-data of ${o.name} is ${Buffer.byteLength(o.userData)} bytes: at most 64 KiB`, { exitCode: 2 });
    }
    for (const [i, k] of (o.sshKeys ?? []).entries()) {
      if (!/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256) [A-Za-z0-9+/=]+( [^\n]*)?$/.test(k)) {
        throw fail('BAD_SSH_KEY', `sshKeys[${i}]: an OpenSSH public key on one line (ssh-ed25519 AAAA... comment)`, { exitCode: 2 });
      }
    }
    const imageRef = o.image ?? STOCK_IMAGE;
    const known = await this.images.get(imageRef);
    if (!known && !this.images.isStock(imageRef)) {
      throw fail(
        'NO_SUCH_IMAGE',
        `image "${imageRef}" is not in this cloud's images (${this.images.dir}): list them, or use ${STOCK_IMAGE}`,
        {
          exitCode: 2,
        },
      );
    }
    if (!existsSync(`/sys/class/net/${this.publicBridge}`)) await this.ensureNetwork();
    const dir = this.#serverDir(o.name);
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw fail('NAME_TAKEN', `a server named ${o.name} already exists in the local cloud "${this.cloudId}"`, { exitCode: 2 });
      }
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
        // Always an image's id: the stock one's is known before it is built (its recipe's hash).
        image: known?.id ?? (this.images.isStock(imageRef) ? this.images.stockId : imageRef),
        pid: null,
        initPid: null,
      };
      await writeJsonAtomic(join(dir, 'server.json'), record);
      await this.#createNetwork(record);
      await this.#writeGuest(record, o.userData, o.sshKeys ?? []);
      const launch = this.#boot(record).finally(() => this.#launching.delete(record.id));
      this.#launching.set(record.id, launch);
      // The caller learns of a failed boot through the server's state, as on a cloud.
      launch.catch(() => {});
      return publicView(record);
    } catch (e) {
      // Nothing half-made stays behind.
      await this.destroy(o.name).catch(() => {});
      if (n) await rmdir(join(this.stateDir, 'addresses', String(n))).catch(() => {});
      throw e;
    }
  }

  /**
   * The server's user namespace (every uid and gid mapped to itself) and the network namespace it
   * owns, kept by bind mounts: a short-lived process makes both, this machine writes its id maps,
   * and `ip netns attach` names its network namespace as `ip netns add` would.
   */
  async #createNamespaces(netns: string): Promise<void> {
    await mkdir(USERNS_DIR, { recursive: true, mode: 0o700 });
    const file = usernsFile(netns);
    await writeFile(file, '', { mode: 0o600 });
    const holder = spawn('unshare', ['--user', '--net', '--', 'sleep', '60'], { stdio: 'ignore' });
    try {
      const pid = holder.pid!;
      const ours = await readlink('/proc/self/ns/user');
      await pollUntil(async () => ((await readlink(`/proc/${pid}/ns/user`).catch(() => ours)) !== ours ? true : null), {
        what: 'the new user namespace',
        timeoutMs: 10_000,
        intervalMs: 10,
      });
      await writeFile(`/proc/${pid}/uid_map`, '0 0 4294967295\n');
      await writeFile(`/proc/${pid}/gid_map`, '0 0 4294967295\n');
      await this.#exec(['mount', '--bind', `/proc/${pid}/ns/user`, file]);
      await this.#exec(['ip', 'netns', 'attach', netns, String(pid)]);
    } finally {
      holder.kill('SIGKILL');
    }
  }

  /** Drops the server's namespaces (what is left of them once its processes are gone). */
  async #removeNamespaces(netns: string): Promise<void> {
    if (existsSync(`/run/netns/${netns}`)) {
      await this.#killNetnsProcesses(netns);
      await this.#exec(['ip', 'netns', 'del', netns], { nothrow: true });
    }
    const file = usernsFile(netns);
    if (existsSync(file)) {
      await this.#exec(['umount', file], { nothrow: true });
      await rm(file, { force: true });
    }
  }

  async #createNetwork(r: ServerRecord): Promise<void> {
    await this.#createNamespaces(r.netns);
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
    await this.firewall.sync();
  }

  /** The files a cloud's platform puts on a new VM, written into the server's upper directory. */
  async #writeGuest(r: ServerRecord, userData: string, sshKeys: string[]): Promise<void> {
    const upper = join(this.#serverDir(r.name), 'upper');
    await mkdir(join(this.#serverDir(r.name), 'work'), { recursive: true });
    await mkdir(join(this.#serverDir(r.name), 'root'), { recursive: true });
    await mkdir(upper, { recursive: true, mode: 0o755 });
    const files = guestFiles({
      name: r.name,
      instanceId: `i-${randomBytes(8).toString('hex')}`,
      publicIp: r.publicIp!,
      privateIp: r.privateIp!,
      nameserver: this.nameserver,
      aptProxy: this.aptProxy,
      sshKeys,
      userData,
      machineId: randomBytes(16).toString('hex'),
    });
    for (const f of files) {
      const target = join(upper, f.path);
      // Directories keep the modes they have in every Debian image (/root is private).
      for (let d = dirname(f.path); d !== '/'; d = dirname(d)) {
        const hostDir = join(upper, d);
        if (!existsSync(hostDir)) {
          await mkdir(hostDir, { recursive: true });
          await chmod(hostDir, d === '/root' || d === '/root/.ssh' ? 0o700 : 0o755);
        }
      }
      await writeFile(target, f.content, { mode: f.mode });
      await chmod(target, f.mode);
    }
  }

  /** Waits for the image (building the stock one when needed), then starts the server. */
  async #boot(r: ServerRecord): Promise<void> {
    const dir = this.#serverDir(r.name);
    try {
      let image: ImageRecord | null = await this.images.get(r.image);
      if (!image && this.images.isStock(r.image)) image = await this.images.ensureStock(this.aptProxy);
      if (!image) throw new Error(`image ${r.image} is gone`);
      const lower = await this.images.layers(image.id);
      const current = await this.#record(r.id);
      if (!current || current.state !== 'creating') return; // destroyed meanwhile
      const script = launcherScript(
        { lower, upper: join(dir, 'upper'), work: join(dir, 'work'), root: join(dir, 'root'), userns: usernsFile(r.netns) },
        r.name,
      );
      const consoleFd = openSync(join(dir, 'console.log'), 'a', 0o600);
      const child = spawn(
        'nsenter',
        [
          `--net=/run/netns/${r.netns}`,
          '--',
          'unshare',
          '--mount',
          '--uts',
          '--ipc',
          '--pid',
          '--fork',
          '--propagation',
          'private',
          '--',
          '/bin/sh',
          '-c',
          script,
        ],
        { detached: true, stdio: ['ignore', consoleFd, consoleFd] },
      );
      closeSync(consoleFd);
      child.unref();
      const pid = child.pid!;
      const initPid = await pollUntil(() => childOf(pid), { timeoutMs: 10_000, intervalMs: 20, what: `the init of ${r.name}` });
      await pollUntil(async () => existsSync(join(dir, 'upper', BOOT_STARTED)) || (!processAlive(pid) && 'exited'), {
        timeoutMs: 60_000,
        intervalMs: 50,
        what: `${r.name} to boot`,
      }).then((v) => {
        if (v === 'exited') throw new Error(`its launcher exited: ${tailFile(join(dir, 'console.log'), 5).replace(/\n/g, ' | ')}`);
      });
      const now = await this.#record(r.id);
      if (!now) return;
      await writeJsonAtomic(join(dir, 'server.json'), { ...now, image: image.id, pid, initPid, state: 'running' });
    } catch (e) {
      const now = await this.#record(r.id);
      if (now) await writeJsonAtomic(join(dir, 'server.json'), { ...now, state: 'error', error: (e as Error).message });
      throw e;
    }
  }

  /**
   * Servers left `creating` by a process that ended before it started them (the cloud's daemon was
   * restarted) are put in `error`, so the caller replaces them. Returns their names.
   */
  async recover(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await readdir(join(this.stateDir, 'servers')).catch(() => [] as string[])) {
      const r = await this.#record(name);
      if (!r || r.state !== 'creating' || this.#launching.has(name)) continue;
      await writeJsonAtomic(join(this.#serverDir(name), 'server.json'), {
        ...r,
        state: 'error',
        error: 'the cloud restarted before it started',
      });
      out.push(name);
    }
    return out;
  }

  /** Resolves once any launch this process started for `id` has ended (tests, destroy). */
  async settled(id: string): Promise<void> {
    await this.#launching.get(id)?.catch(() => {});
  }

  /**
   * Powers a running server off (as `poweroff` inside it would), waiting (bounded) until it stopped:
   * every process in it ends. Its disk (upper directory) stays, for a snapshot.
   */
  async stop(id: string, timeoutMs = 15_000): Promise<void> {
    const r = await this.#mustRecord(id);
    if (r.initPid && processAlive(r.initPid)) process.kill(r.initPid, 'SIGTERM');
    await pollUntil(async () => (await this.get(id))?.state !== 'running', { timeoutMs, intervalMs: 50, what: `${id} to stop` }).catch(
      async () => {
        if (r.initPid) process.kill(r.initPid, 'SIGKILL');
        await sleep(200);
      },
    );
  }

  /**
   * Takes a snapshot of a stopped server (its changes over its image, as a new image named
   * `name`), usable as `image` for later servers. Returns the image's id.
   */
  async snapshot(id: string, name: string): Promise<string> {
    const r = await this.#mustRecord(id);
    const state = (await this.get(id))?.state;
    if (state !== 'stopped') {
      throw fail(
        'NOT_STOPPED',
        `server ${id} is ${state}: the local cloud snapshots stopped servers only (poweroff inside it, or stop it)`,
        {
          exitCode: 2,
        },
      );
    }
    const image = await this.images.snapshot(join(this.#serverDir(id), 'upper'), name, r.image, r.name);
    return image.id;
  }

  /**
   * An image of the stock one with Debian `packages` installed (through the cloud's package mirror),
   * made once per machine: a server boots the stock image, installs them, powers off, and is
   * snapshotted as `<prefix>-<hash of the list>`; later calls find it. For tests of what runs on a
   * server (the firewall backends need iptables and ufw, which the stock image does not have).
   */
  async prepareImage(prefix: string, packages: string[], timeoutMs = 600_000): Promise<string> {
    if (!/^[a-z][a-z0-9-]{0,40}$/.test(prefix)) throw fail('BAD_NAME', `image prefix "${prefix}"`, { exitCode: 2 });
    for (const p of packages) if (!/^[a-z0-9][a-z0-9.+-]*$/.test(p)) throw fail('BAD_PACKAGE', `package "${p}"`, { exitCode: 2 });
    const name = `${prefix}-${createHash('sha256').update(packages.join(' ')).digest('hex').slice(0, 10)}`;
    const found = await this.images.get(name);
    if (found) return found.id;
    const builder = serverName({ role: 'build', buildId: 'img' });
    const script = [
      '#!/bin/sh',
      'set -eu',
      'export DEBIAN_FRONTEND=noninteractive',
      "printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d",
      // A stuck apt-get (an answer lost between the mirror and apt once hung an update for minutes) is stopped and tried again.
      'for i in 1 2 3; do timeout 240 apt-get update -q && break; [ "$i" = 3 ] && exit 1; sleep 5; done',
      `for i in 1 2 3; do timeout 900 apt-get install -y -q --no-install-recommends ${packages.join(' ')} && break; ` +
        '[ "$i" = 3 ] && exit 1; sleep 5; done',
      'rm -f /usr/sbin/policy-rc.d; apt-get clean',
      'rm -rf /var/lib/apt/lists/* /etc/ssh/ssh_host_* /var/lib/cloud/instance /var/lib/cloud/data',
      // The mirror is this cloud's only: the image is the machine's, and each server gets its own cloud's (or none).
      'rm -f /etc/apt/apt.conf.d/00adt-local-mirror',
      ': > /etc/machine-id',
      'poweroff',
      '',
    ].join('\n');
    await this.create({ name: builder, role: 'build', buildId: 'img', userData: script });
    try {
      await pollUntil(
        async () => {
          const s = await this.get(builder);
          const c = await this.console(builder, 12);
          if (!s || s.state === 'error' || (c.exitCode !== null && c.exitCode !== 0)) {
            throw fail('IMAGE_FAILED', `preparing image ${name} (${packages.join(' ')}) failed: ${c.log.replace(/\n/g, ' | ')}`);
          }
          return s.state === 'stopped';
        },
        { timeoutMs, intervalMs: 500, what: `the image builder of ${name} to power off` },
      );
      return (await this.images.snapshot(join(this.#serverDir(builder), 'upper'), name, (await this.#mustRecord(builder)).image, builder))
        .id;
    } finally {
      await this.destroy(builder);
    }
  }

  /** Runs a command inside a server as its root (the cloud's console; the fleet itself uses SSH). */
  async exec(id: string, argv: string[], options: RunOptions = {}): Promise<RunResult> {
    return this.#exec(await this.execArgv(id, argv), options);
  }

  /** argv that runs `argv` inside a running server, in all its namespaces and its root, with a server's capabilities only. */
  async execArgv(id: string, argv: string[]): Promise<Argv> {
    const r = await this.#mustRecord(id);
    if (!r.initPid || (await this.get(id))?.state !== 'running') throw fail('NOT_RUNNING', `server ${id} is not running`, { exitCode: 2 });
    return [
      'nsenter',
      '-t',
      String(r.initPid),
      '-a',
      '--',
      // Root inside the server and no more: what no process of a server may hold is dropped here too (nsenter keeps ours).
      '/usr/bin/setpriv',
      '--bounding-set',
      DROPPED_CAPABILITIES.map((c) => `-${c}`).join(','),
      '--',
      'env',
      '-i',
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'HOME=/root',
      'LANG=C.UTF-8',
      `HOSTNAME=${r.name}`,
      ...argv,
    ] as unknown as Argv;
  }

  /** The end of a server's user-data output (what a cloud's console shows), and its exit code once it ended. */
  async console(id: string, lines = 50): Promise<{ log: string; exitCode: number | null }> {
    await this.#mustRecord(id);
    const upper = join(this.#serverDir(id), 'upper');
    const exit = await readFile(join(upper, USER_DATA_EXIT), 'utf8').catch(() => null);
    const launcher = tailFile(join(this.#serverDir(id), 'console.log'), 10);
    const log = tailFile(join(upper, USER_DATA_LOG), lines);
    return { log: [launcher, log].filter(Boolean).join('\n'), exitCode: exit === null ? null : Number(exit.trim()) };
  }

  /** Where the server's user-data output is, seen from the build machine. */
  userDataLog(id: string): string {
    return join(this.#serverDir(id), 'upper', USER_DATA_LOG);
  }

  async #record(id: string): Promise<ServerRecord | null> {
    if (!/^[a-z0-9-]{1,64}$/.test(id)) return null;
    try {
      return JSON.parse(await readFile(join(this.#serverDir(id), 'server.json'), 'utf8')) as ServerRecord;
    } catch {
      return null;
    }
  }

  async #mustRecord(id: string): Promise<ServerRecord> {
    const r = await this.#record(id);
    if (!r) throw fail('NOT_FOUND', `no server ${id} in the local cloud "${this.cloudId}"`, { exitCode: 2 });
    return r;
  }

  async get(id: string): Promise<LocalServer | null> {
    const r = await this.#record(id);
    if (!r) return null;
    if (r.state === 'running') {
      const alive = r.pid !== null && processAlive(r.pid) && commandLineOf(r.pid).startsWith('unshare');
      if (!alive) r.state = existsSync(`/run/netns/${r.netns}`) ? 'stopped' : 'error';
    }
    return publicView(r);
  }

  async list(filter: ListServersFilter = {}): Promise<LocalServer[]> {
    const names = await readdir(join(this.stateDir, 'servers')).catch(() => [] as string[]);
    const out: LocalServer[] = [];
    for (const name of names.sort()) {
      if (!nameMatches(name, filter)) continue;
      const s = await this.get(name);
      if (s) out.push(s);
    }
    return out;
  }

  async waitUntilRunning(id: string, options: WaitOptions = {}): Promise<LocalServer> {
    const timeoutMs = options.timeoutMs ?? 120_000;
    return pollUntil(
      async () => {
        const s = await this.get(id);
        if (!s) throw fail('NOT_FOUND', `no server ${id} in the local cloud "${this.cloudId}"`);
        if (s.state === 'error')
          throw fail('SERVER_FAILED', `server ${id} could not be started: ${(await this.#record(id))?.error ?? 'unknown'}`);
        if (s.state === 'stopped')
          throw fail('SERVER_FAILED', `server ${id} stopped: ${(await this.console(id, 5)).log.replace(/\n/g, ' | ')}`);
        return s.state === 'running' ? s : null;
      },
      { timeoutMs, intervalMs: options.intervalMs ?? 100, signal: options.signal, what: `server ${id} to run` },
    );
  }

  async #killNetnsProcesses(netns: string): Promise<void> {
    // Every process whose network namespace is this one: TERM, then KILL what is left (bounded).
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
      if (/^[a-z0-9-]{1,64}$/.test(id)) await rm(dir, { recursive: true, force: true });
      return;
    }
    // A launch in progress sees the record gone and stops.
    await rm(join(dir, 'server.json'), { force: true });
    await this.settled(id);
    // Its PID 1 first: the kernel then ends every process of the server's PID namespace.
    if (r.initPid && processAlive(r.initPid)) {
      try {
        process.kill(r.initPid, 'SIGKILL');
      } catch {}
    }
    await this.#removeNamespaces(r.netns);
    for (const pid of [r.initPid, r.pid]) for (let i = 0; pid && i < 100 && processAlive(pid); i++) await sleep(20);
    for (const tag of ['p', 'v']) await this.#exec(['ip', 'link', 'del', `${this.cloudId}${tag}${r.n}`], { nothrow: true });
    await rm(dir, { recursive: true, force: true });
    await rmdir(join(this.stateDir, 'addresses', String(r.n))).catch(() => {});
    await this.firewall.sync();
  }

  async dispose(): Promise<void> {}
}

function publicView(r: ServerRecord): LocalServer {
  const { n: _n, netns: _netns, pid: _pid, initPid: _initPid, error: _error, ...server } = r;
  return server;
}

/** A local cloud (convention: a default-exported factory). */
export default function localCloud(options: LocalCloudOptions = {}): LocalCloud {
  return new LocalCloud(options);
}
