/** Validation shared by every native-firewall and managed-database driver (exported: the build validates with it too). */
import { errorFactory } from '@adt/core';
import type { InboundRule } from './types.ts';

const fail = errorFactory('providers', 'rules');

const SOURCE = /^(\d{1,3}\.){3}\d{1,3}(\/([0-9]|[12][0-9]|3[0-2]))?$|^[0-9a-fA-F:]+(\/\d{1,3})?$/;

/** One inbound rule: protocol, ports 1-65535 (required for tcp/udp), sources that are IPs or CIDRs. */
export function validateRule(rule: InboundRule, field: string): void {
  if (!['tcp', 'udp', 'icmp'].includes(rule.protocol))
    throw fail('BAD_RULE', `${field}.protocol "${rule.protocol}": tcp, udp or icmp`, { exitCode: 2 });
  const ports = rule.port === undefined ? [] : Array.isArray(rule.port) ? rule.port : [rule.port];
  if (rule.protocol !== 'icmp' && ports.length === 0)
    throw fail('BAD_RULE', `${field}.port: required for ${rule.protocol}`, { exitCode: 2 });
  for (const p of ports)
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw fail('BAD_RULE', `${field}.port ${p}: 1-65535`, { exitCode: 2 });
  if (rule.protocol !== 'icmp' && (!Array.isArray(rule.sources) || rule.sources.length === 0))
    throw fail('BAD_RULE', `${field}.sources: at least one address or CIDR`, { exitCode: 2 });
  for (const s of rule.sources ?? [])
    if (!SOURCE.test(s)) throw fail('BAD_RULE', `${field}.sources: "${s}" is not an IP address or CIDR`, { exitCode: 2 });
}

/**
 * A managed database's allow-list: addresses or CIDRs of the VPC or of named servers. Anything that
 * opens it to the internet (a /0, or an IPv4 prefix shorter than /8, an IPv6 one shorter than /32)
 * is refused, as is an empty list (which some providers read as "open to all").
 */
export function validateAllowList(sources: string[], field: string): void {
  if (!Array.isArray(sources) || sources.length === 0)
    throw fail(
      'BAD_ALLOW_LIST',
      `${field}: at least one address or CIDR (an empty allow-list opens some providers' databases to everyone)`,
      { exitCode: 2 },
    );
  for (const s of sources) {
    if (!SOURCE.test(s)) throw fail('BAD_ALLOW_LIST', `${field}: "${s}" is not an IP address or CIDR`, { exitCode: 2 });
    const [ip, bits] = s.split('/');
    const prefix = bits === undefined ? null : Number(bits);
    const min = ip!.includes(':') ? 32 : 8;
    if (prefix !== null && prefix < min)
      throw fail(
        'BAD_ALLOW_LIST',
        `${field}: "${s}" would open the database to ${prefix === 0 ? 'the whole internet' : 'a large part of the internet'}; ` +
          `give the VPC's CIDR or the servers' addresses (prefix /${min} or longer)`,
        { exitCode: 2 },
      );
  }
}
