export { ensureCa, issueCertificate, subjectAltName, caArgv } from './tls.ts';
export type { CertificateAuthority, IssuedCertificate } from './tls.ts';
export { nginxConfig, writeNginxConfig, startOrReload, stopNginx } from './nginx.ts';
export type { NginxOptions, SiteOptions } from './nginx.ts';
export { phpFpmConfig, writePhpFpmConfig, startOrReloadPhpFpm, stopPhpFpm } from './phpfpm.ts';
export type { PhpFpmOptions } from './phpfpm.ts';
export { wordpressConfigPhp, writeWordPressConfig, configName, generateSalts, phpString, SALT_NAMES } from './wordpress.ts';
export type { WordPressConfig } from './wordpress.ts';
