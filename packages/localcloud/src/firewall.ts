/**
 * The native firewall of the local cloud: enforced outside the servers, in the build machine's
 * iptables. Bridged frames pass through iptables (br_netfilter), so chain `ADT-<cloudId>-FW`
 * (jumped to from FORWARD and OUTPUT) filters every packet to a server by its destination address
 * before it reaches the server; a server's own `iptables -F` changes nothing there. Packets a server
 * sends with an address that is not its own are dropped (no spoofing past the rules).
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execaRunner, type Argv, type Runner } from '@adt/core';
import { validateRule, type InboundRule, type NativeFirewallProvider, type Role } from '@adt/providers';
import { writeJsonAtomic } from './_files.ts';
import type { LocalCloud } from './cloud.ts';

// --- The native firewall of the local cloud ---

/**
 * Rules per (build, role) are kept in the state dir; `sync` renders chain ADT-<cloudId>-FW for every
 * server and swaps it in with one `iptables-restore --noflush` (atomic). Servers of a role with no
 * rules applied are open, like a cloud server with no firewall attached.
 */
export class LocalNativeFirewall implements NativeFirewallProvider {
  readonly name = 'local';
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
    // Every server's anti-spoofing rules come before any server's ACCEPT: a packet forged with an allowed
    // source address would otherwise be accepted by its destination's rules before its sender's DROP is reached.
    const accepts: string[] = [];
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
            accepts.push([`-A ${c.chain}`, '-d', ip, '-s', src, '-p', rule.protocol, ...port, '-j ACCEPT'].join(' '));
          }
        }
        accepts.push(`-A ${c.chain} -d ${ip} -j DROP`);
      }
    }
    lines.push(...accepts, 'COMMIT', '');
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
