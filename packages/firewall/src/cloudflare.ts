/**
 * Cloudflare's published address ranges (https://www.cloudflare.com/ips-v4 and /ips-v6), for web
 * mode `cloudflare`: the webservers' HTTPS port then answers Cloudflare's proxies only. The bundled
 * list was taken on 2026-11-24 (it last changed in 2023); `refreshCloudflareRanges` fetches the
 * current one when the network allows, validates it, and keeps the bundled list otherwise, saying so.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const CLOUDFLARE_RANGES_DATE = '2026-11-24';

export const BUNDLED_CLOUDFLARE = Object.freeze({
  v4: Object.freeze([
    '173.245.48.0/20',
    '103.21.244.0/22',
    '103.22.200.0/22',
    '103.31.4.0/22',
    '141.101.64.0/18',
    '108.162.192.0/18',
    '190.93.240.0/20',
    '188.114.96.0/20',
    '197.234.240.0/22',
    '198.41.128.0/17',
    '162.158.0.0/15',
    '104.16.0.0/13',
    '104.24.0.0/14',
    '172.64.0.0/13',
    '131.0.72.0/22',
  ]),
  v6: Object.freeze([
    '2400:cb00::/32',
    '2606:4700::/32',
    '2803:f800::/32',
    '2405:b500::/32',
    '2405:8100::/32',
    '2a06:98c0::/29',
    '2c0f:f248::/32',
  ]),
});

export interface CloudflareRanges {
  v4: string[];
  v6: string[];
  /** `fetched` (with the time) or `bundled` (with the bundled list's date and why). */
  source: string;
}

/** Parses one published list; throws unless every line is a CIDR of the family and there is at least one. */
export function parseRangeList(text: string, family: 4 | 6): string[] {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length === 0) throw new Error(`the IPv${family} list is empty`);
  for (const l of lines) {
    const [ip, bits] = l.split('/');
    const max = family === 4 ? 32 : 128;
    if (!ip || !(family === 4 ? isIPv4(ip) : isIPv6(ip)) || bits === undefined || !/^\d+$/.test(bits) || Number(bits) > max) {
      throw new Error(`"${l.slice(0, 60)}" is not an IPv${family} CIDR`);
    }
  }
  return lines;
}

/** The current ranges from Cloudflare, or the bundled ones (never an empty list). */
export async function refreshCloudflareRanges(fetchImpl: typeof fetch = fetch, timeoutMs = 5000): Promise<CloudflareRanges> {
  try {
    const get = async (url: string) => {
      const r = await fetchImpl(url, { signal: AbortSignal.timeout(timeoutMs) });
      if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
      return r.text();
    };
    const [v4, v6] = await Promise.all([get('https://www.cloudflare.com/ips-v4'), get('https://www.cloudflare.com/ips-v6')]);
    return { v4: parseRangeList(v4, 4), v6: parseRangeList(v6, 6), source: `fetched ${new Date().toISOString()}` };
  } catch (e) {
    return {
      v4: [...BUNDLED_CLOUDFLARE.v4],
      v6: [...BUNDLED_CLOUDFLARE.v6],
      source: `bundled list of ${CLOUDFLARE_RANGES_DATE} (refresh failed: ${(e as Error).message})`,
    };
  }
}
