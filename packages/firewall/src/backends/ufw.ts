/**
 * The ufw backend, for people who want to see the rules in `ufw status`. ufw has no atomic replace,
 * so changes are made in the order that never locks anyone out: rules that are new are added
 * first, then rules that are gone are deleted; an allow rule that stays is never touched. The
 * policy's fingerprint is kept in a state file next to ufw's own files.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorFactory, type Argv, type Runner } from '@adt/core';
import type { HostFirewall, HostPolicy } from '../types.ts';

export const BACKEND_NAME = 'ufw';
const fail = errorFactory('firewall', BACKEND_NAME);

export interface UfwBackendOptions {
  runner: Runner;
  /** Where the applied fingerprint is kept (default /etc/ufw/adt-policy). */
  stateFile?: string;
}

/**
 * The `ufw allow` argv of every (rule, source) of a policy, as data, in the canonical form
 * `ufw show added` prints back (a rule from anywhere is `allow <port>/<proto>`, for IPv4 and IPv6
 * at once), so comparing what is there with what is wanted is exact.
 */
export function ufwRuleArgvs(policy: HostPolicy): Argv[] {
  const out = new Map<string, Argv>();
  for (const r of policy.rules) {
    const port = Array.isArray(r.port) ? `${r.port[0]}:${r.port[1]}` : String(r.port);
    const comment = r.comment.replace(/'/g, '').slice(0, 100);
    for (const s of r.sources) {
      const argv = (s === '0.0.0.0/0' || s === '::/0'
        ? ['ufw', 'allow', `${port}/${r.protocol}`, 'comment', comment]
        : [
            'ufw',
            'allow',
            'from',
            s.replace(/\/(32|128)$/, ''),
            'to',
            'any',
            'port',
            port,
            'proto',
            r.protocol,
            'comment',
            comment,
          ]) as unknown as Argv;
      out.set(key(argv), argv);
    }
  }
  return [...out.values()];
}

/** The same rule without its comment, as `ufw show added` prints it (to compare). */
function key(argv: readonly string[]): string {
  const i = argv.indexOf('comment');
  return (i === -1 ? argv : argv.slice(0, i)).slice(1).join(' ');
}

export function ufwBackend(o: UfwBackendOptions): HostFirewall {
  const stateFile = o.stateFile ?? '/etc/ufw/adt-policy';
  const ufw = (args: string[], nothrow = false) => o.runner.run(['ufw', ...args] as unknown as Argv, { nothrow, timeoutMs: 60_000 });
  return {
    name: BACKEND_NAME,
    async applied() {
      const status = await ufw(['status'], true);
      if (status.exitCode !== 0 || !/Status: active/.test(status.stdout)) return null;
      return (await readFile(stateFile, 'utf8').catch(() => '')).trim() || null;
    },
    async apply(policy, fp) {
      const wanted = ufwRuleArgvs(policy);
      const wantedKeys = new Set(wanted.map(key));
      const added = (await ufw(['show', 'added'], true)).stdout.split('\n').filter((l) => l.startsWith('ufw allow '));
      const current = new Set(added.map((l) => l.replace(/ comment '.*'$/, '').replace(/^ufw /, '')));
      try {
        // 1. New rules first (nothing is ever closed before its replacement is open).
        for (const argv of wanted) if (!current.has(key(argv))) await o.runner.run(argv, { timeoutMs: 60_000 });
        // 2. Default deny incoming, then on.
        await ufw(['default', 'deny', 'incoming']);
        await ufw(['default', 'allow', 'outgoing']);
        await ufw(['--force', 'enable']);
        // 3. Rules that are gone.
        for (const rule of current) if (!wantedKeys.has(rule)) await ufw(['--force', 'delete', ...rule.split(' ')]);
      } catch (e) {
        throw fail('APPLY_FAILED', `ufw: ${(e as Error).message}`, { cause: e });
      }
      await mkdir(dirname(stateFile), { recursive: true });
      await writeFile(stateFile, fp, { mode: 0o600 });
    },
  };
}
