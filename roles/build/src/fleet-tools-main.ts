/**
 * Entry of the operator helpers: `roles/build/<Command>` links here (status, ExecuteOn<Role>,
 * ConnectTo<Role>, Backup, Restore, ListBackups, AdjustScaling, PublishBaseline, AppAdmin, RenewCertificate); the command and role come from the name it was called by.
 */
import { runMain, usage } from '@adt/role-common';
import {
  adjustScaling,
  appAdmin,
  publishBaselineFleet,
  backupNow,
  connectTo,
  executeOn,
  listBackups,
  restoreFleet,
  status,
} from './fleet-tools.ts';

// The SDK's notice about Node versions is not the operator's to act on.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const [invokedAs = '', ...args] = process.argv.slice(2);
const m =
  /^(status|ExecuteOn|ConnectTo|Backup|Restore|ListBackups|AdjustScaling|PublishBaseline|AppAdmin|RenewCertificate)([A-Z][a-z]+)?$/.exec(
    invokedAs,
  );
void runMain(async () => {
  if (!m)
    throw usage(
      `unknown helper "${invokedAs}": status, ExecuteOn<Role>, ConnectTo<Role>, Backup, Restore, ListBackups, AdjustScaling, PublishBaseline, AppAdmin, RenewCertificate`,
    );
  const role = m[2]?.toLowerCase();
  if (m[1] === 'status') return status(args);
  if (m[1] === 'Backup') return backupNow(args);
  if (m[1] === 'AdjustScaling') return adjustScaling(args);
  if (m[1] === 'PublishBaseline') return publishBaselineFleet(args);
  if (m[1] === 'AppAdmin') return appAdmin(args);
  if (m[1] === 'RenewCertificate') return (await import('./tls.ts')).renewCertificate(args);
  if (m[1] === 'Restore') return restoreFleet(args);
  if (m[1] === 'ListBackups') return listBackups(args);
  if (m[1] === 'ExecuteOn') return executeOn(role, args);
  return connectTo(role, args);
});
