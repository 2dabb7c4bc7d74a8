/**
 * Which servers a deployment wants, and what a deploy does with the ones it finds: the
 * keep / replace / create rule, as a pure function (unit-tested), so a re-run converges.
 *
 * - A server is kept when it belongs to this build's current run (not a fresh build), its role and
 *   slot are still wanted, it runs, and it is ready or still booting.
 * - Anything else of the build is replaced: a failed bootstrap, a stopped or broken server, one of
 *   an earlier build, a webserver whose database was replaced (it holds the old one's address).
 * - Missing ones are created. In production, once webservers exist the autoscalers own them: a
 *   re-run keeps the ones there and creates none.
 */
import { parseServerName, type Server } from '@adt/providers';
import { splitDesired } from '@adt/scaling';
import type { FleetRole } from '@adt/firewall';
import type { Deployment } from './settings.ts';

export interface WantedServer {
  role: FleetRole;
  /** Autoscaler slot (production webservers and autoscalers). */
  slot?: number;
}

/**
 * The servers a deployment wants: development one of each; production the autoscalers (a slot
 * each) and the initial webservers split between their slots.
 */
export function wantedServers(d: Pick<Deployment, 'mode' | 'scaling' | 'auth'>): WantedServer[] {
  const auth = d.auth ? [{ role: 'auth' as const }] : [];
  if (d.mode === 'development') return [{ role: 'database' }, { role: 'webserver' }, ...auth];
  const web = splitDesired(d.scaling.webservers, d.scaling.autoscalers).flatMap((n, i) =>
    Array.from({ length: n }, () => ({ role: 'webserver' as const, slot: i + 1 })),
  );
  return [
    { role: 'database' },
    ...web,
    ...Array.from({ length: d.scaling.autoscalers }, (_, i) => ({ role: 'autoscaler' as const, slot: i + 1 })),
    ...auth,
  ];
}

/** The order roles are made in: the database first (webservers wait for it), the autoscalers after the webservers. */
export const ROLE_ORDER: readonly FleetRole[] = ['database', 'webserver', 'autoscaler', 'auth'];

/** A server found in the cloud, with what the datastore says of it. */
export interface FoundServer {
  server: Server;
  ready: boolean;
  /** Its bootstrap failed (a failure recorded, or the cloud says it stopped or broke). */
  failed: boolean;
}

export interface ServerDecision {
  keep: { server: Server; reason: string }[];
  replace: { server: Server; reason: string }[];
  create: WantedServer[];
}

export interface DecideOptions {
  /** A new build (nothing of an earlier one is kept). */
  fresh: boolean;
  /** The database server is being replaced (its webservers go too). */
  databaseReplaced: boolean;
  mode: Deployment['mode'];
}

/** What to do with one role's servers. */
export function decideServers(role: FleetRole, wants: WantedServer[], found: FoundServer[], o: DecideOptions): ServerDecision {
  const mine = wants.filter((w) => w.role === role);
  const autoscaled = o.mode === 'production' && role === 'webserver';
  const keep: ServerDecision['keep'] = [];
  const replace: ServerDecision['replace'] = [];
  for (const f of found) {
    const s = f.server;
    const slot = parseServerName(s.name)?.slot;
    const wantedHere =
      autoscaled || (mine.some((w) => w.slot === slot) && !keep.some((k) => parseServerName(k.server.name)?.slot === slot));
    const stale = role === 'webserver' && o.databaseReplaced;
    const alive = s.state === 'running' || s.state === 'creating';
    let reason: string | null = null;
    if (o.fresh) reason = 'from an earlier build';
    else if (stale) reason = 'the database was replaced';
    else if (!wantedHere) reason = 'not wanted';
    else if (f.failed && !f.ready) reason = 'its bootstrap failed';
    else if (!alive) reason = `it is ${s.state}`;
    if (reason) replace.push({ server: s, reason });
    else keep.push({ server: s, reason: f.ready ? 'ready' : 'still booting' });
  }
  const missing =
    autoscaled && keep.length
      ? []
      : mine.filter((w) => !keep.some((k) => parseServerName(k.server.name)?.slot === w.slot) || (w.slot === undefined && !keep.length));
  const create = autoscaled ? missing : missing.slice(0, Math.max(0, mine.length - keep.length));
  return { keep, replace, create };
}
