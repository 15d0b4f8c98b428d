/**
 * The official MCP conformance suite in `npm test` (issue 18): npm
 * @modelcontextprotocol/conformance 0.2.0-alpha.12, its server scenarios at the 2025-11-25 wire
 * (`--spec-version 2025-11-25`), run by the suite's own CLI as a child process on Node 22 (the
 * suite needs it; the project's Node stays 20: {@link ensureNode22} installs npm's `node@22`
 * package once into ~/.cache/kubemcp/node22), against:
 *
 * 1. `kubemcp serve` over Streamable HTTP (in this process, loopback, against the local
 *    cluster): the scenarios that apply to a Kubernetes MCP server, selected one by one, at
 *    2025-11-25 ({@link SERVE_SCENARIOS}) and at 2026-07-28 ({@link SERVE_SCENARIOS_2026}); the others call the suite's fixture tools, resources and prompts
 *    (`test_simple_text`, `test://static-text`, `test_prompt_with_arguments`, ...), which
 *    kubemcp does not have and rightly answers -32602 for.
 * 2. The gateway's stdio bridge (gateway/bridge.ts + gateway/http.ts, in this process, auth
 *    `none`, on 127.0.0.1) in front of test/fixtures/conformance-server.ts, a stdio server of
 *    ours implementing the suite's scenario tools, resources and prompts through the FIFOs and
 *    the busybox launcher as a bridged pod runs it (./bridge-harness.ts): the whole 2025-11-25
 *    suite (`--suite all`, pending scenarios included), so image, audio, embedded resources,
 *    progress, logging, sampling, elicitation (SEP-1034 defaults, SEP-1330 enums), completion
 *    and subscriptions are shown to cross the bridge unchanged. The bridge forwards the
 *    process's sampling and elicitation requests only with `clientCapabilities`, set here.
 *    Beside the suite, SDK clients check what it does not: the resource update reaches the
 *    subscribed session; a request on a streamed call's own stream; a session without the
 *    capability, or two sessions with calls in flight (stdio cannot say whose request it is),
 *    get a refusal rather than a hang or a wrong recipient.
 *
 * Every run passes ./conformance-expected-failures.yaml (the suite's `--expected-failures`
 * baseline, empty: nothing that applies fails) and the test asserts the suite's own verdict: its
 * exit code, its summary line, and every scenario's checks (results/<scenario>/checks.json in a
 * temporary `-o` directory): at least one SUCCESS, no FAILURE, no WARNING. Each suite process is
 * started by pid and killed (SIGKILL) if it outlives its bound.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import pino from 'pino';
import { Registry } from 'prom-client';
import { startGatewayProxy, type RunningGatewayProxy } from '../../gateway/proxy.js';
import { accessFromOptions } from '../../gateway/setup.js';
import { ROOT, startBridged, until, type Bridged } from './bridge-harness.js';
import { startHttpServer, text, type HttpServer } from './helpers.js';
import { ensureNode22 } from '../node22.js';

/** The suite's version this test is written against (package.json pins it; checked below). */
const SUITE_VERSION = '0.2.0-alpha.12';
/** The suite's CLI (its package.json `bin`). */
const SUITE_CLI = path.join(ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
/** The wire the scenarios run at. */
const SPEC_VERSION = '2025-11-25';
/** The baseline of known failures (the suite's --expected-failures format): empty. */
const EXPECTED_FAILURES = path.join(ROOT, 'test/mcp-server/conformance-expected-failures.yaml');
/** The 2026-07-28 baseline: checks the fixture gives the suite nothing to exercise with (listed with reasons). */
const EXPECTED_FAILURES_2026 = path.join(ROOT, 'test/mcp-server/conformance-expected-failures-2026.yaml');
/** The server scenarios of the suite that 2025-11-25 and 2026-07-28 share. */
const SHARED_SCENARIOS = [
  'completion-complete',
  'tools-list',
  'tools-call-simple-text',
  'tools-call-image',
  'tools-call-audio',
  'tools-call-embedded-resource',
  'tools-call-mixed-content',
  'tools-call-error',
  'tools-call-with-progress',
  'json-schema-2020-12',
  'server-sse-multiple-streams',
  'resources-list',
  'resources-read-text',
  'resources-read-binary',
  'resources-templates-read',
  'prompts-list',
  'prompts-get-simple',
  'prompts-get-with-args',
  'prompts-get-embedded-resource',
  'prompts-get-with-image',
  'dns-rebinding-protection',
];
/** Every server scenario of the suite at 2026-07-28 (`conformance list --server --spec-version 2026-07-28`). */
const ALL_SCENARIOS_2026 = [
  ...SHARED_SCENARIOS,
  'server-stateless',
  'sep-2164-resource-not-found',
  'caching',
  'http-header-validation',
  'http-custom-header-server-validation',
  ...[
    'basic-elicitation',
    'basic-sampling',
    'basic-list-roots',
    'request-state',
    'multiple-input-requests',
    'multi-round',
    'missing-input-response',
    'non-tool-request',
    'result-type',
    'unsupported-methods',
    'tampered-state',
    'capability-check',
    'ignore-extra-params',
    'validate-input',
  ].map((s) => `input-required-result-${s}`),
];
/** The stdio fixture server the bridge runs. */
const FIXTURE = path.join(ROOT, 'test/fixtures/conformance-server.ts');

/**
 * The scenarios that apply to `kubemcp serve`: lifecycle, sessions, ping, logging/setLevel,
 * listings, SSE streams and DNS-rebinding protection. Not run (they call the suite's fixture
 * names): completion-complete (prompt test_prompt_with_arguments), tools-call-* (test_* tools),
 * resources-read-*, resources-templates-read and resources-(un)subscribe (test://...),
 * prompts-get-* (test_* prompts), elicitation-*, json-schema-2020-12 (json_schema_2020_12_tool),
 * server-sse-polling (test_reconnection).
 */
const SERVE_SCENARIOS = [
  'server-initialize',
  'server-session-lifecycle',
  'ping',
  'logging-set-level',
  'tools-list',
  'resources-list',
  'prompts-list',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
];

/** Every server scenario of the suite at 2025-11-25 (`conformance list --server --spec-version 2025-11-25`). */
const ALL_SCENARIOS = [
  ...SHARED_SCENARIOS,
  'server-initialize',
  'server-session-lifecycle',
  'logging-set-level',
  'ping',
  'tools-call-with-logging',
  'tools-call-sampling',
  'tools-call-elicitation',
  'elicitation-sep1034-defaults',
  'server-sse-polling',
  'elicitation-sep1330-enums',
  'resources-subscribe',
  'resources-unsubscribe',
];
/**
 * Scenarios that give no verdict through the bridge, only INFO checks: server-sse-polling calls
 * `test_reconnection`, whose server closes the call's SSE stream mid-call and answers on the
 * resumed stream (SEP-1699); a stdio server cannot reach its client's HTTP stream, and the
 * suite lists the scenario as pending (requirements/2025-11-25.yaml). It must not fail either.
 */
const NO_VERDICT = new Set(['server-sse-polling']);

/** One scenario's checks, counted by status (the suite's checks.json). */
interface ScenarioResult {
  success: number;
  failure: number;
  warning: number;
  info: number;
  /** `<check id>: <error message>` of every FAILURE and WARNING. */
  problems: string[];
}

/** The outcome of one suite process. */
interface SuiteRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  ms: number;
  /** By scenario name. */
  scenarios: Map<string, ScenarioResult>;
  /** The `Total: N passed, M failed` line of a multi-scenario run, if printed. */
  total?: { passed: number; failed: number };
}

