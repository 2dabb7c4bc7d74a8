export { ensureCa, issueCertificate, subjectAltName, caArgv } from './tls.ts';
export type { CertificateAuthority, IssuedCertificate } from './tls.ts';
export { nginxConfig, writeNginxConfig, startOrReload, stopNginx } from './nginx.ts';
export type { NginxOptions } from './nginx.ts';
export { checkSite } from './site.ts';
export type { SiteOptions, CheckedSite } from './site.ts';
export { phpFpmConfig, writePhpFpmConfig, startOrReloadPhpFpm, stopPhpFpm } from './phpfpm.ts';
export type { PhpFpmOptions } from './phpfpm.ts';
export {
  wordpressConfigPhp,
  writeWordPressConfig,
  configName,
  generateSalts,
  checkSalts,
  phpString,
  SALT_NAMES,
  wordpressFirstUserSql,
  wordpressSetPasswordSql,
} from './wordpress.ts';
export type { WordPressConfig } from './wordpress.ts';
export { apacheConfig, writeApacheConfig, startOrReloadApache, stopApache } from './apache.ts';
export type { ApacheOptions } from './apache.ts';
export { httpsGet } from './probe.ts';
export {
  RELEASE_ID,
  checkId as checkReleaseId,
  codeDir,
  currentLink,
  currentRelease,
  fileDigest,
  installRelease,
  makeCurrent,
  newReleaseId,
  packRelease,
  pruneReleases,
  releaseDir,
  releasesDir,
  stockCode,
  uploadsDir,
} from './release.ts';
export type { SiteLayout, PackedRelease, InstallOptions } from './release.ts';
