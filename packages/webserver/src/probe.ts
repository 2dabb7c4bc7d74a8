/**
 * One HTTPS request to a site as a client that knows the site's CA: what a webserver's self-check,
 * the build's site check and status, and the autoscalers' probes all send.
 */
import { request } from 'node:https';

/**
 * One HTTPS request to the site at `ip` (SNI and Host `host`, trusting only `ca`): its status,
 * redirect target and the release of the code that answered (`X-ADT-Release`, sent by the
 * application's config on every page it serves; null when absent); rejects when nothing answers
 * within `timeoutMs`.
 */
export function httpsGet(
  ip: string,
  host: string,
  ca: string,
  timeoutMs = 10_000,
): Promise<{ status: number; location?: string; release: string | null }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: ip, port: 443, path: '/', servername: host, ca, headers: { host, 'user-agent': 'adt' }, timeout: timeoutMs },
      (res) => {
        res.resume();
        const release = res.headers['x-adt-release'];
        resolve({ status: res.statusCode ?? 0, location: res.headers.location, release: typeof release === 'string' ? release : null });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from https://${host}/ at ${ip} within ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}
