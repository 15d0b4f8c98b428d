/**
 * `kubemcp serve`'s flags through commander (issue 9, "The gateway, typed": commander's
 * `Option.env` instead of hand-written environment lookups): the precedence docs/serve.md documents,
 * flag > environment variable > MCP_CONFIG_FILE > default, parsed exactly as the CLI parses them;
 * on/off variables read by value; a bad value named with its variable. Pure logic: no cluster.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { addServeOptions, parseBool, resolveServeOptions, type ServeFlags } from '../../mcp-server/command.js';

/** Every variable the serve flags read, cleared around each parse so the runner's own environment plays no part. */
const VARS = [
  'MCP_TRANSPORT',
  'MCP_PORT',
  'PORT',
  'MCP_HOST',
  'MCP_READ_ONLY',
  'MCP_DISABLE_DESTRUCTIVE',
  'MCP_ALLOW_TOOLS',
  'MCP_DENY_TOOLS',
  'MCP_NAMESPACES',
  'MCP_DENY_KINDS',
  'MCP_SHOW_SECRETS',
  'MCP_CONTEXT',
  'MCP_ALLOW_CONTEXTS',
  'MCP_AUDIT_LOG',
  'MCP_TOKEN',
  'MCP_STATELESS',
  'MCP_IMPERSONATE',
  'MCP_ALLOWED_HOSTS',
  'MCP_CORS_ORIGINS',
  'MCP_MAX_OUTPUT',
  'MCP_MAX_SUBSCRIPTIONS',
  'MCP_MAX_WATCHES',
  'MCP_CONFIG_FILE',
  'LOG_LEVEL',
  'KUBERNETES_SERVICE_HOST',
];
const saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]));

afterEach(() => {
  for (const v of VARS) {
    if (saved[v] === undefined) delete process.env[v];
    else process.env[v] = saved[v];
  }
});

/** Parses `argv` as `kubemcp serve` would with exactly `env` set, and resolves the options. */
function serve(argv: string[], env: Record<string, string> = {}) {
  for (const v of VARS) delete process.env[v];
  Object.assign(process.env, env);
  let flags: ServeFlags = {};
  const cmd = addServeOptions(new Command('serve'))
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined })
    .action((f: ServeFlags) => {
      flags = f;
    });
  cmd.parse(argv, { from: 'user' });
  return resolveServeOptions(flags, process.env);
}

function configFile(doc: unknown): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'kubemcp-config-')), 'config.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