/**
 * Runs the suite's `server` command against `url` with `args` on Node 22, with the baseline and
 * a temporary output directory; kills it (SIGKILL, by pid) after `timeoutMs`.
 * @returns its exit code, output and every scenario's checks read from the output directory.
 */
async function runSuite(
  node: string,
  url: string,
  args: string[],
  timeoutMs: number,
  baseline = EXPECTED_FAILURES,
): Promise<SuiteRun> {
  const out = mkdtempSync(path.join(os.tmpdir(), 'kubemcp-conformance-'));
  const started = Date.now();
  try {
    // NODE_OPTIONS emptied: jest's --experimental-vm-modules is not for the suite (and slows it down).
    const child = spawn(
      node,
      [SUITE_CLI, 'server', '--url', url, '--expected-failures', baseline, '-o', out, ...args],
      {
        cwd: out,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NODE_OPTIONS: '', NO_COLOR: '1', FORCE_COLOR: '0' },
      },
    );
    let output = '';
    const collect = (d: Buffer) => void (output = (output + d.toString()).slice(-400_000));
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const timer = setTimeout(
      () => child.pid && child.exitCode === null && process.kill(child.pid, 'SIGKILL'),
      timeoutMs,
    );
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('close', (c, s) => resolve([c, s])),
    );
    clearTimeout(timer);
    const scenarios = new Map<string, ScenarioResult>();
    for (const dir of readdirSync(out)) {
      // results are <out>/server-<scenario>-<ISO timestamp with - for :>/checks.json
      const name = dir.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
      const checks = JSON.parse(readFileSync(path.join(out, dir, 'checks.json'), 'utf8')) as Array<{
        id: string;
        status: string;
        errorMessage?: string;
      }>;
      const count = (s: string) => checks.filter((c) => c.status === s).length;
      scenarios.set(name, {
        success: count('SUCCESS'),
        failure: count('FAILURE'),
        warning: count('WARNING'),
        info: count('INFO'),
        problems: checks
          .filter((c) => c.status === 'FAILURE' || c.status === 'WARNING')
          .map((c) => `${c.id}: ${c.errorMessage ?? c.status}`),
      });
    }
    // eslint-disable-next-line no-control-regex
    const m = /Total: (\d+) passed, (\d+) failed/.exec(output.replace(/\x1b\[[0-9;]*m/g, ''));
    return {
      code,
      signal,
      output,
      ms: Date.now() - started,
      scenarios,
      ...(m ? { total: { passed: Number(m[1]), failed: Number(m[2]) } } : {}),
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** A scenario's checks as a short line for failure messages. */
const show = (name: string, r: ScenarioResult | undefined) =>
  r
    ? `${name}: ${r.success} ok, ${r.failure} failed, ${r.warning} warnings${r.problems.length ? ` (${r.problems.join('; ')})` : ''}`
    : `${name}: not run`;

let node22: string;

beforeAll(async () => {
  const pkg = JSON.parse(
    readFileSync(path.join(ROOT, 'node_modules/@modelcontextprotocol/conformance/package.json'), 'utf8'),
  ) as { version: string };
  expect(pkg.version).toBe(SUITE_VERSION);
  node22 = await ensureNode22();
}, 320_000);

/**
 * The 2026-07-28 scenarios that apply to `kubemcp serve` (its SDK v2 leg, mcp-server/modern.ts):
 * discovery-era listings, SSE streams, DNS rebinding, caching hints, the standard headers'
 * validation, SEP-2164 not-found and the multi round-trip rules a server without the suite's
 * fixture tools can be checked on. Not run (they call fixture names): server-stateless
 * (test_missing_capability, ...), http-custom-header-server-validation (the fixture's
 * x-mcp-header tool), the input-required-result-* scenarios on test_input_required_result_*.
 */
const SERVE_SCENARIOS_2026 = [
  'tools-list',
  'resources-list',
  'prompts-list',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
  'caching',
  'http-header-validation',
  'sep-2164-resource-not-found',
  'input-required-result-unsupported-methods',
  'input-required-result-validate-input',
];

describe('conformance suite against kubemcp serve over HTTP', () => {
  let srv: HttpServer;

  beforeAll(async () => {
    srv = await startHttpServer();
  });
  afterAll(async () => {
    await srv?.close();
  });

  it.each([
    [SPEC_VERSION, SERVE_SCENARIOS],
    ['2026-07-28', SERVE_SCENARIOS_2026],
  ])(
    'passes every scenario that applies to a Kubernetes MCP server (%s)',
    async (spec, scenarios) => {
      // One suite process per scenario (the CLI's --scenario takes one), one after another: at once,
      // they compete with this process's server for the CPU and take longer.
      const runs: Array<readonly [string, SuiteRun]> = [];
      for (const s of scenarios)
        runs.push([s, await runSuite(node22, srv.url, ['--scenario', s, '--spec-version', spec], 12_000)]);
      for (const [s, r] of runs) {
        const got = r.scenarios.get(s);
        expect({ scenario: s, code: r.code, signal: r.signal, ran: [...r.scenarios.keys()] }).toEqual({
          scenario: s,
          code: 0,
          signal: null,
          ran: [s],
        });
        expect(show(s, got)).toBe(show(s, { ...got!, failure: 0, warning: 0, problems: [] }));
        expect(got!.success).toBeGreaterThan(0);
      }
    },
    150_000,
  ); // each scenario takes about 1 s and is killed after 12
});

describe('conformance suite through the gateway stdio bridge in front of our fixture server', () => {
  let b: Bridged;

  beforeAll(async () => {
    b = await startBridged({
      argv: [process.execPath, '--import', 'tsx', FIXTURE],
      // The process may ask the session with a call in flight for sampling and (form) elicitation.
      bridge: { clientCapabilities: { sampling: {}, elicitation: { form: {} } } },
    });
    await until(async () => (await b.ready()).status === 200, 'the bridge to be ready', 60_000);
  });
  afterAll(async () => {
    await b?.close();
  });

  it(`passes the whole ${SPEC_VERSION} server suite, with nothing in the expected-failures baseline`, async () => {
    expect(readFileSync(EXPECTED_FAILURES, 'utf8')).toMatch(/^server: \[\]$/m);
    const r = await runSuite(node22, b.url, ['--suite', 'all', '--spec-version', SPEC_VERSION], 60_000);
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    expect([...r.scenarios.keys()].sort()).toEqual([...ALL_SCENARIOS].sort());
    let success = 0;
    for (const s of ALL_SCENARIOS) {
      const got = r.scenarios.get(s)!;
      success += got.success;
      expect(show(s, got)).toBe(show(s, { ...got, failure: 0, warning: 0, problems: [] }));
      if (!NO_VERDICT.has(s)) expect({ s, success: got.success > 0 }).toEqual({ s, success: true });
    }
    expect(r.total).toEqual({ passed: success, failed: 0 });
    // The scenarios that show the bridge carries what a shared process cannot do by itself.
    for (const s of [
      'tools-call-sampling',
      'tools-call-elicitation',
      'elicitation-sep1330-enums',
      'resources-subscribe',
    ])
      expect(r.scenarios.get(s)!.success).toBeGreaterThanOrEqual(2);
  });

  it('a subscribed session gets the resource update; a session without sampling gets a refusal, not a hang', async () => {
    const c: Client = await b.connect('conformance-extra');
    const seen: string[] = [];
    c.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => void seen.push(n.params.uri));
    await c.subscribeResource({ uri: 'test://watched-resource' });
    await until(() => seen.length > 0, 'notifications/resources/updated through the bridge', 10_000);
    expect(seen).toEqual(['test://watched-resource']);
    await c.unsubscribeResource({ uri: 'test://watched-resource' });
    // This client declared no sampling capability: the bridge answers the process's request itself.
    const r = await c.callTool({ name: 'test_sampling', arguments: { prompt: 'hello' } });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/sampling\/createMessage is not available: the kubemcp bridge/);
  });

  it('with calls of two sessions in flight, whose request it is is unknown: refused, and the other call goes on', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let asked!: () => void;
    const elicitationAsked = new Promise<void>((r) => (asked = r));
    const a = new Client({ name: 'conformance-a', version: '1.0.0' }, { capabilities: { elicitation: { form: {} } } });
    a.setRequestHandler(ElicitRequestSchema, async () => {
      asked();
      await held;
      return { action: 'accept', content: { response: 'later' } };
    });
    const c = new Client({ name: 'conformance-c', version: '1.0.0' }, { capabilities: { sampling: {} } });
    let sampled = 0;
    c.setRequestHandler(CreateMessageRequestSchema, async () => {
      sampled++;
      return { role: 'assistant', content: { type: 'text', text: 'wrong' }, model: 'm' };
    });
    await a.connect(new StreamableHTTPClientTransport(new URL(b.url)));
    await c.connect(new StreamableHTTPClientTransport(new URL(b.url)));
    try {
      // a's call stays in flight while its client holds the elicitation answer.
      const first = a.callTool({ name: 'test_elicitation', arguments: { message: 'hold on' } });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        elicitationAsked,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no elicitation reached a')), 10_000))),
      ]);
      clearTimeout(timer);
      const second = await c.callTool({ name: 'test_sampling', arguments: { prompt: 'whose?' } });
      expect(second.isError).toBe(true);
      expect(text(second)).toMatch(/sampling\/createMessage is not available: the kubemcp bridge/);
      expect(sampled).toBe(0);
      release();
      expect(text(await first)).toBe('User response: action=accept, content={"response":"later"}');
    } finally {
      release();
      await a.close();
      await c.close();
    }
  });

  it("a call answered as a stream carries the process's elicitation and sampling on that stream, answered by its client", async () => {
    const c = new Client(
      { name: 'conformance-streamed', version: '1.0.0' },
      { capabilities: { sampling: {}, elicitation: { form: {} } } },
    );
    c.setRequestHandler(CreateMessageRequestSchema, async (req) => ({
      role: 'assistant',
      content: { type: 'text', text: `echo of ${(req.params.messages[0]!.content as { text: string }).text}` },
      model: 'test-model',
      stopReason: 'endTurn',
    }));
    c.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { response: 'yes' } }));
    await c.connect(new StreamableHTTPClientTransport(new URL(b.url)));
    try {
      // onprogress adds a progress token, so the bridge's HTTP side answers this call as an SSE stream.
      const progress = { onprogress: () => undefined };
      const sampled = await c.callTool({ name: 'test_sampling', arguments: { prompt: 'ping' } }, undefined, progress);
      expect(text(sampled)).toBe('LLM response: echo of ping');
      const elicited = await c.callTool(
        { name: 'test_elicitation', arguments: { message: 'ok?' } },
        undefined,
        progress,
      );
      expect(text(elicited)).toBe('User response: action=accept, content={"response":"yes"}');
    } finally {
      await c.close();
    }
  });
});

