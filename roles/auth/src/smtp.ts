/**
 * Mail for the authentication server: a minimal SMTP client (EHLO, MAIL FROM, RCPT TO, DATA) for a
 * relay on the private network, and a mail catcher (an SMTP server that keeps what it receives) that
 * stands in for the relay in the local cloud and in tests. Plain SMTP only: a relay reached over the
 * internet needs STARTTLS and authentication, which come with the real clouds.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

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

export interface MailCatcher {
  port: number;
  messages: Mail[];
  close(): Promise<void>;
}

/** An SMTP server that accepts every message and keeps it (newest last), at most `keep`; `onMessage` sees each. */
export async function startMailCatcher(address = '127.0.0.1', port = 0, keep = 1000, onMessage?: (m: Mail) => void): Promise<MailCatcher> {
  const messages: Mail[] = [];
  const server: Server = createServer((socket: Socket) => {
    let buffer = '';
    let inData = false;
    let from = '';
    let to = '';
    socket.setTimeout(30_000, () => socket.destroy());
    socket.write('220 adt-mail-catcher\r\n');
    socket.on('data', (d) => {
      buffer += d.toString('utf8');
      if (buffer.length > 1_000_000) return socket.destroy();
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          const raw = buffer.slice(0, end).replace(/^\.\./gm, '.');
          buffer = buffer.slice(end + 5);
          inData = false;
          const [head = '', ...rest] = raw.split('\r\n\r\n');
          const subject = /^Subject: (.*)$/im.exec(head)?.[1] ?? '';
          const mail = { from, to, subject, text: rest.join('\r\n\r\n').replace(/\r\n/g, '\n') };
          messages.push(mail);
          onMessage?.(mail);
          if (messages.length > keep) messages.shift();
          socket.write('250 kept\r\n');
          continue;
        }
        const i = buffer.indexOf('\r\n');
        if (i < 0) return;
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') socket.write('250 adt-mail-catcher\r\n');
        else if (verb === 'MAIL') ((from = /<([^>]*)>/.exec(line)?.[1] ?? ''), socket.write('250 ok\r\n'));
        else if (verb === 'RCPT') ((to = /<([^>]*)>/.exec(line)?.[1] ?? ''), socket.write('250 ok\r\n'));
        else if (verb === 'DATA') ((inData = true), socket.write('354 go on\r\n'));
        else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('502 not here\r\n');
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
