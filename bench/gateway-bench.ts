/**
 * Benchmark of the gateway in front of every MCPServer (issue 17, "Speed and memory"). Not a test:
 * run it by hand against the local cluster (`npm run cluster:up` first; its apiserver answers the
 * gateway's TokenReviews and SubjectAccessReviews):
 *
 *   npx tsx bench/gateway-bench.ts [--calls 1000] [--callers 100] [--load-calls 10000] [--no-toolhive]
 *   (npm run bench:gateway)
 *
 * One upstream server, npm's @modelcontextprotocol/server-everything on its own Streamable HTTP
 * transport (the `echo` tool), on loopback, reached side by side in one run:
 * 1. directly;
 * 2. through `kubemcp gateway --auth none` (the bundle, `node dist/cli/kubemcp.js`, as in a pod);
 * 3. through `kubemcp gateway --auth kubernetes`: a ServiceAccount token bound to the audience,
 *    verified by TokenReview and authorized by SubjectAccessReview, both cached;
 * 4. through `kubemcp gateway --auth oidc`: a JWT of an issuer this bench serves on loopback (its
 *    own key pair and JWKS), verified with jose;
 * 5. through ToolHive's proxy (`thv proxy`, v0.47.0 built from the Go module proxy into
 *    ~/.cache/kubemcp/toolhive-v0.47.0/) without authentication;
 * 6. through `thv proxy --oidc-*` with the same issuer and tokens. ToolHive's JWKS client refuses
 *    loopback and plain-HTTP addresses and `thv proxy` has no flag to allow them, so the bench's
 *    build sets its config's AllowPrivateIP and InsecureAllowHTTP (one line of
 *    cmd/thv/app/proxy.go, patched in a copy; nothing else changed).
 * All proxies run at once; each path gets `--calls` sequential calls (after 100 warm-up calls) in
 * 5 interleaved rounds whose order rotates, so drift (the client warming up, the machine's load)
 * hits all alike: median and p95 in ms, and the proxy process's CPU ms per call (/proc/<pid>/stat).
 * The added median is (row - direct), goal
 * <= 1 ms with a cached token. Then, for the kubernetes gateway: TokenReviews and
 * SubjectAccessReviews sent (its /.kubemcp/metrics, kubemcp_gateway_reviews_total) for the
 * `--calls` calls of one token (goal: 1), then `--load-calls` calls spread over `--callers`
 * distinct ServiceAccounts (one session each, 10 at a time; goal: one review per token per cache
 * period, 2 min); RSS of each proxy idle (at rest 10 s after the last start) and after the load
 * (goals for the gateway: < 50 MiB idle, < 80 MiB after 10,000 calls of 100 callers). Every process is stopped by pid;
 * every loop is bounded; the bench's namespace and cluster role binding are deleted.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { EVERYTHING, ROOT, until } from '../test/mcp-server/bridge-harness.js';
import { KUBECONFIG_PATH } from '../cluster/paths.js';
import { CALLER_CLUSTER_ROLE_RULES } from '../charts/operator.js';
import { GATEWAY_PROCESS_ENV } from '../gateway/wiring.js';
import {
  cpuMs,
  echo,
  type EchoClient,
  freePort,
  GO_ENV,
  intArg as arg,
  pct,
  rssMiB,
  TOOLHIVE_DIR,
  TOOLHIVE_VERSION,
  toolhiveSource,
} from './shared.js';

const flag = (name: string) => process.argv.includes(`--${name}`);
const CALLS = arg('calls', 1000);
const CALLERS = arg('callers', 100);
const LOAD_CALLS = arg('load-calls', 10_000);
const WARMUP = 100;
/** Rounds of the interleaved latency runs: each path gets CALLS / ROUNDS calls per round. */
const ROUNDS = 5;
/** How long every proxy rests before its idle RSS is read, ms (see the latency section). */
const IDLE_SETTLE_MS = 10_000;
/** The gateways' bind address: loopback, but not the desktop default 127.0.0.1 (see `gateway`). */
const GATEWAY_HOST = '127.0.0.4';
const THV = path.join(TOOLHIVE_DIR, 'bin', 'thv-bench');
const BUNDLE = path.join(ROOT, 'dist', 'cli', 'kubemcp.js');
const AUDIENCE = 'http://bench-mcp.gwbench.svc.cluster.local:3001/mcp';

