/**
 * Entry of the operator helpers: `roles/build/<Command>` links here (status, ExecuteOn<Role>,
 * ConnectTo<Role>); the command and role come from the name it was called by.
 */
import { runMain, usage } from '@adt/role-common';
import { connectTo, executeOn, status } from './fleet-tools.ts';

const [invokedAs = '', ...args] = process.argv.slice(2);
const m = /^(status|ExecuteOn|ConnectTo)([A-Z][a-z]+)?$/.exec(invokedAs);
void runMain(async () => {
  if (!m) throw usage(`unknown helper "${invokedAs}": status, ExecuteOn<Role>, ConnectTo<Role>`);
  const role = m[2]?.toLowerCase();
  if (m[1] === 'status') return status(args);
  if (m[1] === 'ExecuteOn') return executeOn(role, args);
  return connectTo(role, args);
});
