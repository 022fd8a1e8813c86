import type { V1Container, V1Pod } from '@kubernetes/client-node';

/** The app containers of a pod as the kubelet starts them behind a native sidecar's startupProbe. */
export interface AppStart {
  /** When the app containers were started (ms since the epoch); null while held back. */
  readonly startedAt: number | null;
  /** Why they were never started: the startupProbe failed failureThreshold times (the kubelet would restart the sidecar). */
  readonly failed: string | null;
  /** Stops probing (the sidecar exited). */
  stop(): void;
}

/**
 * The kubelet's native-sidecar startup gate: the app containers start only after every
 * restartable init container started, i.e. its startupProbe succeeded (probed every
 * periodSeconds, given up after failureThreshold failures in a row). Only an httpGet probe
 * on the sidecar is modelled, answered at `listen` (where the pod runner put its port).
 * A classic sidecar, or one without a startupProbe, holds nothing back: the apps start at once.
 */
export function gateAppContainers(pod: V1Pod, sidecar: V1Container, listen: string): AppStart {
  const native = (pod.spec?.initContainers ?? []).includes(sidecar) && sidecar.restartPolicy === 'Always';
  const probe = native ? sidecar.startupProbe : undefined;
  const state: { startedAt: number | null; failed: string | null; timer: NodeJS.Timeout | undefined; stopped: boolean } = {
    startedAt: null,
    failed: null,
    timer: undefined,
    stopped: false,
  };
  if (!probe?.httpGet) {
    state.startedAt = Date.now();
  } else {
    const url = `http://${listen}${probe.httpGet.path ?? '/'}`;
    const periodMs = (probe.periodSeconds ?? 10) * 1000;
    const threshold = probe.failureThreshold ?? 3;
    let failures = 0;
    const attempt = async () => {
      if (state.stopped) return;
      let ok: boolean;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout((probe.timeoutSeconds ?? 1) * 1000) });
        await res.text();
        ok = res.status >= 200 && res.status < 400;
      } catch {
        ok = false;
      }
      if (state.stopped) return;
      if (ok) {
        state.startedAt = Date.now();
        return;
      }
      if (++failures >= threshold) {
        state.failed = `startupProbe ${probe.httpGet?.path ?? ''} failed ${failures} times in a row: the kubelet would restart the sidecar`;
        return;
      }
      state.timer = setTimeout(() => void attempt(), periodMs);
    };
    state.timer = setTimeout(() => void attempt(), (probe.initialDelaySeconds ?? 0) * 1000);
  }
  return {
    get startedAt() {
      return state.startedAt;
    },
    get failed() {
      return state.failed;
    },
    stop() {
      state.stopped = true;
      clearTimeout(state.timer);
    },
  };
}
