/**
 * Baselines: a shareable copy of the application (webroot + database) without the deployment's
 * config files and credentials. Published under `baselines/<name>/` in a bucket (restorable with
 * `Backups` and that prefix) only when the secret scan of the files and of the dump finds nothing;
 * otherwise refused, naming every location (never the secret).
 */
import { errorFactory } from '@adt/core';
import type { S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { Backups, dumpArgv, type DatabaseSource } from './backups.ts';
import { formatFindings, scanSqlDump, scanTree, type Finding } from './scan.ts';
import { rewriteDump, type DumpRewrite, type RewriteStats } from './rewrite.ts';
import { PassThrough } from 'node:stream';
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { baselinePrefix, isBaselineName } from './layout.ts';
import type { Manifest } from './types.ts';

const fail = errorFactory('backup', 'baseline');

/** Config files that hold credentials, per application; never part of a baseline. */
export const CONFIG_FILES: Record<string, string[]> = {
  wordpress: ['wp-config.php'],
  joomla: ['configuration.php'],
  drupal: ['sites/default/settings.php', 'sites/default/settings.local.php'],
  moodle: ['config.php'],
  any: [],
};
const ALWAYS_EXCLUDED = ['.env', '.htpasswd', '.git'];

export interface PublishBaselineOptions {
  client: S3Client;
  bucket: string;
  hostname: string;
  /** Baseline name: 1-64 lowercase letters, digits, hyphens. */
  name: string;
  app: keyof typeof CONFIG_FILES;
  /** The site's files and/or its database (at least one: in a fleet they are on different servers). */
  webroot?: {
    dir: string;
    exclude?: string[];
    /** Links to directories (the shared uploads) are followed: scanned and archived. */ dereference?: boolean;
  };
  database?: DatabaseSource;
  /** The deployment's secrets (DB password, S3 keys...), searched for literally. */
  knownSecrets?: string[];
  /** Where under the bucket (default `baselinePrefix(name)`: `baselines/<name>/`). */
  prefix?: string;
  /**
   * The dump's rewrite before the scan and upload: the deployment's domain replaced (by
   * `baseline.invalid`), password hashes removed. Without it a WordPress dump is refused (its
   * users' password hashes are credentials).
   */
  rewrite?: DumpRewrite;
  /** Filled with what the rewrite did. */
  rewriteStats?: RewriteStats;
}

/** The host name a baseline carries instead of its site's: a reserved name that never resolves. */
export const BASELINE_HOST = 'baseline.invalid';

export class SecretsFound extends Error {
  readonly code = 'SECRETS_FOUND';
  readonly exitCode = 2;
  readonly findings: Finding[];
  constructor(findings: Finding[]) {
    super(
      `[adt:backup] [baseline] refused: ${findings.length} secret(s) found; remove them and publish again:\n${formatFindings(findings)}`,
    );
    this.findings = findings;
  }
}

export async function publishBaseline(o: PublishBaselineOptions): Promise<Manifest> {
  if (!isBaselineName(o.name))
    throw fail('BAD_NAME', `baseline name "${o.name}": 1-64 lowercase letters, digits or hyphens`, { exitCode: 2 });
  if (!(o.app in CONFIG_FILES)) throw fail('BAD_APP', `app "${o.app}": one of ${Object.keys(CONFIG_FILES).join(', ')}`, { exitCode: 2 });
  if (!o.webroot && !o.database) throw fail('BAD_SOURCES', "a baseline needs the site's files, its database, or both", { exitCode: 2 });
  const exclude = [...ALWAYS_EXCLUDED, ...CONFIG_FILES[o.app]!, ...(o.webroot?.exclude ?? [])];
  const findings = o.webroot ? await scanTree(o.webroot.dir, { knownSecrets: o.knownSecrets, skip: exclude }) : [];
  if (o.webroot?.dereference) {
    // scanTree does not follow links: the directories they lead to (the shared uploads) are scanned as theirs.
    for (const e of await readdir(o.webroot.dir, { recursive: true, withFileTypes: true })) {
      if (!e.isSymbolicLink()) continue;
      const path = join(e.parentPath, e.name);
      const rel = relative(o.webroot.dir, path);
      if (exclude.some((x) => rel === x.replace(/^\.?\//, '')) || !(await stat(path).catch(() => null))?.isDirectory()) continue;
      for (const f of await scanTree(path, { knownSecrets: o.knownSecrets })) findings.push({ ...f, file: `${rel}/${f.file}` });
    }
  }
  const backups = new Backups({ client: o.client, bucket: o.bucket, hostname: o.hostname, prefix: o.prefix ?? baselinePrefix(o.name) });
  const stats = o.rewriteStats ?? { domains: 0, serialisedFixed: 0, hashes: 0 };
  const rewrite = () => (o.rewrite ? rewriteDump(o.rewrite, stats) : new PassThrough());
  const dumpFindings: Finding[] = [];
  if (findings.length) {
    // Already refused: scan the dump too (so every location is named at once) without uploading anything.
    if (o.database) {
      const argv = dumpArgv(o.database);
      const child = execa(argv[0]!, argv.slice(1), { buffer: false, stdin: 'ignore', reject: false });
      dumpFindings.push(...(await scanSqlDump(child.stdout!.pipe(rewrite()), 'database.sql', { knownSecrets: o.knownSecrets })));
      await child;
    }
    throw new SecretsFound([...findings, ...dumpFindings]);
  }
  try {
    return await backups.create(
      'manual',
      [
        ...(o.webroot ? [{ kind: 'webroot' as const, dir: o.webroot.dir, exclude, dereference: o.webroot.dereference }] : []),
        ...(o.database ? [o.database] : []),
      ],
      {
        app: o.app,
        transform: { database: rewrite },
        inspect: {
          database: async (plain) => {
            dumpFindings.push(...(await scanSqlDump(plain, 'database.sql', { knownSecrets: o.knownSecrets })));
            if (dumpFindings.length) throw new SecretsFound(dumpFindings);
          },
        },
      },
    );
  } catch (e) {
    if (dumpFindings.length) throw new SecretsFound(dumpFindings);
    throw e;
  }
}
