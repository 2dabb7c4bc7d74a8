/**
 * The local cloud's mail catcher until SIGTERM: `tsx mail-serve.ts <dir> <address> <port>`. It
 * stands in for an SMTP relay: every message is kept as a file (mode 0600) in <dir>, where a person
 * (or a test) reads the sign-in links the authentication server sends.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMailCatcher } from '@adt/role-auth/smtp';

const [dir, address, port] = process.argv.slice(2);
if (!dir || !address || !port) {
  process.stderr.write('usage: mail-serve.ts <dir> <address> <port>\n');
  process.exit(2);
}
mkdirSync(dir, { recursive: true, mode: 0o700 });
let n = 0;
const catcher = await startMailCatcher(address, Number(port), 100, (m) => {
  const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${++n}.eml`;
  writeFileSync(join(dir, name), `From: ${m.from}\nTo: ${m.to}\nSubject: ${m.subject}\n\n${m.text}`, { mode: 0o600 });
});
process.stdout.write(`${new Date().toISOString()} mail catcher on ${address}:${catcher.port}, messages in ${dir}\n`);
for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => void catcher.close().then(() => process.exit(0)));
