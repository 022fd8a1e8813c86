import { once } from 'node:events';
import type { Logger } from 'pino';
import { flagCommand, type CommandContext } from '../cli/command.js';
import { UsageError, type FlagValues } from '../cli/flags.js';
import { createLogger } from '../cli/logger.js';
import { ConfigWatcher } from '../zookeeper/configWatcher.js';
import { readTenantCredential, type DigestCredential } from '../zookeeper/credentials.js';
import { LeaderElection } from '../zookeeper/election.js';
import type { ElectionSnapshot } from '../zookeeper/electionSnapshot.js';
import { ConfigFileWriter } from './configFiles.js';
import type { EventRecorder } from './eventRecorder.js';
import type { PodApi } from './kubernetesClient.js';
import { SidecarHttpServer } from './httpServer.js';
import { LeaderFileWriter } from './leaderFile.js';
import { leaseConditionWarnings, readEnsembleTiming } from '../zookeeper/leaseCondition.js';
import type { PodLabeler } from './podLabeler.js';
import type { PodDeleter } from './podDeleter.js';
import { startColdStandby } from './coldStandby.js';
import { SidecarMetrics } from './sidecarMetrics.js';
import { sidecarFlags } from './sidecarFlags.js';

const usage = 'zkleader sidecar --zookeeper H:P[,..] (--election NAME | --configs NAME[,..] | both) --namespace NS --pod-name P [flags]';
const summary = 'join a ZooKeeper election; write the leader files, label the pod, serve HTTP';

/** How long a graceful stop waits for the follower label before it lets go of the node anyway. */
const labelOnStopTimeoutMs = 1000;

/** How often the credential file is re-read for a rotated password (the kubelet updates Secret volumes within about a minute). */
const credentialPollMs = 10_000;

/**
 * Takes up a rotated credential: re-reads the file and hands a new password to the
 * election, which adds it to the live session (leadership stays). Read errors are left to
 * the election, which reports them when it needs the file for a new session.
 */
function watchCredential(path: string, namespace: string, election: LeaderElection, log: Logger): NodeJS.Timeout {
  let last: DigestCredential | null = null;
  const poll = async () => {
    let credential: DigestCredential;
    try {
      credential = await readTenantCredential(path, namespace);
    } catch {
      return;
    }
    if (last && (last.user !== credential.user || last.password !== credential.password)) {
      log.info({ user: credential.user, file: path }, 'the credential file changed; adding the new credential to the ZooKeeper session');
      election.authenticate(credential).catch((err: Error) => log.warn({ err: err.message }, 'could not add the new credential to the session; the next session uses it'));
    }
    last = credential;
  };
  void poll();
  return setInterval(() => void poll(), credentialPollMs).unref();
}

type SidecarFlags = FlagValues<typeof sidecarFlags>;

/**
 * The sidecar's own small client (kubernetesClient.ts): in the cluster, the projected token
 * and CA of the service account; with --kubeconfig, that file's current context. Only a
 * kubeconfig whose user authenticates in a way that client lacks (an exec plugin, an auth
 * provider) gets client-node's CoreV1Api, with all its memory.
 */
async function kubernetesApi(flags: SidecarFlags): Promise<PodApi> {
  const { KubernetesClient, inClusterConnection, kubeconfigConnection } = await import('./kubernetesClient.js');
  if (!flags.kubeconfig) {
    try {
      return new KubernetesClient(inClusterConnection(process.env));
    } catch (err) {
      throw new UsageError((err as Error).message, { cause: err });
    }
  }
  const path = flags.kubeconfig;
  const cannotLoad = (err: unknown) => new UsageError(`--kubeconfig: cannot load ${JSON.stringify(path)}: ${(err as Error).message}`, { cause: err });
  let connection;
  try {
    connection = await kubeconfigConnection(path);
  } catch (err) {
    throw cannotLoad(err);
  }
  if (connection) return new KubernetesClient(connection);
  const { CoreV1Api, KubeConfig } = await import('@kubernetes/client-node');
  const config = new KubeConfig();
  try {
    config.loadFromFile(path);
  } catch (err) {
    throw cannotLoad(err);
  }
  return config.makeApiClient(CoreV1Api);
}

/** The Kubernetes-facing outputs; absent with --no-label. */
interface ApiOutputs {
  readonly labeler: PodLabeler;
  readonly events: EventRecorder;
  /** With --start leader: deletes the own pod once a started leader has lost its leadership. */
  readonly deleter: PodDeleter | null;
}

/**
 * Loaded on demand: a sidecar with --no-label (or following configs only) loads no API
 * client at all.
 */
