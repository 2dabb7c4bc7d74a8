/** Rewriting a dump as it streams: the domain (PHP-serialised lengths fixed, checked by PHP itself) and password hashes. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { execa } from 'execa';
import { rewriteDump, rewriteLine, type RewriteStats } from '../src/rewrite.ts';

const test = suite('dump rewrite');
const FROM = 'www.shop.example';
const TO = 'baseline.invalid';

/** What PHP's serialize() gives, escaped as mariadb-dump writes it inside a string literal. */
async function phpSerialised(value: unknown): Promise<string> {
  const r = await execa('php', ['-r', 'echo serialize(json_decode(stream_get_contents(STDIN), true));'], { input: JSON.stringify(value) });
  return r.stdout.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/'/g, "\\'");
}

async function phpReads(escaped: string): Promise<unknown> {
  const raw = escaped.replace(/\\(["'\\])/g, '$1');
  const r = await execa('php', ['-r', '$v = @unserialize(stream_get_contents(STDIN)); echo $v === false ? "FAILED" : json_encode($v);'], {
    input: raw,
  });
  return r.stdout === 'FAILED' ? 'FAILED' : JSON.parse(r.stdout);
}

test('the domain is replaced everywhere; serialised strings keep lengths PHP accepts', async () => {
  const value = { home: `https://${FROM}/`, links: [`https://${FROM}/a`, `//${FROM}/b?x=${FROM}`], note: 'it\'s "quoted"', n: 3 };
  const ser = await phpSerialised(value);
  const line = `INSERT INTO \`wp_options\` VALUES (1,'siteurl','https://${FROM}','yes'),(2,'widget','${ser}','yes');`;
  const stats: RewriteStats = { domains: 0, serialisedFixed: 0, hashes: 0 };
  const out = rewriteLine(line, { domains: [{ from: FROM, to: TO }] }, stats);
  assert.not.ok(out.includes(FROM));
  assert.is(stats.domains, 5);
  assert.is(stats.serialisedFixed, 3);
  const rewritten = /'widget','(.*)','yes'/.exec(out)![1]!;
  assert.equal(await phpReads(rewritten), JSON.parse(JSON.stringify(value).split(FROM).join(TO)), 'PHP reads the rewritten value');
  // And back again, as a deploy from the baseline does.
  const back = rewriteLine(out, { domains: [{ from: TO, to: FROM }] });
  assert.is(back, line);
});

test('password hashes are removed, the rows stay', () => {
  const line =
    "INSERT INTO `wp_users` VALUES (1,'admin','$P$BZlPX7NIx8MYpXokBW2AGsN7i.aUOt0','admin')," +
    "(2,'ed','$wp$2y$10$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0','ed');";
  const stats: RewriteStats = { domains: 0, serialisedFixed: 0, hashes: 0 };
  const out = rewriteLine(line, { scrubPasswordHashes: true }, stats);
  assert.is(out, "INSERT INTO `wp_users` VALUES (1,'admin','','admin'),(2,'ed','','ed');");
  assert.is(stats.hashes, 2);
});

test('as a stream: lines split anywhere across chunks, multi-byte characters too', async () => {
  const input = `a https://${FROM}/é\nb ${FROM}\nc`;
  const bytes = Buffer.from(input);
  const chunks = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
  const out = await text(Readable.from(chunks).pipe(rewriteDump({ domains: [{ from: FROM, to: TO }] })));
  assert.is(out, `a https://${TO}/é\nb ${TO}\nc`);
  assert.throws(() => rewriteDump({ domains: [{ from: 'bad name;', to: TO }] }), /host names only/);
});

test.run();
