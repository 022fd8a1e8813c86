import { connect } from 'node:net';

export type FourLetterWord = 'ruok' | 'srvr' | 'mntr' | 'stat' | 'cons' | 'wchp' | 'wchc';

/**
 * Sends one ZooKeeper four-letter word to 127.0.0.1:`port` and resolves with the whole
 * answer (the server closes the connection after it). Rejects when the connection fails
 * or no complete answer arrives within `timeoutMs` — a paused server accepts the
 * connection (the kernel does) but never answers.
 */
export function fourLetterWord(port: number, word: FourLetterWord, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`four-letter word ${word} to 127.0.0.1:${port}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(word));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`four-letter word ${word} to 127.0.0.1:${port}: ${err.message}`));
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/** The `Mode:` line of a `srvr` answer: leader, follower, standalone, or undefined when not serving. */
export function serverMode(srvrAnswer: string): string | undefined {
  return /^Mode: (\w+)$/m.exec(srvrAnswer)?.[1];
}
