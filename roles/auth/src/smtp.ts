/**
 * Mail for the authentication server: a minimal SMTP client (EHLO, MAIL FROM, RCPT TO, DATA) for a
 * relay on the private network (the local cloud's is its mail catcher, @adt/localcloud). Plain SMTP
 * only: a relay reached over the internet needs STARTTLS and authentication, which come with the
 * real clouds.
 */
import { createConnection } from 'node:net';

export interface Mail {
  from: string;
  to: string;
  subject: string;
  text: string;
}

const ADDRESS = /^[^\s<>@",;]{1,64}@[a-z0-9.-]{1,253}$/i;

/** Sends one message; rejects with the server's reply when a step is refused. Bounded by `timeoutMs`. */
export function sendMail(relay: { host: string; port: number }, m: Mail, timeoutMs = 10_000): Promise<void> {
  for (const [field, a] of [
    ['from', m.from],
    ['to', m.to],
  ] as const)
    if (!ADDRESS.test(a)) return Promise.reject(new Error(`mail ${field}: "${a}" is not an address`));
  if (/[\r\n]/.test(m.subject)) return Promise.reject(new Error('mail subject: one line'));
  // Dot-stuffing, CRLF line ends.
  const body = m.text.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
  const steps: [string | null, number][] = [
    [null, 220],
    ['EHLO adt-auth', 250],
    [`MAIL FROM:<${m.from}>`, 250],
    [`RCPT TO:<${m.to}>`, 250],
    ['DATA', 354],
    [`From: <${m.from}>\r\nTo: <${m.to}>\r\nSubject: ${m.subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n.`, 250],
    ['QUIT', 221],
  ];
  return new Promise((resolve, reject) => {
    const socket = createConnection(relay);
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`SMTP relay ${relay.host}:${relay.port} timed out`)));
    let buffer = '';
    let step = 0;
    socket.on('error', reject);
    socket.on('data', (d) => {
      buffer += d.toString('utf8');
      // A reply is complete at a line "NNN text" (not "NNN-text").
      const m2 = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n$/.exec(buffer);
      if (!m2) return;
      const code = Number(m2[1]);
      buffer = '';
      if (code !== steps[step]![1]) {
        socket.destroy();
        return reject(new Error(`SMTP relay refused ${step === 0 ? 'the connection' : steps[step]![0]!.split(' ')[0]}: ${code}`));
      }
      step++;
      if (step === steps.length) {
        socket.end();
        return resolve();
      }
      socket.write(`${steps[step]![0]}\r\n`);
    });
  });
}
