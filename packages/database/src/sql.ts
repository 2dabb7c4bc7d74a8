/**
 * Provisioning SQL for MariaDB, built as data: the application's database and one user allowed only
 * from the fleet's private network. Values are validated and quoted here, so nothing a user typed
 * reaches the server unescaped, and the statements go to the client on stdin (never on a command line).
 */
import { isIPv4 } from 'node:net';
import { errorFactory } from '@adt/core';

const fail = errorFactory('database', 'mariadb');

export interface ProvisionSpec {
  /** Database name: 1-64 letters, digits, `_`. */
  database: string;
  /** User name: 1-32 letters, digits, `_`. */
  user: string;
  /** The user's password (never logged). */
  password: string;
  /**
   * Where the user may connect from: IPv4 addresses or CIDRs of the private network
   * (e.g. `198.18.1.0/24`). Never "anywhere" (`0.0.0.0/0` or `%`).
   */
  allowFrom: string[];
}

const NAME = /^[A-Za-z0-9_]{1,64}$/;
const USER = /^[A-Za-z0-9_]{1,32}$/;

/** A MariaDB host pattern for an address or CIDR: an address as is, a CIDR as `network/netmask`. */
export function hostPattern(source: string): string {
  const [ip, bitsText] = source.split('/');
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  if (!ip || !isIPv4(ip) || !Number.isInteger(bits) || bits < 0 || bits > 32 || (bitsText !== undefined && !/^\d{1,2}$/.test(bitsText))) {
    throw fail('BAD_SOURCE', `allowFrom: "${source}" is not an IPv4 address or CIDR (e.g. 198.18.1.0/24)`, { exitCode: 2 });
  }
  if (bits < 8)
    throw fail(
      'BAD_SOURCE',
      `allowFrom: "${source}" is too wide: the database accepts only the fleet's private network (a /8 or narrower)`,
      { exitCode: 2 },
    );
  if (bits === 32) return ip;
  const mask = (0xffffffff << (32 - bits)) >>> 0;
  const net = (ip.split('.').reduce((a, o) => (a << 8) + Number(o), 0) & mask) >>> 0;
  const dotted = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
  return `${dotted(net)}/${dotted(mask)}`;
}

/** A SQL string literal: backslashes and quotes escaped, NUL refused. */
export function sqlString(value: string): string {
  if (value.includes('\0')) throw fail('BAD_VALUE', 'a value contains a NUL character', { exitCode: 2 });
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function validateSpec(spec: ProvisionSpec): void {
  const problems: string[] = [];
  if (!NAME.test(spec.database)) problems.push(`database: "${spec.database}" must be 1-64 letters, digits or "_"`);
  if (!USER.test(spec.user)) problems.push(`user: "${spec.user}" must be 1-32 letters, digits or "_"`);
  if (spec.user === 'root' || spec.user === 'mysql' || spec.user === 'mariadb.sys') problems.push(`user: "${spec.user}" is reserved`);
  if (typeof spec.password !== 'string' || spec.password.length < 16)
    problems.push('password: must be at least 16 characters (generate it)');
  if (!Array.isArray(spec.allowFrom) || spec.allowFrom.length === 0)
    problems.push('allowFrom: at least one private address or CIDR is required');
  if (problems.length) throw fail('BAD_SPEC', problems.join('; '), { exitCode: 2 });
}

/**
 * Statements that make the database and the user exist exactly as specified: created when absent,
 * password set, granted on that database only, and the same user at hosts no longer allowed dropped.
 * `existingHosts` are the hosts the user has now (from `mysql.user`).
 */
export function provisionSql(spec: ProvisionSpec, existingHosts: string[] = []): string {
  validateSpec(spec);
  const hosts = [...new Set(spec.allowFrom.map(hostPattern))];
  const db = `\`${spec.database}\``;
  const lines = [`CREATE DATABASE IF NOT EXISTS ${db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;`];
  for (const host of hosts) {
    const account = `${sqlString(spec.user)}@${sqlString(host)}`;
    lines.push(`CREATE USER IF NOT EXISTS ${account} IDENTIFIED BY ${sqlString(spec.password)};`);
    lines.push(`ALTER USER ${account} IDENTIFIED BY ${sqlString(spec.password)};`);
    lines.push(`GRANT ALL PRIVILEGES ON ${db}.* TO ${account};`);
  }
  for (const old of existingHosts.filter((h) => !hosts.includes(h)))
    lines.push(`DROP USER IF EXISTS ${sqlString(spec.user)}@${sqlString(old)};`);
  lines.push('FLUSH PRIVILEGES;');
  return `${lines.join('\n')}\n`;
}