async function apiOutputs(flags: SidecarFlags, election: string, metrics: SidecarMetrics, log: Logger): Promise<ApiOutputs> {
  const api = await kubernetesApi(flags);
  const [{ PodLabeler }, { EventRecorder }, { PodDeleter }] = await Promise.all([import('./podLabeler.js'), import('./eventRecorder.js'), import('./podDeleter.js')]);
  return {
    labeler: new PodLabeler({
      api,
      namespace: flags.namespace,
      pod: flags['pod-name'],
      election,
      logger: log.child({ output: 'label' }),
      onError: (status) => metrics.labelPatchError(status),
    }),
    events: new EventRecorder(
      api,
      { namespace: flags.namespace, name: flags['pod-name'], uid: flags['pod-uid'] ?? null },
      log.child({ output: 'events' }),
      (status) => metrics.eventError(status),
    ),
    deleter:
      flags.start === 'leader' && flags['pod-uid']
        ? new PodDeleter({ api, namespace: flags.namespace, pod: flags['pod-name'], uid: flags['pod-uid'], logger: log.child({ output: 'delete' }) })
        : null,
  };
}

/** Warns once when the ensemble's timing makes the lease unsafe or sessions fragile (sidecar/leaseCondition.ts). */
async function checkLeaseCondition(zookeeper: string, timeoutMs: number | null, log: Logger): Promise<void> {
  if (timeoutMs === null) return;
  const timing = await readEnsembleTiming(zookeeper);
  if (timing === null) {
    log.info({ zookeeper }, 'cannot check the lease condition: no server answered the conf four-letter word (add conf to 4lw.commands.whitelist)');
    return;
  }
  const warnings = leaseConditionWarnings(timing, timeoutMs);
  for (const warning of warnings) log.warn({ ...timing, sessionTimeoutMs: timeoutMs }, `lease condition: ${warning}`);
  if (warnings.length === 0) log.info({ ...timing, sessionTimeoutMs: timeoutMs }, 'lease condition met');
}

/**
 * The election and its outputs (leader files, label, Events, metrics). Absent for a
 * config-only pod (no --election).
 */
