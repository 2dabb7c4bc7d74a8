/** Shapes of temporal backups: periods, parts, manifests. */

import type { PartKind } from './layout.ts';

export type { PartKind };

/** Every period a backup can be of: the scheduled ones, then `manual` (on demand) and `shutdown` (taken by destroy). */
export const PERIODS = ['hourly', 'daily', 'weekly', 'monthly', 'bimonthly', 'manual', 'shutdown'] as const;
export type Period = (typeof PERIODS)[number];

/** The periods that cron runs (BACKUP_SCHEDULE); `manual` and `shutdown` backups are taken on demand. */
export const SCHEDULED_PERIODS = ['hourly', 'daily', 'weekly', 'monthly', 'bimonthly'] as const satisfies readonly Period[];
export type ScheduledPeriod = (typeof SCHEDULED_PERIODS)[number];

/** Whether `s` is one of {@link PERIODS}. */
export function isPeriod(s: string): s is Period {
  return (PERIODS as readonly string[]).includes(s);
}

/** Whether `s` is one of {@link SCHEDULED_PERIODS}. */
export function isScheduledPeriod(s: string): s is ScheduledPeriod {
  return (SCHEDULED_PERIODS as readonly string[]).includes(s);
}

export interface PartInfo {
  kind: PartKind;
  /** Object key in the backup bucket. */
  key: string;
  /** Stored bytes (compressed, and encrypted when `encrypted`). */
  size: number;
  /** SHA-256 (hex) of the stored bytes, checked on read-back and before every restore. */
  sha256: string;
  /** Bytes before compression. */
  rawSize: number;
}

/** Written last: a backup without a complete manifest does not exist for restore or rotation. */
export interface Manifest {
  format: 1;
  id: string;
  period: Period;
  /** ISO 8601. */
  createdAt: string;
  sourceHost: string;
  /** wordpress, joomla, drupal, moodle, or another word the caller gives. */
  app?: string;
  /** Database engine of the database part. */
  engine?: 'mariadb' | 'postgres';
  encrypted: boolean;
  parts: PartInfo[];
  /** When the read-back verification passed (every manifest is of a verified backup). */
  verifiedAt: string;
}
