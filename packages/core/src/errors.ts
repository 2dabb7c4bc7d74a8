/**
 * The error shape every @adt package uses: a stable string `code`, an optional `cause`,
 * and a message prefixed `[adt:<pkg>] [<driver>]`. `isAdtError` relies on a global symbol
 * brand, not on `instanceof`, so it works across copies of a package.
 */

const BRAND = Symbol.for('adt.error');

export interface AdtErrorOptions {
  /** The package that raised it, e.g. `configstore`. */
  pkg: string;
  /** The driver or component, e.g. `s3` or `local`. */
  driver?: string;
  cause?: unknown;
  /** Exit code a role should use: 2 for bad input, 1 for failures (the default). */
  exitCode?: 1 | 2;
}

export class AdtError extends Error {
  readonly code: string;
  readonly exitCode: 1 | 2;
  readonly pkg: string;
  readonly driver: string | undefined;

  constructor(code: string, message: string, options: AdtErrorOptions) {
    const prefix = `[adt:${options.pkg}]` + (options.driver ? ` [${options.driver}]` : '');
    super(`${prefix} ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AdtError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
    this.pkg = options.pkg;
    this.driver = options.driver;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** True for any error raised by an @adt package (any copy of it). */
export function isAdtError(e: unknown): e is AdtError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

/**
 * Returns a factory bound to one package and driver, so call sites stay short:
 * `const fail = errorFactory('firewall', 'iptables'); throw fail('APPLY_FAILED', '...')`.
 */
export function errorFactory(pkg: string, driver?: string) {
  return (code: string, message: string, extra: Omit<AdtErrorOptions, 'pkg'> = {}) =>
    new AdtError(code, message, { pkg, driver, ...extra });
}