function startElection(flags: SidecarFlags, electionName: string, log: Logger, metrics: SidecarMetrics, api: ApiOutputs | null) {
  const cluster = flags.cluster ?? '';
  const self = { pod: flags['pod-name'], ip: flags['pod-ip'] ?? null, uid: flags['pod-uid'] ?? null, cluster };
  const files = new LeaderFileWriter(flags.dir, electionName, self);
  const election = new LeaderElection({
    connectString: flags.zookeeper,
    sessionTimeoutMs: flags['session-timeout'],
    electionPath: `${flags.root}/${flags.namespace}/${flags.election ?? ''}`,
    // The candidate data names a cluster only when there is one: without, it is what it always was.
    self: { pod: self.pod, ip: self.ip, uid: self.uid, namespace: flags.namespace, startedAt: new Date().toISOString(), ...(cluster !== '' && { cluster }) },
    logger: log.child({ component: 'election' }),
    ...(flags['credential-file'] ? { credential: () => readTenantCredential(flags['credential-file'] as string, flags.namespace) } : {}),
  });
  const credentialWatch = flags['credential-file'] ? watchCredential(flags['credential-file'], flags.namespace, election, log) : undefined;
  election.on('tampered', ({ node, version, own }) => {
    metrics.candidateTampered(own);
    const what = own ? `its own candidate node ${node}` : `candidate node ${node}`;
    log.warn({ node, version, own }, 'candidate node changed after its creation');
    if (api) void api.events.record('CandidateTampered', `${self.pod} found ${what} of ${electionName} changed after its creation (data version ${version}); it is ignored${own ? ', and the member joined again with a fresh node' : ''}`);
  });
  election.on('accessDenied', (message) => {
    metrics.zookeeperAccessDenied();
    log.error({ problem: message }, 'ZooKeeper access denied; retrying with backoff');
    if (api) void api.events.record('ZooKeeperAccessDenied', `${self.pod} (${electionName}): ${message}`);
  });

  let problem: string | null = null;
  let previous: ElectionSnapshot | null = null;
  election.on('problem', (p) => (problem = p));
  let leaseConditionChecked = false;
  election.on('connection', (state) => {
    metrics.setConnection(state);
    if (state !== 'connected' || leaseConditionChecked) return;
    leaseConditionChecked = true;
    void checkLeaseCondition(flags.zookeeper, election.negotiatedTimeoutMs, log);
  });
  election.on('leaseExpired', (validUntil) => {
    if (api) void api.events.record('LeaseExpired', `${self.pod} stepped down: its lease on ${electionName} ran out at ${validUntil.toISOString()} without a renewal the ZooKeeper quorum vouched for`);
  });
  // Cold standby (--start leader): the app starts once this member leads; a started leader that loses leadership deletes its pod.
  const standby =
    api?.deleter
      ? startColdStandby({ dir: flags.dir, pod: self.pod, election: electionName, current: () => election.current, files, labeler: api.labeler, events: api.events, deleter: api.deleter, logger: log.child({ component: 'start' }) })
      : null;
  election.on('update', (elected, outcomeChanged) => {
    standby?.gate.observe(elected);
    // Once the pod is being deleted, nothing below claims leadership again.
    const snapshot = standby ? standby.gate.shown(elected) : elected;
    const written = files.write(snapshot);
    if (standby) written.then(() => standby.gate.onDisk(files.written)).catch((err: Error) => log.error({ err: err.message }, 'cannot write the start marker'));
    if (!outcomeChanged) return;
    metrics.observe(snapshot);
    if (api) {
      // Unknown also means follower for the label: a Service must not route to a member that cannot tell.
      // A leader in another cluster: this member demotes stale leader labels here (podLabeler.ts).
      // The leader's pod is never looked up by name in this cluster's API.
      const foreignLeaderEpoch = snapshot.state === 'follower' && snapshot.leader && snapshot.leader.cluster !== cluster ? snapshot.epoch : null;
      api.labeler.desire(snapshot.isLeader ? 'leader' : 'follower', snapshot.epoch, foreignLeaderEpoch);
      if (snapshot.isLeader && !previous?.isLeader) void api.events.record('LeaderElected', `${self.pod} is the leader of ${electionName} (epoch ${snapshot.epoch})`);
      if (!snapshot.isLeader && previous?.isLeader) void api.events.record('LeadershipLost', `${self.pod} is no longer the leader of ${electionName} (${snapshot.state})`);
    }
    previous = snapshot;
  });
  election.start();
  // Labels changed behind the sidecar's back (another pod's token) are put right within this.
  const reconcileTimer = api ? setInterval(() => void api.labeler.reconcile(), flags['label-check']).unref() : undefined;
  return {
    files,
    /** With --start leader: the startup gate (/startz). */
    gate: standby?.gate ?? null,
    problems: (): (string | null)[] => [problem, api?.labeler.problem ?? null, files.error ? `cannot write ${flags.dir}: ${files.error.message}` : null, standby?.gate.lost ? `leadership lost after the app started (${standby.gate.lost}): this pod is to be deleted` : null, standby?.problem() ?? null],
    /** Graceful stop: files and label say follower before the node goes (so the successor is alone). */
    async stop(): Promise<void> {
      clearInterval(reconcileTimer);
      // A started app must not outlive the leadership it started under: when the sidecar alone
      // stops (a liveness restart, not the pod's deletion, which deletes it again harmlessly),
      // the pod goes before the node does. Then the step-down below is no loss that deletes it.
      await standby?.stopping(labelOnStopTimeoutMs * 2);
      standby?.stop();
      election.stepDown();
      clearInterval(credentialWatch);
      await files.flush();
      if (api) {
        const settled = await api.labeler.settled(labelOnStopTimeoutMs);
        api.labeler.stop();
        // The retries did not get through in time: one last try, so a Service does not keep routing here.
        if (!settled) await api.labeler.finalPatch(labelOnStopTimeoutMs);
      }
      await election.close();
    },
  };
}

/** The configs named by --configs, followed and written as files (DESIGN.md "Configuration in ZooKeeper"). */
function startConfigs(flags: SidecarFlags, names: readonly string[], log: Logger, metrics: SidecarMetrics, api: ApiOutputs | null) {
  const files = new ConfigFileWriter(flags.dir);
  const problems = new Map<string, string>();
  const watcher = new ConfigWatcher({
    connectString: flags.zookeeper,
    sessionTimeoutMs: flags['session-timeout'],
    root: flags.root,
    namespace: flags.namespace,
    names,
    logger: log.child({ component: 'config' }),
    ...(flags['credential-file'] ? { credential: () => readTenantCredential(flags['credential-file'] as string, flags.namespace) } : {}),
  });
  watcher.on('problem', (name, problem) => {
    if (problem === null) problems.delete(name);
    else if (problems.get(name) !== problem) {
      problems.set(name, problem);
      log.warn({ config: name, problem }, 'config not available');
    }
  });
  watcher.on('update', (name, version) => {
    files.write(name, version).then(
      () => {
        metrics.configUpdated(name, version.version);
        log.info({ config: name, version: version.version, keys: Object.keys(version.keys).length }, 'config written');
        if (api) void api.events.record('ConfigUpdated', `${flags['pod-name']} wrote config ${flags.namespace}/${name} version ${version.version}`);
      },
      (err: Error) => {
        log.error({ config: name, err: err.message }, 'cannot write config files; reading the config again shortly');
        watcher.invalidate(name);
      },
    );
  });
  watcher.start();
  return {
    files,
    onDisk: (): boolean => names.every((name) => files.written[name] !== undefined),
    problems: (): (string | null)[] => [...problems.values(), files.error ? `cannot write ${flags.dir}/config: ${files.error.message}` : null],
    stop: (): void => watcher.stop(),
  };
}

