/**
 * The iptables backend: the whole policy in a chain of our own (`ADT-INPUT`), replaced in one
 * `iptables-restore --noflush` transaction per address family, so other rules on the host survive
 * and there is never a moment with half a policy (SSH from the build machine is never dropped
 * midway). INPUT jumps to the chain first; the chain accepts loopback, established traffic, ICMP
 * and the policy's rules, and drops everything else, for IPv4 and IPv6 alike.
 *
 * The first rule of the IPv4 chain carries the policy's fingerprint as a comment: `applied()` reads
 * it back (`iptables -S`), so a reconcile with nothing to change costs one short command. IPv6 is
 * applied first and IPv4 (with the fingerprint) last: if either fails, the fingerprint still names
 * the old policy and the next reconcile applies again.
 */
import { errorFactory, lastLines, type Argv, type Runner } from '@adt/core';
import type { HostFirewall, HostPolicy } from '../types.ts';

export const BACKEND_NAME = 'iptables';
const fail = errorFactory('firewall', BACKEND_NAME);

export interface IptablesBackendOptions {
  /** Runs the argv arrays (execaRunner(), or one that enters a namespace). */
  runner: Runner;
  /** Our chain (default ADT-INPUT). */
  chain?: string;
  /** Apply the IPv6 side too (default true). */
  ipv6?: boolean;
}

function quote(comment: string): string {
  return `"${comment.replace(/["\\]/g, '').slice(0, 200)}"`;
}

/** The iptables-restore input of one family, as data. */
export function renderRestore(policy: HostPolicy, fp: string, family: 4 | 6, chain = 'ADT-INPUT'): string {
  const lines = ['*filter', `:${chain} - [0:0]`, `-F ${chain}`];
  if (family === 4) lines.push(`-A ${chain} -m comment --comment ${quote(`adt-policy:${fp} role:${policy.role}`)}`);
  lines.push(`-A ${chain} -i lo -j ACCEPT`);
  lines.push(`-A ${chain} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`);
  lines.push(`-A ${chain} -m conntrack --ctstate INVALID -j DROP`);
  // ICMP (and ICMPv6, which IPv6 needs for neighbour discovery) stays open: path MTU, ping.
  lines.push(family === 4 ? `-A ${chain} -p icmp -j ACCEPT` : `-A ${chain} -p ipv6-icmp -j ACCEPT`);
  for (const r of policy.rules) {
    const port = Array.isArray(r.port) ? `${r.port[0]}:${r.port[1]}` : String(r.port);
    for (const s of r.sources) {
      const v6 = s.includes(':');
      if (v6 !== (family === 6)) continue;
      const from = s === '0.0.0.0/0' || s === '::/0' ? '' : ` -s ${s}`;
      lines.push(`-A ${chain}${from} -p ${r.protocol} -m ${r.protocol} --dport ${port} -m comment --comment ${quote(r.comment)} -j ACCEPT`);
    }
  }
  lines.push(`-A ${chain} -j DROP`, 'COMMIT', '');
  return lines.join('\n');
}

export function iptablesBackend(o: IptablesBackendOptions): HostFirewall & { applyRendered(v4: string, v6: string | null): Promise<void> } {
  const chain = o.chain ?? 'ADT-INPUT';
  if (!/^[A-Za-z0-9_-]{1,28}$/.test(chain))
    throw fail('BAD_CHAIN', `chain "${chain}": letters, digits, _ and -, at most 28`, { exitCode: 2 });
  const ipv6 = o.ipv6 ?? true;

  async function ensureJump(tool: 'iptables' | 'ip6tables') {
    const check = await o.runner.run([tool, '--wait', '-C', 'INPUT', '-j', chain], { nothrow: true });
    if (check.exitCode !== 0) await o.runner.run([tool, '--wait', '-I', 'INPUT', '1', '-j', chain]);
  }

  async function restore(tool: 'iptables-restore' | 'ip6tables-restore', text: string) {
    const r = await o.runner.run([tool, '--noflush', '--wait'] as Argv, { input: text, nothrow: true });
    if (r.exitCode !== 0) {
      throw fail('APPLY_FAILED', `${tool} refused the rules (the previous rules stay in force): ${lastLines(r.stderr, 2)}`);
    }
  }

  return {
    name: BACKEND_NAME,

    async applied() {
      // Only the first rule, where the fingerprint is: listing the whole chain (hundreds of sources) costs twice as much.
      const r = await o.runner.run(['iptables', '--wait', '-S', chain, '1'], { nothrow: true });
      if (r.exitCode !== 0) return null;
      return /adt-policy:([0-9a-f]+)/.exec(r.stdout)?.[1] ?? null;
    },

    async apply(policy, fp) {
      await this.applyRendered(renderRestore(policy, fp, 4, chain), ipv6 ? renderRestore(policy, fp, 6, chain) : null);
    },

    /** Applies rendered rule files (IPv6 first, then IPv4 with the fingerprint), then makes sure INPUT jumps to the chain. */
    async applyRendered(v4, v6) {
      if (v6 !== null) await restore('ip6tables-restore', v6);
      await restore('iptables-restore', v4);
      if (v6 !== null) await ensureJump('ip6tables');
      await ensureJump('iptables');
    },
  };
}

/** argv that removes our chain and its jump (to uninstall), as data. */
export function removeArgvs(chain = 'ADT-INPUT'): Argv[] {
  return (['iptables', 'ip6tables'] as const).flatMap(
    (t) =>
      [
        [t, '--wait', '-D', 'INPUT', '-j', chain],
        [t, '--wait', '-F', chain],
        [t, '--wait', '-X', chain],
      ] as Argv[],
  );
}
