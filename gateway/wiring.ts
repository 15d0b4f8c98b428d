/**
 * The whole path of a bridged stdio MCPServer, in one place. Everything that renders, starts or
 * tests a bridged pod takes its paths and commands from here: the construct
 * (charts/mcpserver.ts), `kubemcp bridge-init` and `kubemcp bridge` (gateway/), and the
 * local test harness that wires the same FIFOs on this machine (test/mcp-server/bridge-harness.ts).
 *
 * ```
 *  MCP client ──HTTP──▶ Service <name>:<spec.port> ──▶ container mcp-bridge: `kubemcp bridge`
 *                                                         │  /mcp (Streamable HTTP, one session per client)
 *                                                         │  /health, /ready (ready once initialize answered)
 *                                                         │  writes  /bridge/stdin   (FIFO)
 *                                                         │  reads   /bridge/stdout  (FIFO)
 *                                                         ▼
 *  emptyDir "bridge" at /bridge: bin/busybox (static), stdin, stdout   ◀── init container bridge-init
 *                                                         ▲                (`kubemcp bridge-init`: copies
 *                                                         │                 the launcher, makes the FIFOs)
 *  container mcp-server (the user's image, no shell needed):
 *    /bridge/bin/busybox sh -c LAUNCH_SCRIPT <command...> <args...>
 *      = exec <command> <args> </bridge/stdin >/bridge/stdout   (stderr stays the container log)
 * ```
 *
 * One long-lived process per pod: the container's restartPolicy restarts it when it exits, and
 * the bridge then re-opens the FIFOs and initializes it again. No `pods/attach`, no extra RBAC,
 * no second workload: the only channel is the pod's own emptyDir.
 *
 * The launcher is Debian's/Alpine's static busybox: `sh -c` opens the FIFOs and `exec`s the
 * user's command, so the process's own stdin/stdout are the FIFOs (no copying process between).
 * Debian's busybox prefers its applets over PATH (`exec cat` would run busybox's cat), so the
 * script resolves a command without a `/` through PATH itself, as the container runtime would,
 * and keeps argv[0] as written (`exec -a`). It contains no `$(` and no `$$`, which Kubernetes
 * would expand or unescape in a container's command (Kubernetes docs: "Define a Command and
 * Arguments for a Container", variable references).
 */

/** Name of the shared emptyDir volume. */
export const BRIDGE_VOLUME = 'bridge';
/** Where every container of a bridged pod mounts the volume. */
export const BRIDGE_DIR = '/bridge';
/** FIFO names inside the directory: the process's stdin (bridge writes) and stdout (bridge reads). */
export const STDIN_FIFO = 'stdin';
export const STDOUT_FIFO = 'stdout';
/** The launcher's path inside the directory. */
export const LAUNCHER = 'bin/busybox';
/** Names of the containers the bridge adds. */
export const BRIDGE_CONTAINER = 'mcp-bridge';
export const BRIDGE_INIT_CONTAINER = 'bridge-init';

/**
 * Where `kubemcp bridge-init` looks for a static busybox in the kubemcp image, in order:
 * Alpine's busybox-static package, Debian's busybox-static package.
 */
export const LAUNCHER_SOURCES = ['/bin/busybox.static', '/bin/busybox'];

/** The paths of one bridge directory (`/bridge` in a pod, a temporary directory in tests). */
export interface BridgePaths {
  dir: string;
  stdin: string;
  stdout: string;
  launcher: string;
}

/** The paths of a bridge directory `dir`. */
export function bridgePaths(dir: string = BRIDGE_DIR): BridgePaths {
  const d = dir.replace(/\/+$/, '') || '/';
  return { dir: d, stdin: `${d}/${STDIN_FIFO}`, stdout: `${d}/${STDOUT_FIFO}`, launcher: `${d}/${LAUNCHER}` };
}

/**
 * The `sh -c` script the launcher runs. `$0` is the user's command[0], `$@` the rest of command
 * and then args. Exit code 127 with a message on stderr when the command is not found.
 */
export function launchScript(dir: string = BRIDGE_DIR): string {
  const p = bridgePaths(dir);
  return [
    'c="$0"',
    'case "$c" in */*) ;; *) p=""; IFS=:; for d in $PATH; do if [ -f "$d/$c" ] && [ -x "$d/$c" ]; then p="$d/$c"; break; fi; done; unset IFS;' +
      ' [ -n "$p" ] || { echo "kubemcp launcher: $c: not found in PATH" >&2; exit 127; }; c="$p";; esac',
    `exec -a "$0" "$c" "$@" <"${p.stdin}" >"${p.stdout}"`,
  ].join('\n');
}