/**
 * A client of `url`: the SDK v1 client (a 2025-11-25 session), or with `modern` the SDK v2 client
 * pinned to 2026-07-28 (server/discover, then stateless requests: the gateway translates them for
 * server-everything, a 2025-era server).
 */
async function connect(url: string, token?: string, modern = false): Promise<EchoClient & { close(): Promise<void> }> {
  const requestInit = token ? { headers: { Authorization: `Bearer ${token}` } } : {};
  if (modern) {
    const c = new ClientV2(
      { name: 'gateway-bench', version: '1' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await c.connect(new TransportV2(new URL(url), { requestInit }));
    return c as unknown as EchoClient & { close(): Promise<void> };
  }
  const c = new Client({ name: 'gateway-bench', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit }));
  return c as unknown as EchoClient & { close(): Promise<void> };
}

const children: ChildProcess[] = [];
/** Starts a process, keeping its output for errors; stopped by pid at the end. */
function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; out: () => string } {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-8192));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  children.push(child);
  return { child, out: () => out };
}
function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.pid)
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
}

async function listening(
  port: number,
  what: string,
  proc: { child: ChildProcess; out: () => string },
  host = '127.0.0.1',
) {
  await until(
    async () =>
      proc.child.exitCode !== null ||
      (await new Promise<boolean>((resolve) => {
        const s = createServer();
        s.once('error', () => resolve(true));
        s.listen(port, host, () => s.close(() => resolve(false)));
      })),
    `${what} to listen on ${host}:${port}`,
    60_000,
    100,
  );
  if (proc.child.exitCode !== null) throw new Error(`${what} exited: ${proc.out()}`);
}

interface Row {
  name: string;
  median: number;
  p95: number;
  cpuPerCall: number;
  rssIdle?: number;
  pid?: number;
}

/** One way to the server: its URL, the caller's token, the proxy process (none: direct). */
interface Path {
  name: string;
  url: string;
  token?: string;
  pid?: number;
  rssIdle?: number;
  /** A 2026-07-28 client (SDK v2, pinned) instead of a 2025-11-25 session. */
  modern?: boolean;
}

/** `--load-calls` calls over one session per token, 10 sessions at a time. */
async function load(url: string, tokens: string[]): Promise<number> {
  const per = Math.ceil(LOAD_CALLS / tokens.length);
  const t = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next < tokens.length) {
        const c = await connect(url, tokens[next++]);
        for (let i = 0; i < per; i++) await echo(c, i);
        await c.close();
      }
    }),
  );
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function reviewsSent(metricsUrl: string): Promise<{ tokenreview: number; subjectaccessreview: number }> {
  const text = await (await fetch(metricsUrl)).text();
  const get = (kind: string) =>
    Number(new RegExp(`kubemcp_gateway_reviews_total\\{kind="${kind}"\\} (\\d+)`).exec(text)?.[1] ?? NaN);
  return { tokenreview: get('tokenreview'), subjectaccessreview: get('subjectaccessreview') };
}

/**
 * Builds ToolHive's `thv` once into {@link THV}: a copy of the module from the Go module proxy with
 * one change, `AllowPrivateIP` and `InsecureAllowHTTP` in `thv proxy`'s OIDC validator config (its
 * JWKS client refuses the bench's loopback issuer otherwise, and no flag allows it).
 * @throws Error when the download, the patch or the build fails.
 */
