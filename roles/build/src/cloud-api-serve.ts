/**
 * Serves the local cloud's API for one build until SIGTERM: `tsx cloud-api-serve.ts <config.json>`.
 * The config file (0600, written by deploy) holds the cloud's options, the build, the address and
 * port, and the token: nothing secret on the command line.
 */
import { readFileSync } from 'node:fs';
import localDriver, { type LocalCloudOptions } from '@adt/providers/drivers/local';
import { serveLocalApi } from '@adt/providers';

interface Config {
  cloud: LocalCloudOptions;
  buildId: string;
  address: string;
  port: number;
  token: string;
}
const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: cloud-api-serve.ts <config.json>\n');
  process.exit(2);
}
const c = JSON.parse(readFileSync(file, 'utf8')) as Config;
const api = await serveLocalApi({
  compute: localDriver(c.cloud),
  address: c.address,
  port: c.port,
  token: c.token,
  buildId: c.buildId,
  roles: ['webserver'],
});
process.stdout.write(`${new Date().toISOString()} local cloud API for build ${c.buildId} on ${api.url}\n`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void api.close().then(() => process.exit(0)));
