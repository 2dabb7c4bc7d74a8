/** Shapes of temporal backups: periods, parts, manifests. */

export const PERIODS = ['hourly', 'daily', 'weekly', 'monthly', 'bimonthly', 'manual', 'shutdown'] as const;
export type Period = (typeof PERIODS)[number];

export type PartKind = 'webroot' | 'database';

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