/**
 * The argv of the MCP server container: the launcher running `command args` on the FIFOs. In a
 * pod this is the container's `command` (args stay empty, so nothing of the image's CMD leaks in).
 * @param command the spec's command (at least the executable).
 * @param args the spec's args.
 */
export function launcherArgv(
  command: readonly string[],
  args: readonly string[] = [],
  dir: string = BRIDGE_DIR,
): string[] {
  return [bridgePaths(dir).launcher, 'sh', '-c', launchScript(dir), ...command, ...args];
}

/** The args of the init container (the kubemcp image's entrypoint is `node dist/js/cli.js`). */
export function bridgeInitArgs(dir: string = BRIDGE_DIR): string[] {
  return ['bridge-init', '--dir', dir];
}

/**
 * The args of the bridge sidecar listening on `port` (all interfaces: probes come from the
 * kubelet), with the gateway's access options when `access` is given ({@link accessArgs}).
 */
export function bridgeArgs(port: number, dir: string = BRIDGE_DIR, access?: GatewayAccessConfig): string[] {
  return ['bridge', '--dir', dir, '--port', String(port), '--host', '0.0.0.0', ...(access ? accessArgs(access) : [])];
}

/**
 * The gateway's reverse-proxy mode in an HTTP MCPServer's pod (issue 17; ./proxy.ts):
 *
 * ```
 *  MCP client ──HTTP──▶ Service <name>:<spec.port> ──▶ container mcp-gateway: `kubemcp gateway`
 *                        (targetPort "mcp")               :<gatewayPort(spec.port)>, auth, audit
 *                                                           │ http://127.0.0.1:<spec.port>
 *                                                           ▼
 *                                                   container mcp-server (the user's image)
 * ```
 * A bridged stdio pod needs no second hop: its `kubemcp bridge` sidecar is the gateway (the same
 * access options, {@link accessArgs}).
 */
export const GATEWAY_CONTAINER = 'mcp-gateway';
/** The gateway's own path prefix, its health and metrics paths (nothing under the prefix is proxied). */
export const GATEWAY_PATH_PREFIX = '/.kubemcp/';
export const GATEWAY_HEALTH_PATH = '/.kubemcp/healthz';
export const GATEWAY_METRICS_PATH = '/.kubemcp/metrics';
/** The port the gateway listens on in an HTTP MCPServer's pod, 18080 (18081 when the server itself uses 18080). */
export const GATEWAY_PORT = 18080;
export function gatewayPort(serverPort: number): number {
  return serverPort === GATEWAY_PORT ? GATEWAY_PORT + 1 : GATEWAY_PORT;
}

/**
 * Sealed sessions across replicas (issue 18, ./sessions.ts): the Secret `<name>-session-keys` the
 * operator keeps per MCPServer (data `current`, and `previous` after a rotation, 32 random bytes
 * each), mounted read-only into the gateway at {@link SESSION_KEYS_DIR}; the headless Service
 * `<name>-peers` (publishNotReadyAddresses) whose A records are the MCPServer's current pods.
 */
export const SESSION_KEYS_DIR = '/var/run/kubemcp/session-keys';
export const SESSION_KEY_CURRENT = 'current';
export const SESSION_KEY_PREVIOUS = 'previous';
/** A session key's length in bytes (AES-256). */
export const SESSION_KEY_BYTES = 32;
export function sessionKeysSecretName(name: string): string {
  return `${name}-session-keys`;
}
export function peersServiceName(name: string): string {
  return `${name}-peers`;
}
/**
 * The environment of the gateway's process (the `mcp-gateway` and `mcp-bridge` containers; the
 * benches run it the same way). `--max-semi-space-size=1` (MiB) caps V8's young generation, which
 * otherwise grows to 3 x 16 MiB under a stream of requests: after 10,000 calls of 100 sessions on
 * loopback the gateway's RSS was 102 MiB without it, 80 with it, 75 with both (docs/gateway.md,
 * "Speed and memory"; Node.js docs, "--max-semi-space-size"). `MALLOC_ARENA_MAX=2`: glibc's malloc
 * otherwise keeps an arena per thread that allocates (mallopt(3), M_ARENA_MAX). The same settings
 * as the controller's (charts/operator-config.ts).
 */
export const GATEWAY_PROCESS_ENV = { NODE_OPTIONS: '--max-semi-space-size=1', MALLOC_ARENA_MAX: '2' } as const;

