import { afterAll, afterEach, beforeAll } from '@jest/globals';
import { LeaderSampler, SidecarProcess } from './sidecarProcess.js';
import { ZooKeeperEnsemble } from './zookeeperEnsemble.js';

export interface SidecarFixture {
  /** The ensemble of this test file (started in beforeAll). */
  ensemble(): ZooKeeperEnsemble;
  /** Starts `count` sidecars of one election, one at a time, so the join order is the election order. */
  startSidecars(election: string, count: number, sessionTimeout?: string): Promise<SidecarProcess[]>;
  /** Samples the group's leader files until the end of the test. */
  sampleLeaders(group: readonly SidecarProcess[]): LeaderSampler;
}

/**
 * The hooks of a test file that runs sidecar processes against one real ensemble: the
 * ensemble for the whole file, sidecars and leader sampling stopped after each test.
 * (Its own module: sidecarProcess.ts also serves the benchmarks, outside jest.)
 */
export function useSidecarFixture(size: 1 | 3 = 3): SidecarFixture {
  let ensemble: ZooKeeperEnsemble | undefined;
  let sidecars: SidecarProcess[] = [];
  let sampler: LeaderSampler | undefined;

  beforeAll(async () => {
    ensemble = await ZooKeeperEnsemble.start({ size });
  }, 60_000);

  afterAll(async () => {
    await ensemble?.close();
  });

  afterEach(async () => {
    sampler?.stop();
    sampler = undefined;
    await Promise.all(sidecars.map((s) => s.close()));
    sidecars = [];
  });

  const current = (): ZooKeeperEnsemble => {
    if (!ensemble) throw new Error('the ensemble is started in beforeAll');
    return ensemble;
  };

  return {
    ensemble: current,
    async startSidecars(election, count, sessionTimeout) {
      const group: SidecarProcess[] = [];
      for (let i = 0; i < count; i++) {
        const s = await SidecarProcess.start({
          zookeeper: current().connectString,
          election,
          podName: `${election}-${i}`,
          ...(sessionTimeout !== undefined && { sessionTimeout }),
        });
        sidecars.push(s);
        group.push(s);
      }
      return group;
    },
    sampleLeaders(group) {
      sampler?.stop();
      sampler = new LeaderSampler(() => group);
      return sampler;
    },
  };
}
