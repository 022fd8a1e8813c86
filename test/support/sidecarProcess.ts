import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LeaderDocument } from '../../sidecar/leaderFile.js';
import { parseLeaderDocument } from './leaderHistory.js';
import { trackChildProcess } from './processRegistry.js';
import { zkleaderBin as zkleader } from './repoRoot.js';

export interface SidecarProcessOptions {
  readonly zookeeper: string;
  /** '' for a config-only sidecar. */
  readonly election: string;
  readonly podName: string;
  readonly namespace?: string;
  /** Default "4s", the shortest allowed, to keep tests fast. */
  readonly sessionTimeout?: string;
  /** Label through the API at this kubeconfig; without it the sidecar runs with --no-label. */
  readonly kubeconfig?: string;
  readonly extraArgs?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * One `bin/zkleader sidecar` child process with a temporary directory as its volume and
 * an ephemeral HTTP port (found from its "sidecar started" log line).
 */
export class SidecarProcess {
  readonly exited: Promise<Exit>;
  private exitInfo: Exit | null = null;
  private logText = '';

  private constructor(
    readonly podName: string,
    readonly election: string,
    readonly namespace: string,
    readonly dir: string,
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    this.exited = once(child, 'exit').then(([code, signal]) => {
      this.exitInfo = { code: code as number | null, signal: signal as NodeJS.Signals | null };
      return this.exitInfo;
    });
  }

  static async start(options: SidecarProcessOptions): Promise<SidecarProcess> {
    const dir = mkdtempSync(join(tmpdir(), `zkleader-sidecar-${options.podName}-`));
    const args = [
      'sidecar',
      '--zookeeper',
      options.zookeeper,
      // An empty election: a config-only sidecar (--configs in extraArgs).
      ...(options.election ? ['--election', options.election] : []),
      '--namespace',
      options.namespace ?? 'test',
      '--pod-name',
      options.podName,
      '--pod-ip',
      '127.0.0.1',
      '--pod-uid',
      `uid-${options.podName}`,
      '--dir',
      dir,
      '--session-timeout',
      options.sessionTimeout ?? '4s',
      '--listen',
      '127.0.0.1:0',
      ...(options.kubeconfig ? ['--kubeconfig', options.kubeconfig] : ['--no-label']),
      ...(options.extraArgs ?? []),
    ];
    const child = spawn(zkleader, args, {
      env: { PATH: process.env.PATH, ZKLEADER_LOG_LEVEL: 'info', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackChildProcess(child, `zkleader sidecar ${options.podName}`);
    let log = '';
    child.stderr?.setEncoding('utf8');
    child.stdout?.setEncoding('utf8');
    const port = await new Promise<number>((resolve, reject) => {
      const onData = (chunk: string) => {
        log += chunk;
        const m = /"port":(\d+),.*"msg":"sidecar started"/.exec(log);
        if (m?.[1]) {
          child.stderr?.off('data', onData);
          resolve(Number(m[1]));
        }
      };
      child.stderr?.on('data', onData);
      child.once('exit', (code) => reject(new Error(`sidecar ${options.podName} exited with ${code} before it started: ${log}`)));
    });
    const sidecar = new SidecarProcess(options.podName, options.election, options.namespace ?? 'test', dir, child, port);
    sidecar.logText = log;
    child.stderr?.on('data', (chunk: string) => (sidecar.logText += chunk));
    child.stdout?.on('data', (chunk: string) => (sidecar.logText += `[stdout] ${chunk}`));
    return sidecar;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Still running (a paused process counts as running). */
  get alive(): boolean {
    return this.exitInfo === null;
  }

  get logs(): string {
    return this.logText;
  }

  /**
   * The leader.json on disk, or null before the first write. A file that exists but is not a
   * leader document (torn, malformed) throws: the sidecar writes atomically, so that is a bug
   * to report, not a "not leader yet" to wait through.
   */
  document(): LeaderDocument | null {
    let text: string;
    try {
      text = readFileSync(join(this.dir, 'leader.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      return parseLeaderDocument(text);
    } catch (err) {
      throw new Error(`${this.podName}: leader.json is no leader document: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The `leader` file, or null before the first write. */
  leaderFile(): string | null {
    try {
      return readFileSync(join(this.dir, 'leader'), 'utf8');
    } catch {
      return null;
    }
  }

  /** Polls leader.json every 20 ms until `predicate` holds. */
  async waitFor(predicate: (doc: LeaderDocument) => boolean, timeoutMs: number, what: string): Promise<LeaderDocument> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const doc = this.document();
      if (doc && predicate(doc)) return doc;
      if (Date.now() > deadline) throw new Error(`${this.podName}: ${what} not seen within ${timeoutMs} ms; leader.json: ${JSON.stringify(doc)}`);
      await sleep(20);
    }
  }

  async http(path: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://127.0.0.1:${this.port}${path}`, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, body: await res.text() };
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** SIGTERM and wait for the exit. */
  async stop(): Promise<Exit> {
    this.signal('SIGTERM');
    return this.exited;
  }

  async kill(): Promise<Exit> {
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    return this.exited;
  }

  /** Kills what still runs and removes the directory; for afterEach/afterAll. */
  async close(): Promise<void> {
    if (this.alive) await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The one sidecar whose file says it leads, once all files agree on that leader and epoch. */
export async function waitForAgreement(sidecars: readonly SidecarProcess[], timeoutMs: number): Promise<{ leader: SidecarProcess; epoch: string }> {
  const deadline = Date.now() + timeoutMs;
  let seen: string;
  for (;;) {
    const docs = sidecars.map((s) => s.document());
    seen = JSON.stringify(docs.map((d) => d && { self: d.self.pod, state: d.state, leader: d.leader?.pod, epoch: d.epoch, members: d.members.length }));
    const leaders = sidecars.filter((_, i) => docs[i]?.isLeader);
    const first = docs[0];
    if (
      leaders.length === 1 &&
      first &&
      docs.every((d) => d && d.state !== 'unknown' && d.leader?.pod === leaders[0]?.podName && d.epoch === first.epoch && d.members.length === sidecars.length)
    ) {
      return { leader: leaders[0] as SidecarProcess, epoch: first.epoch as string };
    }
    if (Date.now() > deadline) throw new Error(`no agreement on one leader within ${timeoutMs} ms: ${seen}`);
    await sleep(20);
  }
}
