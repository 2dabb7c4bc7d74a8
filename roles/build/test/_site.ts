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
 * The HTTP status of https://<host><path> at `ip` from the outsider (curl's `%{http_code}` on
 * stdout, `000` when nothing answered; its exit code, e.g. 60 for an untrusted certificate),
 * trusting only `cacert` (null: the outsider's system CAs).
 */
export function outsiderStatus(cloudId: string, host: string, ip: string, cacert: string | null, maxTimeSeconds = 5, path = '/') {
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
    `https://${host}${path}`,
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

/** The nonce WordPress's media uploader posts with, from its page (the session in `jar` must be an editor's). */
export async function mediaNonce(curl: ReturnType<typeof siteCurl>, host: string, jar: string): Promise<string> {
  const page = await curl('-b', jar, '-c', jar, `https://${host}/wp-admin/media-new.php`);
  const nonce = /"_wpnonce":"([0-9a-f]+)"/.exec(page.stdout)?.[1];
  if (!nonce) throw new Error(`no upload nonce on media-new.php (HTTP exit ${page.exitCode}): ${page.stdout.slice(0, 200)}`);
  return nonce;
}

/**
 * Uploads `file` through WordPress's media uploader (async-upload.php, as the browser's uploader
 * does) with the session in `jar`; the URL WordPress answered with, or null when it did not
 * acknowledge the upload (no answer, an error, no success in its JSON).
 */
export async function uploadMedia(curl: ReturnType<typeof siteCurl>, host: string, jar: string, nonce: string, file: string, name: string) {
  const r = await curl(
    '-b',
    jar,
    '-F',
    `async-upload=@${file};filename=${name}`,
    '-F',
    `name=${name}`,
    '-F',
    'action=upload-attachment',
    '-F',
    `_wpnonce=${nonce}`,
    `https://${host}/wp-admin/async-upload.php`,
  );
  if (r.exitCode !== 0) return null;
  try {
    const j = JSON.parse(r.stdout) as { success?: boolean; data?: { url?: string } };
    return j.success && j.data?.url ? j.data.url : null;
  } catch {
    return null;
  }
}
