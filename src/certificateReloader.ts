import { X509Certificate } from 'node:crypto';
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
  /** Milliseconds since the epoch; Date.now unless a test drives the time. */
  clock?: () => number;
}

/** The validity period of a certificate (X.509 notBefore and notAfter). */
export interface CertificateValidity {
  notBefore: Date;
  notAfter: Date;
}

/** What /readyz needs to know: ready, or not with the reason to show. */
export interface CertificateStatus {
  ready: boolean;
  reason?: string;
}

/** The validity of the first certificate of a PEM file (the served one; a chain may follow). */
export function certificateValidity(certPem: string): CertificateValidity {
  const x509 = new X509Certificate(certPem);
  return { notBefore: new Date(x509.validFrom), notAfter: new Date(x509.validTo) };
}

/**
 * Why a certificate cannot be served at `now`, or undefined when it can. The period is
 * inclusive at both ends (RFC 5280); X.509 times have whole seconds.
 */
export function validityProblem(validity: CertificateValidity, now: number, certFile: string): string | undefined {
  const period = `valid from ${validity.notBefore.toISOString()} to ${validity.notAfter.toISOString()}`;
  if (now > validity.notAfter.getTime()) return `the certificate in ${certFile} expired at ${validity.notAfter.toISOString()} (${period})`;
  if (now < validity.notBefore.getTime()) return `the certificate in ${certFile} is not valid yet, not before ${validity.notBefore.toISOString()} (${period})`;
  return undefined;
}

/** Ready once a pair is loaded, and while the loaded certificate has not expired. */
export function certificateStatus(loaded: CertificateValidity | undefined, now: number): CertificateStatus {
  if (loaded === undefined) return { ready: false, reason: 'no serving certificate loaded' };
  if (now > loaded.notAfter.getTime()) {
    return { ready: false, reason: `the serving certificate expired at ${loaded.notAfter.toISOString()}; the certificates job has not renewed it` };
  }
  return { ready: true };
}

/**
 * Keeps the webhook's serving certificate current without a restart: watches the
 * directories of --tls-cert and --tls-key (a Secret volume swaps a symlink, which a
 * watch on the file itself would not see), polls as a fallback, and installs a new
 * pair only after it is checked: the key must match the certificate, and the
 * certificate must be valid now (not expired, not before its notBefore). A bad pair is
 * logged and counted as rejected, and the old one stays.
 */
export class CertificateReloader {
  private current: CertificatePairPem | undefined;
  private currentValidity: CertificateValidity | undefined;
  private rejected = '';
  /** A rejected pair is not read again until the files change, or until this time (a pair not valid yet). */
  private rejectedUntil = Infinity;
  private expiryLogged = false;
  private readonly watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;

  constructor(private readonly opts: CertificateReloaderOptions) {}

  /** True once a valid pair is installed (it stays true when that certificate expires later; see status). */
  get loaded(): boolean {
    return this.current !== undefined;
  }

  /**
   * For /readyz: not ready while no pair is loaded ("no serving certificate loaded"),
   * or once the loaded certificate has expired ("the serving certificate expired at
   * <ISO time>; the certificates job has not renewed it"). `now` in ms since the epoch,
   * the clock option by default.
   */
  status(now: number = this.now()): CertificateStatus {
    return certificateStatus(this.currentValidity, now);
  }

  private now(): number {
    return (this.opts.clock ?? Date.now)();
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
    const now = this.now();
    if (this.current && pair.cert === this.current.cert && pair.key === this.current.key) {
      this.logExpiry(now);
      return;
    }
    const fingerprint = pair.cert + pair.key;
    if (fingerprint === this.rejected && now < this.rejectedUntil) return;
    let validity: CertificateValidity;
    try {
      createSecureContext(pair);
      validity = certificateValidity(pair.cert);
    } catch (err) {
      // Often a half-done update (new certificate, old key); the next change event retries.
      this.reject(fingerprint, Infinity);
      this.opts.logger.error(
        { err: (err as Error).message, certFile: this.opts.certFile, keyFile: this.opts.keyFile },
        this.current ? 'new certificate/key pair is invalid; keeping the previous one' : 'certificate/key pair is invalid; not ready',
      );
      return;
    }
    const problem = validityProblem(validity, now, this.opts.certFile);
    if (problem !== undefined) {
      // An expired pair never becomes valid; one not valid yet is tried again at its notBefore.
      this.reject(fingerprint, now < validity.notBefore.getTime() ? validity.notBefore.getTime() : Infinity);
      this.opts.logger.error(
        { certFile: this.opts.certFile, keyFile: this.opts.keyFile, notBefore: validity.notBefore.toISOString(), notAfter: validity.notAfter.toISOString(), now: new Date(now).toISOString() },
        `${problem}; ${this.current ? 'keeping the previous certificate' : 'not ready'}`,
      );
      return;
    }
    try {
      this.opts.apply(pair);
    } catch (err) {
      this.reject(fingerprint, Infinity);
      this.opts.logger.error(
        { err: (err as Error).message, certFile: this.opts.certFile, keyFile: this.opts.keyFile },
        this.current ? 'new certificate/key pair is invalid; keeping the previous one' : 'certificate/key pair is invalid; not ready',
      );
      return;
    }
    const first = this.current === undefined;
    this.current = pair;
    this.currentValidity = validity;
    this.rejected = '';
    this.rejectedUntil = Infinity;
    this.expiryLogged = false;
    this.opts.onResult?.('loaded');
    this.opts.logger.info(
      { certFile: this.opts.certFile, notAfter: validity.notAfter.toISOString() },
      first ? 'serving certificate loaded' : 'serving certificate reloaded',
    );
  }

  private reject(fingerprint: string, until: number): void {
    this.rejected = fingerprint;
    this.rejectedUntil = until;
    this.opts.onResult?.('rejected');
  }

  /** Once per loaded certificate: it expired and no new pair came (it is still served, there is no other). */
  private logExpiry(now: number): void {
    const reason = certificateStatus(this.currentValidity, now).reason;
    if (reason === undefined || this.expiryLogged) return;
    this.expiryLogged = true;
    this.opts.logger.error({ certFile: this.opts.certFile, notAfter: this.currentValidity?.notAfter.toISOString() }, `${reason}; /readyz reports not ready`);
  }
}