describe('serve flags: flag > environment > MCP_CONFIG_FILE > default', () => {
  const file = () =>
    configFile({
      server: { port: 6000, transport: 'http' },
      config: { readOnly: true, namespaces: 'from-file', maxOutput: 5000 },
    });

  it('takes the defaults when nothing is set', () => {
    const o = serve([]);
    expect(o).toMatchObject({
      transport: 'stdio',
      port: 3001,
      host: '127.0.0.1',
      readOnly: false,
      showSecrets: false,
      namespaces: [],
      auditLog: 'stderr',
      maxOutput: 24000,
      maxSubscriptions: 16,
      maxWatches: 100,
      logLevel: 'info',
    });
  });

  it('the config file (named by MCP_CONFIG_FILE or --config) beats the defaults', () => {
    const f = file();
    for (const o of [serve([], { MCP_CONFIG_FILE: f }), serve(['--config', f])]) {
      expect(o).toMatchObject({
        transport: 'http',
        port: 6000,
        readOnly: true,
        namespaces: ['from-file'],
        maxOutput: 5000,
      });
    }
  });

  it('an environment variable beats the config file', () => {
    const o = serve([], {
      MCP_CONFIG_FILE: file(),
      MCP_PORT: '5000',
      MCP_TRANSPORT: 'stdio',
      MCP_READ_ONLY: 'false',
      MCP_NAMESPACES: 'a,b',
      MCP_MAX_OUTPUT: '7000',
    });
    expect(o).toMatchObject({
      transport: 'stdio',
      port: 5000,
      readOnly: false,
      namespaces: ['a', 'b'],
      maxOutput: 7000,
    });
  });

  it('a flag beats its environment variable and the config file', () => {
    const o = serve(
      ['--port', '4000', '--transport', 'http', '--read-only', '--namespaces', 'c', '--max-output', '8000'],
      {
        MCP_CONFIG_FILE: file(),
        MCP_PORT: '5000',
        MCP_TRANSPORT: 'stdio',
        MCP_READ_ONLY: 'false',
        MCP_NAMESPACES: 'a,b',
        MCP_MAX_OUTPUT: '7000',
      },
    );
    expect(o).toMatchObject({ transport: 'http', port: 4000, readOnly: true, namespaces: ['c'], maxOutput: 8000 });
    expect(serve(['--read-only', 'false'], { MCP_READ_ONLY: 'true' }).readOnly).toBe(false);
  });

  it('PORT (seed 001) is read after MCP_PORT and before the config file', () => {
    expect(serve([], { PORT: '7000' }).port).toBe(7000);
    expect(serve([], { PORT: '7000', MCP_PORT: '5000' }).port).toBe(5000);
    expect(serve([], { PORT: '7000', MCP_CONFIG_FILE: file() }).port).toBe(7000);
    expect(serve(['-p', '4000'], { PORT: '7000' }).port).toBe(4000);
  });

  it('reads on/off variables by value: MCP_SHOW_SECRETS=false keeps Secrets masked', () => {
    expect(serve([], { MCP_SHOW_SECRETS: 'false' }).showSecrets).toBe(false);
    expect(serve([], { MCP_SHOW_SECRETS: '0' }).showSecrets).toBe(false);
    expect(serve([], { MCP_SHOW_SECRETS: '' }).showSecrets).toBe(false);
    expect(serve([], { MCP_SHOW_SECRETS: 'true' }).showSecrets).toBe(true);
    expect(serve([], { MCP_READ_ONLY: 'YES', MCP_STATELESS: 'on', MCP_DISABLE_DESTRUCTIVE: '1' })).toMatchObject({
      readOnly: true,
      stateless: true,
      disableDestructive: true,
    });
  });

  it('refuses a bad value, naming the variable or flag', () => {
    expect(() => serve([], { MCP_READ_ONLY: 'maybe' })).toThrow(CommanderError);
    expect(() => serve([], { MCP_READ_ONLY: 'maybe' })).toThrow(/MCP_READ_ONLY/);
    expect(() => serve(['--show-secrets', 'perhaps'])).toThrow(/--show-secrets/);
    expect(() => serve([], { MCP_TRANSPORT: 'carrier-pigeon' })).toThrow(/unknown transport "carrier-pigeon"/);
    expect(() => serve([], { MCP_PORT: '70000' })).toThrow(/invalid port "70000"/);
    expect(() => serve(['--max-watches', '-1'])).toThrow(/--max-watches must be an integer >= 0/);
    expect(() => serve(['--config', '/nonexistent/config.json'])).toThrow(/MCP_CONFIG_FILE \/nonexistent\/config.json/);
  });

  it('binds all interfaces in an operator pod (in-cluster, MCP_TRANSPORT set), loopback otherwise', () => {
    expect(serve([], { KUBERNETES_SERVICE_HOST: '10.0.0.1', MCP_TRANSPORT: 'http' }).host).toBe('0.0.0.0');
    expect(serve(['--transport', 'http'], { KUBERNETES_SERVICE_HOST: '10.0.0.1' }).host).toBe('127.0.0.1');
    expect(serve([], { KUBERNETES_SERVICE_HOST: '10.0.0.1', MCP_TRANSPORT: 'http', MCP_HOST: '127.0.0.1' }).host).toBe(
      '127.0.0.1',
    );
  });

  it('--impersonate gateway (MCP_IMPERSONATE, set by the operator for spec.auth.impersonate): HTTP only, not with --token', () => {
    expect(serve([]).impersonate).toBeUndefined();
    expect(serve(['-t', 'http', '--impersonate', 'gateway']).impersonate).toBe('gateway');
    expect(serve([], { MCP_TRANSPORT: 'streamable-http', MCP_IMPERSONATE: 'gateway' }).impersonate).toBe('gateway');
    expect(serve(['-t', 'http'], { MCP_IMPERSONATE: 'off' }).impersonate).toBeUndefined();
    expect(() => serve(['--impersonate', 'gateway'])).toThrow(/needs the HTTP transport/);
    expect(() => serve(['-t', 'http', '--impersonate', 'everyone'])).toThrow(/must be "gateway" or "off"/);
    expect(() => serve(['-t', 'http', '--impersonate', 'gateway', '--token', 't'])).toThrow(/exclude each other/);
  });

  it('parseBool accepts the usual spellings only', () => {
    for (const t of ['1', 'true', 'TRUE', 'yes', 'on']) expect(parseBool(t)).toBe(true);
    for (const f of ['0', 'false', 'No', 'off', '']) expect(parseBool(f)).toBe(false);
    expect(() => parseBool('2')).toThrow(/expected true\/false/);
  });
});
