import { afterAll, afterEach, beforeAll } from '@jest/globals';
import { ElectionObserver } from './electionObserver.js';
import { expectSafeHistory, LeaderHistoryRecorder, type LeaderHistory } from './leaderHistory.js';
import { SidecarProcess, type SidecarProcessOptions } from './sidecarProcess.js';
import { ZooKeeperEnsemble, type EnsembleOptions } from './zookeeperEnsemble.js';

/** The history of one election being recorded: every member's leader.json and the candidate nodes. */
export interface ElectionRecording {
  readonly recorder: LeaderHistoryRecorder;
  readonly observer: ElectionObserver;
  /**
   * Stops recording and checks every safety property over the whole history (epochs against
   * the observed czxids included); throws naming each violated property with its window.
   */
  expectSafe(): Promise<LeaderHistory>;
}

export interface SidecarFixture {
  /** The ensemble of this test file (started in beforeAll). */
  ensemble(): ZooKeeperEnsemble;
  /** Starts `count` sidecars of one election, one at a time, so the join order is the election order. */
  startSidecars(election: string, count: number, sessionTimeout?: string, more?: Pick<SidecarProcessOptions, 'namespace' | 'extraArgs'>): Promise<SidecarProcess[]>;
  /**
   * Records the group's leader files — exited, killed and paused members included — and the
   * election's candidate nodes until `expectSafe()` or the end of the test.
   */
  recordHistory(group: readonly SidecarProcess[]): Promise<ElectionRecording>;
}

/**
 * The hooks of a test file that runs sidecar processes against one real ensemble: the
 * ensemble for the whole file, sidecars and history recording stopped after each test.
 * (Its own module: sidecarProcess.ts also serves the benchmarks, outside jest.)
 */
export function useSidecarFixture(size: 1 | 3 = 3, ensembleOptions: Omit<EnsembleOptions, 'size'> = {}): SidecarFixture {
  let ensemble: ZooKeeperEnsemble | undefined;
  let sidecars: SidecarProcess[] = [];
  let recordings: ElectionRecording[] = [];

  beforeAll(async () => {
    ensemble = await ZooKeeperEnsemble.start({ ...ensembleOptions, size });
  }, 60_000);

  afterAll(async () => {
    await ensemble?.close();
  });

  afterEach(async () => {
    // Recording stops before the sidecars' directories are removed (that would read as lost files).
    await Promise.all(recordings.flatMap((r) => [r.recorder.stop(), r.observer.stop()]));
    recordings = [];
    await Promise.all(sidecars.map((s) => s.close()));
    sidecars = [];
  });

  const current = (): ZooKeeperEnsemble => {
    if (!ensemble) throw new Error('the ensemble is started in beforeAll');
    return ensemble;
  };

  return {
    ensemble: current,
    async startSidecars(election, count, sessionTimeout, more = {}) {
      const group: SidecarProcess[] = [];
      for (let i = 0; i < count; i++) {
        const s = await SidecarProcess.start({
          // Through the client proxies where there are any, so that cutClients() reaches them.
          zookeeper: current().partitionable ? current().clientConnectString : current().connectString,
          election,
          podName: `${election}-${i}`,
          ...(sessionTimeout !== undefined && { sessionTimeout }),
          ...more,
        });
        sidecars.push(s);
        group.push(s);
      }
      return group;
    },
    async recordHistory(group) {
      const first = group[0];
      if (!first || group.some((s) => s.election !== first.election || s.namespace !== first.namespace)) {
        throw new Error('recordHistory takes a non-empty group of one election');
      }
      const members = group.map((s) => ({ member: s.podName, dir: s.dir }));
      const recorder = await LeaderHistoryRecorder.start({ members: () => members });
      const observer = await ElectionObserver.start({ connectString: current().connectString, electionPath: `/zkleader/${first.namespace}/${first.election}` });
      const recording: ElectionRecording = {
        recorder,
        observer,
        async expectSafe() {
          const [history] = await Promise.all([recorder.stop(), observer.stop()]);
          expectSafeHistory(history, { czxidsByPod: observer.czxidsByPod() });
          return history;
        },
      };
      recordings.push(recording);
      return recording;
    },
  };
}
