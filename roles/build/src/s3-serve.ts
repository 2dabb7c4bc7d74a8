/** Runs the embedded S3 server until SIGTERM/SIGINT: `tsx s3-serve.ts <dataDir> <address> <port>`. */
import { startEmbeddedS3 } from '@adt/configstore/embedded-s3';

const [directory, address, port] = process.argv.slice(2);
if (!directory || !address || !port) {
  process.stderr.write('usage: s3-serve.ts <dataDir> <address> <port>\n');
  process.exit(2);
}
const s3 = await startEmbeddedS3({ directory, address, port: Number(port) });
process.stdout.write(`${new Date().toISOString()} embedded S3 listening on ${s3.endpoint}, data in ${directory}\n`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    void s3.stop().then(() => process.exit(0));
  });
}
