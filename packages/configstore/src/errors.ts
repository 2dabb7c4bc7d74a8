/**
 * Errors of @adt/configstore. Each has a stable `code`; messages never contain a stored value
 * (a value may be a secret), only keys, bucket names and the backend's own error text.
 */
import { AdtError, errorFactory } from '@adt/core';

export const ErrorCodes = {
  /** A key or prefix breaks the key rules (empty, `..`, leading `/`, too long, control characters). */
  INVALID_KEY: 'INVALID_KEY',
  /** A bucket name, site URL or build identifier cannot make a valid S3 bucket name. */
  INVALID_BUCKET_NAME: 'INVALID_BUCKET_NAME',
  /** A value cannot be stored (not JSON-serialisable) or an option is out of range. */
  INVALID_VALUE: 'INVALID_VALUE',
  /** The endpoint refused the credentials (unknown access key, bad signature). */
  AUTH_FAILED: 'AUTH_FAILED',
  /** The credentials are valid but not allowed to do this. */
  ACCESS_DENIED: 'ACCESS_DENIED',
  /** The deployment's bucket does not exist. */
  NO_SUCH_BUCKET: 'NO_SUCH_BUCKET',
  /** The endpoint could not be reached (refused, DNS, timeout) after retries. */
  UNREACHABLE: 'UNREACHABLE',
  /** Any other backend failure after retries. */
  BACKEND: 'BACKEND',
  /** A key the caller needs is absent (`ConfigStore.require`): the message says who writes it. */
  MISSING_KEY: 'MISSING_KEY',
  /** A secret key was read or written without the deployment's encryption key. */
  NO_SECRET_KEY: 'NO_SECRET_KEY',
  /** A secret could not be decrypted (wrong key, or tampered). */
  DECRYPT_FAILED: 'DECRYPT_FAILED',
  /** A stored value is not valid JSON (written by another tool?). */
  CORRUPT_VALUE: 'CORRUPT_VALUE',
  /** A lease was released or renewed by someone who does not hold it. */
  LEASE_NOT_OWNED: 'LEASE_NOT_OWNED',
  /** A lease expired and was taken by another owner before it could be renewed. */
  LEASE_LOST: 'LEASE_LOST',
  /** This process would exceed the configured writes-per-object budget of the backend. */
  WRITE_BUDGET_EXCEEDED: 'WRITE_BUDGET_EXCEEDED',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export const storeError = errorFactory('configstore');
export const s3Error = errorFactory('configstore', 's3');

export class PreconditionFailed extends AdtError {
  constructor(key: string) {
    super('PRECONDITION_FAILED', `conditional write to "${key}" lost: the object changed`, { pkg: 'configstore' });
  }
}
