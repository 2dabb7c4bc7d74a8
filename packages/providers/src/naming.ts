/**
 * Server names encode the role and the build identifier, so `list` finds a deployment's machines on
 * any cloud (the original's naming idea). Parsing is exact: a name belongs to build `ab` only if its
 * build field is exactly `ab` (not `abc`), and to autoscaler slot 1 only if its slot field is exactly
 * `1` (not `10`) - the original matched by substring and got both wrong.
 *
 *   <role code>-<buildId>[-s<slot>]-<suffix>
 *   ws-prod1-s2-k3f9   webserver of build prod1, owned by autoscaler slot 2
 *   db-prod1-7x2a      database server of build prod1
 *
 * Role codes: `bm` build, `ws` webserver, `db` database, `as` autoscaler, `au` auth. At most 48
 * characters, so every cloud's name limit fits (Vultr's labels, hostnames).
 */
import { randomBytes } from 'node:crypto';
import { errorFactory } from '@adt/core';
import type { Role } from './types.ts';

const fail = errorFactory('providers', 'naming');

const CODES: Record<Role, string> = { build: 'bm', webserver: 'ws', database: 'db', autoscaler: 'as', auth: 'au' };
const ROLES = Object.fromEntries(Object.entries(CODES).map(([r, c]) => [c, r as Role])) as Record<string, Role>;
const BUILD_ID = /^[a-z0-9](?:[a-z0-9]{0,22}[a-z0-9])?$/;

export interface ServerNameParts {
  role: Role;
  buildId: string;
  /** Autoscaler slot (1-99) owning a webserver, when it has one. */
  slot?: number;
  /** Random suffix (generated when absent): 4-8 lowercase letters and digits. */
  suffix?: string;
}

export interface ParsedServerName {
  role: Role;
  buildId: string;
  slot?: number;
  suffix: string;
}

export function serverName(parts: ServerNameParts): string {
  if (!(parts.role in CODES)) throw fail('BAD_ROLE', `role "${parts.role}": one of ${Object.keys(CODES).join(', ')}`, { exitCode: 2 });
  if (!BUILD_ID.test(parts.buildId)) {
    throw fail(
      'BAD_BUILD_ID',
      `build identifier "${parts.buildId}" in a server name: ` +
        "1-24 lowercase letters and digits (no hyphens: they separate the name's fields)",
      { exitCode: 2 },
    );
  }
  if (parts.slot !== undefined && (!Number.isInteger(parts.slot) || parts.slot < 1 || parts.slot > 99))
    throw fail('BAD_SLOT', `slot ${parts.slot}: 1-99`, { exitCode: 2 });
  const suffix = parts.suffix ?? randomBytes(4).toString('hex').slice(0, 6);
  if (!/^[a-z0-9]{4,8}$/.test(suffix)) throw fail('BAD_SUFFIX', `suffix "${suffix}": 4-8 lowercase letters and digits`, { exitCode: 2 });
  return [CODES[parts.role], parts.buildId, ...(parts.slot !== undefined ? [`s${parts.slot}`] : []), suffix].join('-');
}

/** The parts of a name made by `serverName`, or null for any other name. */
export function parseServerName(name: string): ParsedServerName | null {
  const m = /^(bm|ws|db|as|au)-([a-z0-9]{1,24})(?:-s([1-9][0-9]?))?-([a-z0-9]{4,8})$/.exec(name);
  if (!m) return null;
  return { role: ROLES[m[1]!]!, buildId: m[2]!, ...(m[3] ? { slot: Number(m[3]) } : {}), suffix: m[4]! };
}

/** Whether `name` belongs to the build (and role, slot) asked for: exact field comparison. */
export function nameMatches(name: string, filter: { buildId?: string; role?: Role; slot?: number }): boolean {
  const p = parseServerName(name);
  if (!p) return false;
  return (
    (filter.buildId === undefined || p.buildId === filter.buildId) &&
    (filter.role === undefined || p.role === filter.role) &&
    (filter.slot === undefined || p.slot === filter.slot)
  );
}
