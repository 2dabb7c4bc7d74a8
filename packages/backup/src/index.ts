export { Backups, tarArgv, dumpArgv } from './backups.ts';
export type { BackupsOptions, Source, WebrootSource, DatabaseSource, RestoreTargets, CreateMeta } from './backups.ts';
export { PERIODS } from './types.ts';
export type { Period, Manifest, PartInfo, PartKind } from './types.ts';
export { encryptStream, decryptStream } from './crypto-stream.ts';
export { scanTree, scanSqlDump, scanLines, formatFindings } from './scan.ts';
export type { Finding, ScanOptions } from './scan.ts';
export { publishBaseline, SecretsFound, CONFIG_FILES } from './baseline.ts';
export type { PublishBaselineOptions } from './baseline.ts';