/**
 * V8 flags the gateway's process sets on itself when a serving mode starts (`kubemcp gateway`,
 * `kubemcp bridge`: gateway/command.ts, `v8.setFlagsFromString`), because Node.js refuses them in
 * NODE_OPTIONS. `--optimize-for-size` makes V8's heap controller grow the old generation by a
 * smaller factor, so garbage is collected before it piles up: after 10,000 calls of 100 sessions
 * on loopback the gateway's RSS was 80 MiB with {@link GATEWAY_PROCESS_ENV} alone and 62 with this
 * flag too, with the same median latency (docs/gateway.md, "Speed and memory"). V8 reads the flag
 * at each garbage collection, so setting it at start takes effect (measured; the V8 flag list,
 * `node --v8-options`).
 */
export const GATEWAY_V8_FLAGS = ['--optimize-for-size'] as const;

/** The env vars naming the gateway's pod (downward API `status.podIP`, `metadata.name`). */
export const POD_IP_ENV = 'POD_IP';
export const POD_NAME_ENV = 'POD_NAME';

/** The env var the gateway's args name for its namespace (downward API `metadata.namespace`). */
export const NAMESPACE_ENV = 'POD_NAMESPACE';

/** What the gateway needs to know about its MCPServer: {@link accessArgs}. */
export interface GatewayAccessConfig {
  /** The MCPServer's name (its namespace comes from {@link NAMESPACE_ENV} in the pod). */
  name: string;
  mode: 'kubernetes' | 'oidc' | 'none';
  /** `spec.auth.tools` (./tools.ts). */
  tools?: ReadonlyArray<{ names: string[]; users?: string[]; groups?: string[]; serviceAccounts?: string[] }>;
  /** Mode `oidc`: `spec.auth.oidc`. */
  oidc?: {
    issuer: string;
    jwksUri?: string;
    usernameClaim?: string;
    usernamePrefix?: string;
    groupsClaim?: string;
    groupsPrefix?: string;
  };
  /** The Service port and MCP path: the canonical URL `http://<name>.<ns>.svc.cluster.local:<port><path>`. */
  port: number;
  path: string;
  /** Audiences accepted besides the canonical URL (`spec.auth.audiences`). */
  audiences?: readonly string[];
}

/** Escapes `$(` so Kubernetes does not expand it in a container's args (`$$(` stays `$(`). */
const literal = (s: string) => s.replaceAll('$(', () => '$$(');

/**
 * The access options of both gateway modes: `--auth`, `--mcpserver $(POD_NAMESPACE)/<name>`,
 * `--peers <name>-peers.$(POD_NAMESPACE).svc.cluster.local` (sealed sessions, ./sessions.ts) and,
 * in modes kubernetes and oidc, `--audience` for the canonical URL (status.url) and each extra
 * audience; in mode oidc, the `--oidc-*` options of `spec.auth.oidc`; `--tool-policy` (JSON)
 * when `spec.auth.tools` is set.
 * `$(POD_NAMESPACE)` is expanded by the kubelet (Kubernetes: dependent environment variables).
 */
export function accessArgs(c: GatewayAccessConfig): string[] {
  const ns = `$(${NAMESPACE_ENV})`;
  const args = ['--auth', c.mode, '--mcpserver', `${ns}/${c.name}`];
  // Sealed sessions across replicas (./sessions.ts): the current pods are the headless Service's A records.
  args.push('--peers', `${peersServiceName(c.name)}.${ns}.svc.cluster.local`);
  if (c.mode !== 'none') {
    args.push('--audience', `http://${c.name}.${ns}.svc.cluster.local:${c.port}${literal(c.path)}`);
    for (const a of c.audiences ?? []) args.push('--audience', literal(a));
  }
  if (c.tools) args.push('--tool-policy', literal(JSON.stringify(c.tools)));
  if (c.mode === 'oidc' && c.oidc) {
    const o = c.oidc;
    args.push('--oidc-issuer', literal(o.issuer));
    if (o.jwksUri !== undefined) args.push('--oidc-jwks-uri', literal(o.jwksUri));
    if (o.usernameClaim !== undefined) args.push('--oidc-username-claim', literal(o.usernameClaim));
    if (o.usernamePrefix !== undefined) args.push('--oidc-username-prefix', literal(o.usernamePrefix));
    if (o.groupsClaim !== undefined) args.push('--oidc-groups-claim', literal(o.groupsClaim));
    if (o.groupsPrefix !== undefined) args.push('--oidc-groups-prefix', literal(o.groupsPrefix));
  }
  return args;
}

/** The args of the reverse-proxy gateway in front of a server on `upstreamPort` (the kubemcp image's entrypoint). */
export function gatewayArgs(upstreamPort: number, c: GatewayAccessConfig): string[] {
  return [
    'gateway',
    '--upstream',
    `http://127.0.0.1:${upstreamPort}`,
    '--port',
    String(gatewayPort(upstreamPort)),
    '--host',
    '0.0.0.0',
    ...accessArgs(c),
  ];
}