/** --start leader needs an election to lead, and the API (with the own uid) to delete its pod when that leadership is lost. */
function checkStartFlags(flags: SidecarFlags): void {
  if (flags.start !== 'leader') return;
  if (!flags.election) throw new UsageError('--start leader needs --election: a pod that only follows configs has no leadership to wait for');
  if (flags['no-label']) throw new UsageError('--start leader needs API access (a started leader that loses leadership deletes its own pod); it cannot be used with --no-label');
  if (!flags['pod-uid']) throw new UsageError('--start leader needs --pod-uid (POD_UID): the own pod is deleted only with its uid as the precondition');
}

async function runSidecar(flags: SidecarFlags, ctx: CommandContext): Promise<number> {
  const configNames = flags.configs ?? [];
  if (!flags.election && configNames.length === 0) throw new UsageError('--election or --configs is required (an election to join, or configs to follow)');
  checkStartFlags(flags);
  const electionName = flags.election ? `${flags.namespace}/${flags.election}` : null;
  const log = createLogger('sidecar', ctx.env).child({ ...(electionName && { election: electionName }), pod: flags['pod-name'] });
  const metrics = new SidecarMetrics();
  // A config-only pod has no API access (DESIGN.md): no label, no Events.
  const api = flags['no-label'] || !flags.election ? null : await apiOutputs(flags, flags.election, metrics, log);

  const [host, port] = [flags.listen.host, flags.listen.port];
  let http: SidecarHttpServer;
  let election: ReturnType<typeof startElection> | null = null;
  let configs: ReturnType<typeof startConfigs> | null = null;
  const awaits = [electionName ? 'the election outcome' : null, configNames.length > 0 ? `config ${configNames.join(', ')}` : null].filter(Boolean).join(' and ');
  try {
    http = await SidecarHttpServer.start({
      host,
      port,
      logger: log,
      registry: metrics.registry,
      document: () => election?.files.written ?? null,
      ...(configNames.length > 0 && { configs: () => configs?.files.written ?? {} }),
      ...(flags.start === 'leader' && {
        startup: () => {
          const status = election?.gate?.status() ?? { started: false, reason: 'standby: the election has not begun' };
          // The configs too, as without cold standby: once on disk they stay, so 200 stays 200.
          if (!status.started || configs === null || configs.onDisk()) return status;
          return { started: false, reason: `leader, waiting for config ${configNames.join(', ')} on disk` };
        },
      }),
      readiness: () => ({
        // A started leader that lost its leadership is never ready again: a Service stops
        // routing to its app even while its pod cannot be deleted (the API down).
        ready: (election === null || (election.files.written !== null && !election.gate?.lost)) && (configs === null || configs.onDisk()),
        problems: [...(election?.problems() ?? []), ...(configs?.problems() ?? [])].filter((p): p is string => p !== null),
        awaits,
      }),
    });
  } catch (err) {
    log.error({ err: (err as Error).message, listen: `${host}:${port}` }, 'cannot listen');
    ctx.stderr.write(`zkleader sidecar: --listen ${host}:${port}: ${(err as Error).message}\n`);
    return 1;
  }
  log.info({ listen: `${http.address.address}:${http.address.port}`, port: http.address.port, dir: flags.dir, zookeeper: flags.zookeeper, configs: configNames }, 'sidecar started');
  election = electionName ? startElection(flags, electionName, log, metrics, api) : null;
  configs = configNames.length > 0 ? startConfigs(flags, configNames, log, metrics, api) : null;

  if (!ctx.signal.aborted) await once(ctx.signal, 'abort');
  log.info('stopping: stepping down');
  configs?.stop();
  await election?.stop();
  await http.close();
  log.info('stopped');
  await new Promise<void>((resolve) => log.flush(() => resolve()));
  return 0;
}

export const sidecarCommand = flagCommand({
  name: 'sidecar',
  summary,
  usage,
  description: summary,
  flags: sidecarFlags,
  run: runSidecar,
});
