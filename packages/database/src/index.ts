export { provisionSql, hostPattern, sqlString, validateSpec } from './sql.ts';
export type { ProvisionSpec } from './sql.ts';