describe('2026-07-28 suite through the gateway in front of a 2025-11-25 server (issue 18: gateway/eras.ts)', () => {
  let fixture: ChildProcess | undefined;
  let gw: RunningGatewayProxy;

  beforeAll(async () => {
    // The fixture over 2025-11-25 Streamable HTTP (sessions; it knows nothing of 2026-07-28), and
    // the reverse-proxy gateway in front of it, as in an MCPServer pod (auth none: the suite
    // sends no token; access is tested in test/gateway/proxy.test.ts).
    fixture = spawn(process.execPath, ['--import', 'tsx', FIXTURE, '--http'], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`the fixture did not listen within 60 s: ${err}`)), 60_000);
      fixture!.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /listening on (\S+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      fixture!.once('exit', (code) => reject(new Error(`the fixture exited (${code}): ${err}`)));
    });
    const registry = new Registry();
    gw = await startGatewayProxy({
      upstream: new URL(url).origin,
      port: 0,
      access: accessFromOptions({ auth: 'none' }, pino({ level: 'silent' }), registry),
      registry,
      log: pino({ level: 'silent' }),
    });
  }, 90_000);
  afterAll(async () => {
    await gw?.close();
    if (fixture?.pid && fixture.exitCode === null) process.kill(fixture.pid, 'SIGTERM');
  });

  it('passes every 2026-07-28 scenario the fixture can be tested with: discovery, stateless calls, caching, headers, multi round-trip input (InputRequiredResult)', async () => {
    const r = await runSuite(
      node22,
      `${gw.url}/mcp`,
      ['--suite', 'all', '--spec-version', '2026-07-28'],
      90_000,
      EXPECTED_FAILURES_2026,
    );
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    expect([...r.scenarios.keys()].sort()).toEqual([...ALL_SCENARIOS_2026].sort());
    // Only the baseline's checks fail (each "Not testable" against this fixture).
    const listed = readFileSync(EXPECTED_FAILURES_2026, 'utf8');
    for (const s of ALL_SCENARIOS_2026) {
      const got = r.scenarios.get(s)!;
      const unexpected = got.problems.filter(
        (p) => !listed.includes(`- ${s}\n`) && !listed.includes(`${s}:${p.split(':')[0]}`),
      );
      expect({ s, unexpected }).toEqual({ s, unexpected: [] });
      expect({ s, success: got.success > 0 }).toEqual({ s, success: true });
    }
    // The multi round-trip scenarios ran in full (both rounds, and the wire-schema check): each of
    // the 2025 server's own requests (elicitation, sampling, roots) reached the client as an
    // InputRequiredResult and its answer came back through the retry.
    for (const s of [
      'input-required-result-basic-elicitation',
      'input-required-result-basic-sampling',
      'input-required-result-basic-list-roots',
      'input-required-result-multiple-input-requests',
      'input-required-result-non-tool-request',
    ])
      expect({ s, success: r.scenarios.get(s)!.success }).toEqual({ s, success: 3 });
    expect(r.scenarios.get('input-required-result-multi-round')!.success).toBe(4);
    expect(r.scenarios.get('input-required-result-tampered-state')!).toMatchObject({ success: 2, failure: 0 });
  }, 150_000);
});
