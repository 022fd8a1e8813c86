import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';

export interface CertificatePairPem {
  cert: string;
  key: string;
}

export interface CertificateReloaderOptions {
  certFile: string;
  keyFile: string;
  /** Installs a checked pair, e.g. `pair => server.setSecureContext(pair)`. */
  apply: (pair: CertificatePairPem) => void;
  logger: Logger;
  /** Re-reads the files this often too: fs.watch misses changes on some file systems. */
  pollIntervalMs?: number;
  /** Lets the first event of a two-file update (cert, then key) settle before reading. */
  settleMs?: number;
  onResult?: (result: 'loaded' | 'rejected') => void;
}

/**
 * Keeps the webhook's serving certificate current without a restart: watches the
 * directories of --tls-cert and --tls-key (a Secret volume swaps a symlink, which a
 * watch on the file itself would not see), polls as a fallback, and installs a new
 * pair only after it is checked; a bad pair is logged and the old one stays.
 */
export class CertificateReloader {
  private current: CertificatePairPem | undefined;
  private rejected = '';
  private readonly watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;

  constructor(private readonly opts: CertificateReloaderOptions) {}

  /** True once a valid pair is installed. */
  get loaded(): boolean {
    return this.current !== undefined;
  }

  /** Loads the files now and starts watching; returns whether a pair is installed. */
  start(): boolean {
    this.reload();
    for (const dir of new Set([dirname(this.opts.certFile), dirname(this.opts.keyFile)])) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.scheduleReload());
        watcher.on('error', (err) => this.opts.logger.warn({ err, dir }, 'certificate directory watch failed; polling only'));
        this.watchers.push(watcher);
      } catch (err) {
        this.opts.logger.warn({ err, dir }, 'cannot watch the certificate directory; polling only');
      }
    }
    this.poll = setInterval(() => this.reload(), this.opts.pollIntervalMs ?? 10_000);
    this.poll.unref();
    return this.loaded;
  }

  stop(): void {
    for (const watcher of this.watchers.splice(0)) watcher.close();
    clearInterval(this.poll);
    clearTimeout(this.settle);
  }

  private scheduleReload(): void {
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.reload(), this.opts.settleMs ?? 100);
    this.settle.unref();
  }

  /** Reads both files; installs them when they differ from the current pair and form a valid pair. */
  reload(): void {
    let pair: CertificatePairPem;
    try {
      pair = { cert: readFileSync(this.opts.certFile, 'utf8'), key: readFileSync(this.opts.keyFile, 'utf8') };
    } catch (err) {
      if (!this.current) this.opts.logger.warn({ err: (err as Error).message }, 'serving certificate not readable yet; not ready');
      return;
    }
    if (this.current && pair.cert === this.current.cert && pair.key === this.current.key) return;
    const fingerprint = pair.cert + pair.key;
    if (fingerprint === this.rejected) return;
    try {
      createSecureContext(pair);
      this.opts.apply(pair);
    } catch (err) {
      // Often a half-done update (new certificate, old key); the next change event retries.
      this.rejected = fingerprint;
      this.opts.onResult?.('rejected');
      this.opts.logger.error(
        { err: (err as Error).message, certFile: this.opts.certFile, keyFile: this.opts.keyFile },
        this.current ? 'new certificate/key pair is invalid; keeping the previous one' : 'certificate/key pair is invalid; not ready',
      );
      return;
    }
    const first = this.current === undefined;
    this.current = pair;
    this.rejected = '';
    this.opts.onResult?.('loaded');
    this.opts.logger.info({ certFile: this.opts.certFile }, first ? 'serving certificate loaded' : 'serving certificate reloaded');
  }
}
