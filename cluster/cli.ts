/**
 * Command line for the local control plane (see ./index.ts):
 *
 *   tsx cluster/cli.ts up       start it, or reuse the running one (npm run cluster:up)
 *   tsx cluster/cli.ts down     stop it by pid and remove its state (npm run cluster:down)
 *   tsx cluster/cli.ts status   show pids, ports, liveness and memory of each component
 *
 * Exit code 0 on success, 1 on failure (the message names the component and its log file),
 * 2 on bad usage; `status` exits 1 if the cluster is not running and ready.
 */
import path from 'node:path';
import {
  clusterDown,
  clusterStatus,
  clusterUp,
  KUBECONFIG_PATH,
  LOG_DIR,
  REAL_NODE_NAME,
  REPO_ROOT,
  type ClusterState,
} from './index.js';

const USAGE = 'usage: tsx cluster/cli.ts up|down|status';

/** Path relative to the current directory when inside it, for copy-pasteable hints. */
function rel(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r.startsWith('..') ? p : `$PWD/${r}`;
}

async function up(): Promise<number> {
  const info = await clusterUp();
  const how = info.reused ? 'reused the running cluster' : `started in ${(info.elapsedMs / 1000).toFixed(1)} s`;
  process.stdout.write(
    [
      `Local Kubernetes ${info.server} ${how}.`,
      `Real node: ${realNodeLine(info.state)}`,
      '',
      'Use it:',
      `  export KUBECONFIG=${rel(info.kubeconfig)}`,
      '  kubectl get nodes',
      '',
      `Logs: ${rel(LOG_DIR)}/<component>.log`,
      `Stop it: npm run cluster:down${process.cwd() === REPO_ROOT ? '' : ` (in ${REPO_ROOT})`}`,
      '',
    ].join('\n'),
  );
  return 0;
}

/** One line about the real node: its address and pod subnet, or why there is none. */
function realNodeLine(state: ClusterState): string {
  const rn = state.realNode;
  if (!rn) return 'none (started without one)';
  if (rn.available && rn.network)
    return `${REAL_NODE_NAME} Ready at ${rn.network.nodeIp} (netns ${rn.network.netns}, pods ${rn.network.podCidr})`;
  return `none: ${rn.reason?.kind === 'failed' ? 'FAILED: ' : ''}${rn.reason?.message ?? 'not Ready'}`;
}

async function status(): Promise<number> {
  const s = await clusterStatus();
  if (!s.state) {
    process.stdout.write('No local cluster recorded. Start one with: npm run cluster:up\n');
    return 1;
  }
  const rows = s.components.map((c) => {
    const rss = c.rssKiB === undefined ? '-' : `${(c.rssKiB / 1024).toFixed(0)} MiB`;
    return `  ${(c.component + (c.netns ? ` (netns)` : '')).padEnd(24)} pid ${String(c.pid).padEnd(8)} ${(c.alive ? 'running' : 'DEAD').padEnd(8)} rss ${rss}`;
  });
  const total = s.components.reduce((sum, c) => sum + (c.rssKiB ?? 0), 0);
  process.stdout.write(
    [
      `server     ${s.state.server} (${s.apiserverReady ? 'ready' : 'NOT ready'})`,
      `started    ${s.state.startedAt}${s.state.startupMs ? ` (up in ${(s.state.startupMs / 1000).toFixed(1)} s)` : ''}`,
      `ports      ${Object.entries(s.state.ports)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
      `binaries   ${s.state.binDir}`,
      `kubeconfig ${KUBECONFIG_PATH}`,
      `real node  ${realNodeLine(s.state)}`,
      ...rows,
      `  total rss ${(total / 1024).toFixed(0)} MiB`,
      '',
    ].join('\n'),
  );
  const healthy = s.state.ready && s.apiserverReady && s.components.every((c) => c.alive);
  return healthy ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  switch (argv[0]) {
    case 'up':
      return up();
    case 'down':
      await clusterDown();
      return 0;
    case 'status':
      return status();
    default:
      process.stderr.write(`${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