function buildThv(): void {
  const src = path.join(TOOLHIVE_DIR, 'src-thv');
  toolhiveSource(src);
  const file = path.join(src, 'cmd', 'thv', 'app', 'proxy.go');
  const anchor = '\t\tResourceURL:      resourceURL,\n';
  const text = readFileSync(file, 'utf8');
  if (!text.includes(anchor)) throw new Error(`${file}: the OIDC config patch no longer applies`);
  writeFileSync(
    file,
    text.replace(
      anchor,
      `${anchor}\t\tAllowPrivateIP:   true, // kubemcp bench: JWKS on loopback\n\t\tInsecureAllowHTTP: true,\n`,
    ),
  );
  process.stderr.write(`[bench] building thv ${TOOLHIVE_VERSION} (once, into ${THV}) ...\n`);
  execFileSync('nice', ['-n', '10', 'go', 'build', '-trimpath', '-ldflags=-s -w', '-o', THV, './cmd/thv'], {
    cwd: src,
    env: GO_ENV,
    stdio: 'inherit',
    timeout: 60 * 60_000,
  });
}

// --- set-up -----------------------------------------------------------------------------------
const kubeconfig = process.env.KUBECONFIG ?? KUBECONFIG_PATH;
if (!existsSync(kubeconfig)) throw new Error(`no cluster: ${kubeconfig} is missing (npm run cluster:up)`);
if (!existsSync(BUNDLE)) {
  process.stderr.write('[bench] building the bundle (npm run build) ...\n');
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
}
const kc = new k8s.KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(k8s.CoreV1Api);
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
const sfx = randomBytes(3).toString('hex');
const ns = `gwbench-${sfx}`;
const dir = mkdtempSync(path.join(tmpdir(), 'kubemcp-gwbench-'));
const rows: Row[] = [];
let issuerServer: Server | undefined;
const summary: Record<string, unknown> = {};

