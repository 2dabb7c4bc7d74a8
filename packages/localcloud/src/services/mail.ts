/**
 * The local cloud's mail relay: an SMTP server that accepts every message and keeps it, standing
 * in for the SMTP relay a real deployment names (the authentication server sends its sign-in links
 * through it). Messages are kept in memory (newest last, at most `keep`) and handed to `onMessage`
 * (the cloud's daemon writes each to a 0600 file where a person or a test reads it).
 */
import { createServer, type Server, type Socket } from 'node:net';

export interface CaughtMail {
  from: string;
  to: string;
  subject: string;
  text: string;
}

export interface MailCatcher {
  port: number;
  messages: CaughtMail[];
  close(): Promise<void>;
}

/** An SMTP server that accepts every message and keeps it (newest last), at most `keep`; `onMessage` sees each. */
export async function startMailCatcher(
  address = '127.0.0.1',
  port = 0,
  keep = 1000,
  onMessage?: (m: CaughtMail) => void,
): Promise<MailCatcher> {
  const messages: CaughtMail[] = [];
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
        else if (verb === 'MAIL') {
          from = /<([^>]*)>/.exec(line)?.[1] ?? '';
          socket.write('250 ok\r\n');
        } else if (verb === 'RCPT') {
          to = /<([^>]*)>/.exec(line)?.[1] ?? '';
          socket.write('250 ok\r\n');
        } else if (verb === 'DATA') {
          inData = true;
          socket.write('354 go on\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
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
