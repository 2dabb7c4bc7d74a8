/**
 * Where a site's backups live in its backup bucket, in one place:
 *
 *   <part>/<period>/<id>/...                 temporal backups of each part (`database/`, `webroot/`)
 *   baselines/<name>/<part>/manual/<id>/...  a baseline's parts (published by PublishBaseline)
 *
 * and how a baseline is named by the operator: `baseline:NAME` (in this site's backup bucket) or
 * `baseline:BUCKET/NAME` (another site's) in RESTORE_FROM, `NAME` or `BUCKET/NAME` in
 * `Restore --baseline`.
 */

/** The parts of a site's backups: its database and its files (each backed up by its own server). */
export const PARTS = ['database', 'webroot'] as const;
export type PartKind = (typeof PARTS)[number];

/** A baseline's name: 1-64 lowercase letters, digits or hyphens, neither first nor last a hyphen. */
const NAME = /[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?/.source;
/** A bucket's name (S3's rules, loosely: 3-63 lowercase letters, digits, dots or hyphens). */
const BUCKET = /[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.source;
const NAME_RE = new RegExp(`^${NAME}$`);
const REF_RE = new RegExp(`^(?:(${BUCKET})/)?(${NAME})$`);

/** A baseline as the operator names it: its name, and the bucket it is in when not this site's. */
export interface BaselineRef {
  name: string;
  /** The backup bucket of another site; absent: this site's. */
  bucket?: string;
}

/** The key prefix of a part's temporal backups: `database/` or `webroot/`. */
export function backupPrefix(part: PartKind): string {
  return `${part}/`;
}

/**
 * The key prefix of a baseline (`baselines/<name>/`), or of one of its parts
 * (`baselines/<name>/<part>/`): the site's roles publish and restore each part under its own.
 */
export function baselinePrefix(name: string, part?: PartKind): string {
  return part ? `baselines/${name}/${part}/` : `baselines/${name}/`;
}

/** Whether `name` can name a baseline (1-64 lowercase letters, digits or hyphens). */
export function isBaselineName(name: string): boolean {
  return NAME_RE.test(name);
}

/** Parses `NAME` or `BUCKET/NAME` (Restore --baseline); null when it is neither. */
export function parseBaselineRef(ref: string): BaselineRef | null {
  const m = REF_RE.exec(ref);
  if (!m) return null;
  return m[1] ? { bucket: m[1], name: m[2]! } : { name: m[2]! };
}

/** Parses `baseline:NAME` or `baseline:BUCKET/NAME` (RESTORE_FROM); null when it is neither. */
export function parseBaselineSpec(spec: string): BaselineRef | null {
  return spec.startsWith('baseline:') ? parseBaselineRef(spec.slice('baseline:'.length)) : null;
}

/** The `NAME` or `BUCKET/NAME` text of a baseline (what Restore --baseline takes). */
export function formatBaselineRef(ref: BaselineRef): string {
  return ref.bucket ? `${ref.bucket}/${ref.name}` : ref.name;
}