try {
  await core.createNamespace({ body: { metadata: { name: ns } } });
  const sa = async (name: string) =>
    core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
  await sa('gateway');
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: `gwbench-${sfx}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'gateway', namespace: ns }],
    },
  });
  // Every ServiceAccount of the namespace may call the bench's MCPServer; the OIDC user too.
  await rbac.createNamespacedRole({
    namespace: ns,
    body: { metadata: { name: 'caller' }, rules: CALLER_CLUSTER_ROLE_RULES as k8s.V1PolicyRule[] },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'caller' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'caller' },
      subjects: [
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: `system:serviceaccounts:${ns}` },
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'oidc:alice' },
      ],
    },
  });
  const token = async (name: string, audiences: string[]) =>
    (
      await core.createNamespacedServiceAccountToken({
        name,
        namespace: ns,
        body: { spec: { audiences, expirationSeconds: 3600 } },
      })
    ).status!.token;
  const cluster = kc.getCurrentCluster()!;
  const gatewayKc = new k8s.KubeConfig();
  gatewayKc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'gateway', token: await token('gateway', []) }],
    contexts: [{ name: 'gateway', cluster: cluster.name, user: 'gateway' }],
    currentContext: 'gateway',
  });
  // The gateway runs its pod path (lib/in-cluster.ts): a ServiceAccount directory with the token
  // and the cluster's CA, the apiserver named by KUBERNETES_SERVICE_HOST/PORT.
  const saDir = path.join(dir, 'serviceaccount');
  mkdirSync(saDir, { mode: 0o700 });
  writeFileSync(path.join(saDir, 'token'), gatewayKc.getCurrentUser()!.token!, { mode: 0o600 });
  writeFileSync(
    path.join(saDir, 'ca.crt'),
    cluster.caData ? Buffer.from(cluster.caData, 'base64') : readFileSync(cluster.caFile!),
  );
  const apiserver = new URL(cluster.server);
  const inPod = {
    KUBERNETES_SERVICE_HOST: apiserver.hostname,
    KUBERNETES_SERVICE_PORT: apiserver.port || '443',
    KUBEMCP_SERVICEACCOUNT_DIR: saDir,
  };
  const callers: string[] = [];
  for (let i = 0; i < CALLERS; i++) {
    await sa(`caller-${i}`);
    callers.push(await token(`caller-${i}`, [AUDIENCE]));
  }

  // The bench's OIDC issuer: its own key pair, openid-configuration and JWKS on loopback.
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'RS256', use: 'sig' };
  const issuerPort = await freePort();
  const issuer = `http://127.0.0.1:${issuerPort}`;
  issuerServer = createHttpServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration')
      return res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    if (req.url === '/jwks') return res.end(JSON.stringify({ keys: [jwk] }));
    res.statusCode = 404;
    res.end('{}');
  });
  await new Promise<void>((r) => issuerServer!.listen(issuerPort, '127.0.0.1', r));
  const jwt = await new SignJWT({ groups: ['devs'] })
    .setProtectedHeader({ alg: 'RS256', kid: 'bench' })
    .setIssuer(issuer)
    .setAudience(AUDIENCE)
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(privateKey);

  // --- the upstream server -------------------------------------------------------------------
  const upstreamPort = await freePort();
  const upstream = start(EVERYTHING[0]!, [EVERYTHING[1]!, 'streamableHttp'], { PORT: String(upstreamPort) });
  await listening(upstreamPort, 'server-everything', upstream);
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const paths: Path[] = [{ name: 'direct (server-everything, Streamable HTTP)', url: `${upstreamUrl}/mcp` }];

  // --- kubemcp gateway, three modes ------------------------------------------------------------
  const gateway = async (mode: 'none' | 'kubernetes' | 'oidc') => {
    const port = await freePort();
    // Bound as in a pod, to an address that is not the loopback default: a gateway on 127.0.0.1 also
    // checks Host and Origin per request (DNS rebinding, lib/http-guard.ts), which a pod's gateway
    // on 0.0.0.0 does not (and ToolHive's proxy does not either).
    const args = [BUNDLE, 'gateway', '--upstream', upstreamUrl, '--host', GATEWAY_HOST, '--port', String(port)];
    args.push('--auth', mode);
    args.push('--mcpserver', `${ns}/bench-mcp`);
    if (mode !== 'none') args.push('--audience', AUDIENCE);
    if (mode === 'oidc') args.push('--oidc-issuer', issuer);
    // As the image runs it: the bundle, with its pod's in-cluster credentials and process environment.
    const p = start(process.execPath, args, {
      ...inPod,
      ...GATEWAY_PROCESS_ENV,
      KUBECONFIG: '/nonexistent',
      LOG_LEVEL: 'warn',
    });
    await listening(port, `kubemcp gateway --auth ${mode}`, p, GATEWAY_HOST);
    const base = `http://${GATEWAY_HOST}:${port}`;
    return { p, url: `${base}/mcp`, metrics: `${base}/.kubemcp/metrics` };
  };
  const none = await gateway('none');
  const kube = await gateway('kubernetes');
  const oidc = await gateway('oidc');
  paths.push(
    { name: 'kubemcp gateway --auth none', url: none.url, pid: none.p.child.pid },
    { name: 'kubemcp gateway --auth kubernetes (cached)', url: kube.url, token: callers[0], pid: kube.p.child.pid },
    { name: 'kubemcp gateway --auth oidc (jose, JWKS)', url: oidc.url, token: jwt, pid: oidc.p.child.pid },
  );
  // A gateway of its own for the 2026-07-28 client, so the rows above measure 2025 sessions alone.
  const modern = await gateway('kubernetes');
  paths.push({
    name: 'kubemcp gateway kubernetes, 2026-07-28 client',
    url: modern.url,
    token: callers[0],
    pid: modern.p.child.pid,
    modern: true,
  });

  // --- ToolHive's proxy -----------------------------------------------------------------------
  let thvOidc: { p: ReturnType<typeof start>; url: string } | undefined;
  if (!flag('no-toolhive')) {
    if (!existsSync(THV)) buildThv();
    const thvEnv = {
      // `thv proxy` starts only where a runtime is registered; it runs no container itself.
      TOOLHIVE_RUNTIME: 'kubernetes',
      HOME: dir,
      XDG_CONFIG_HOME: path.join(dir, 'config'),
      XDG_STATE_HOME: path.join(dir, 'state'),
      XDG_DATA_HOME: path.join(dir, 'data'),
      TOOLHIVE_SKIP_UPDATE_CHECK: 'true',
    };
    const thv = async (withOidc: boolean) => {
      const port = await freePort();
      const args = [
        'proxy',
        `bench-${withOidc ? 'oidc' : 'plain'}`,
        '--target-uri',
        upstreamUrl,
        '--port',
        String(port),
      ];
      if (withOidc)
        args.push('--oidc-issuer', issuer, '--oidc-audience', AUDIENCE, '--oidc-jwks-url', `${issuer}/jwks`);
      const p = start(THV, args, thvEnv);
      await listening(port, `thv proxy${withOidc ? ' --oidc' : ''}`, p);
      return { p, url: `http://127.0.0.1:${port}/mcp` };
    };
    const plain = await thv(false);
    thvOidc = await thv(true);
    paths.push(
      { name: `ToolHive thv proxy ${TOOLHIVE_VERSION}`, url: plain.url, pid: plain.p.child.pid },
      {
        name: `ToolHive thv proxy ${TOOLHIVE_VERSION} --oidc (JWKS)`,
        url: thvOidc.url,
        token: jwt,
        pid: thvOidc.p.child.pid,
      },
    );
  }

  // --- latency, interleaved: every path in each round, the order rotating ----------------------
  // Idle RSS: every proxy at rest for IDLE_SETTLE_MS after the last one started, no request yet
  // (V8's memory reducer runs about 8 s after start-up's allocations stop: the figure an idle pod
  // shows, not start-up's garbage). The same wait for every proxy.
  await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
  for (const pth of paths) pth.rssIdle = pth.pid ? rssMiB(pth.pid) : undefined;
  const clients = await Promise.all(paths.map((pth) => connect(pth.url, pth.token, pth.modern)));
  for (const c of clients) for (let i = 0; i < WARMUP; i++) await echo(c, i);
  const ms = paths.map((): number[] => []);
  const cpu = paths.map(() => 0);
  const perRound = Math.ceil(CALLS / ROUNDS);
  for (let r = 0; r < ROUNDS; r++)
    for (let k = 0; k < paths.length; k++) {
      const j = (k + r) % paths.length;
      const pid = paths[j]!.pid;
      const c0 = pid ? cpuMs(pid) : 0;
      for (let i = 0; i < perRound; i++) {
        const t = process.hrtime.bigint();
        await echo(clients[j]!, i);
        ms[j]!.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      if (pid) cpu[j] = cpu[j]! + cpuMs(pid) - c0;
    }
  for (const c of clients) await c.close();
  paths.forEach((pth, j) =>
    rows.push({
      name: pth.name,
      median: pct(ms[j]!, 50),
      p95: pct(ms[j]!, 95),
      cpuPerCall: cpu[j]! / ms[j]!.length,
      rssIdle: pth.rssIdle,
      pid: pth.pid,
    }),
  );

  // --- reviews and memory under load ---------------------------------------------------------
  const one = await reviewsSent(kube.metrics);
  const seconds = await load(kube.url, callers);
  summary.kubernetes = {
    reviewsForOneToken: one,
    loadCalls: LOAD_CALLS,
    callers: CALLERS,
    loadSeconds: Number(seconds.toFixed(1)),
    reviewsAfterLoad: await reviewsSent(kube.metrics),
    rssIdleMiB: Number(paths[2]!.rssIdle!.toFixed(1)),
    rssAfterLoadMiB: Number(rssMiB(kube.p.child.pid!).toFixed(1)),
  };
  if (thvOidc) {
    // The same load with one JWT (ToolHive has no Kubernetes tokens).
    const thvSeconds = await load(
      thvOidc.url,
      Array.from({ length: CALLERS }, () => jwt),
    );
    summary.toolhive = {
      loadCalls: LOAD_CALLS,
      loadSeconds: Number(thvSeconds.toFixed(1)),
      rssIdleMiB: Number(paths[paths.length - 1]!.rssIdle!.toFixed(1)),
      rssAfterLoadMiB: Number(rssMiB(thvOidc.p.child.pid!).toFixed(1)),
    };
  }
  stop(upstream.child);
} finally {
  for (const c of children) stop(c);
  issuerServer?.close();
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
  await rbac.deleteClusterRoleBinding({ name: `gwbench-${sfx}` }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}

// --- report -------------------------------------------------------------------------------------
const f = (n: number) => n.toFixed(2).padStart(8);
const direct = rows[0]!;
process.stdout.write(
  `\ngateway bench: server-everything echo, ${CALLS} sequential calls per row in ${ROUNDS} interleaved rounds (after ${WARMUP} warm-up), load ${LOAD_CALLS} calls over ${CALLERS} callers\n\n`,
);
process.stdout.write(`${'path'.padEnd(46)} median ms   p95 ms   added ms   proxy CPU ms/call   proxy RSS idle MiB\n`);
for (const r of rows)
  process.stdout.write(
    `${r.name.padEnd(46)} ${f(r.median)} ${f(r.p95)} ${f(r.median - direct.median)} ${f(r.cpuPerCall).padStart(19)} ${(r.rssIdle === undefined ? '-' : r.rssIdle.toFixed(1)).padStart(20)}\n`,
  );
const kube = rows.find((r) => r.name.startsWith('kubemcp gateway --auth kubernetes'));
if (kube) {
  const added = kube.median - direct.median;
  process.stdout.write(
    `\nadded by the gateway (kubernetes, cached token) at the median: ${added.toFixed(2)} ms (goal <= 1 ms: ${added <= 1 ? 'met' : 'NOT met'})\n`,
  );
}
const mo = rows.find((r) => r.name.includes('2026-07-28'));
if (kube && mo)
  process.stdout.write(
    `2026-07-28 client (the gateway answers for the 2025 server, on a session of its own): ${(mo.median - direct.median).toFixed(2)} ms added at the median, ${(mo.median - kube.median).toFixed(2)} ms more than a 2025 session through the same gateway\n`,
  );
const th = rows.find((r) => r.name.includes('thv proxy') && r.name.includes('oidc'));
const ko = rows.find((r) => r.name.startsWith('kubemcp gateway --auth oidc'));
if (th && ko)
  process.stdout.write(
    `OIDC side by side, added at the median: kubemcp ${(ko.median - direct.median).toFixed(2)} ms, ToolHive ${(th.median - direct.median).toFixed(2)} ms (ratio ${((ko.median - direct.median) / Math.max(0.001, th.median - direct.median)).toFixed(2)}x)\n`,
  );
const k = summary.kubernetes as
  | {
      reviewsForOneToken: { tokenreview: number };
      reviewsAfterLoad: { tokenreview: number };
      loadSeconds: number;
      rssIdleMiB: number;
      rssAfterLoadMiB: number;
    }
  | undefined;
if (k) {
  process.stdout.write(
    `TokenReviews: ${k.reviewsForOneToken.tokenreview} for ${CALLS + WARMUP} calls of one token (goal 1); ${k.reviewsAfterLoad.tokenreview} after ${LOAD_CALLS} more calls of ${CALLERS} callers in ${k.loadSeconds} s (goal: one per token per 2 min cache period)\n`,
  );
  process.stdout.write(
    `gateway RSS: ${k.rssIdleMiB} MiB idle (goal < 50), ${k.rssAfterLoadMiB} MiB after the load (goal < 80)\n`,
  );
}
process.stdout.write(JSON.stringify({ calls: CALLS, rows, ...summary }) + '\n');
