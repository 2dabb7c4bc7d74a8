/** What the deploy tests do as a visitor from the local cloud's outsider namespace (curl, like a browser). */
import { execa } from 'execa';

export const outsider = (cloudId: string, argv: string[]) =>
  execa('ip', ['netns', 'exec', `${cloudId}-outsider`, ...argv], { reject: false, timeout: 30_000 });

/** curl from the outsider to the site at `ip`, trusting only the build's CA. */
export function siteCurl(cloudId: string, caFile: string, host: string, ip: string) {
  return (...args: string[]) =>
    outsider(cloudId, ['curl', '-sS', '--max-time', '20', '--cacert', caFile, '--resolve', `${host}:443:${ip}`, ...args]);
}

/**
 * The HTTP status of https://<host>/ at `ip` from the outsider (curl's `%{http_code}` on stdout,
 * `000` when nothing answered; its exit code, e.g. 60 for an untrusted certificate), trusting only
 * `cacert` (null: the outsider's system CAs).
 */
export function outsiderStatus(cloudId: string, host: string, ip: string, cacert: string | null, maxTimeSeconds = 5) {
  const trust = cacert ? ['--cacert', cacert] : [];
  return outsider(cloudId, [
    'curl',
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '--max-time',
    String(maxTimeSeconds),
    ...trust,
    '--resolve',
    `${host}:443:${ip}`,
    `https://${host}/`,
  ]);
}

/** Finishes WordPress's install through its form (the database is written); returns the HTTP status. */
export async function installWordPress(curl: ReturnType<typeof siteCurl>, host: string, title: string): Promise<string> {
  const form = {
    weblog_title: title,
    user_name: 'admin',
    admin_password: 'Correct-Horse-Battery-9',
    admin_password2: 'Correct-Horse-Battery-9',
    admin_email: `admin@${host}`,
    blog_public: '0',
    Submit: 'Install WordPress',
  };
  const args = Object.entries(form).flatMap(([k, v]) => ['--data-urlencode', `${k}=${v}`]);
  return (await curl('-o', '/dev/null', '-w', '%{http_code}', ...args, `https://${host}/wp-admin/install.php?step=2`)).stdout;
}
