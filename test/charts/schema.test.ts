import { describe, expect, it } from '@jest/globals';
import { mcpServerCrd, mcpServerOpenAPISchema, NAME_RULE } from '../../charts/api/crd.js';
import { DEFAULTS, DNS1035_LABEL, mcpServerSpec } from '../../charts/api/schema.js';
import { MCPServerValidationError, parseMCPServer, parseMCPServerSpec } from '../../charts/api/validate.js';
import { quantityValue } from '../../charts/api/quantity.js';
import { loadSamples } from '../../charts/samples.js';
import type { V1CustomResourceDefinition } from '@kubernetes/client-node';
import type { Sure } from '../shapes.js';

type Schema = { [k: string]: unknown; properties?: Record<string, Schema> };
const specSchema = () => mcpServerOpenAPISchema().properties as Record<string, Schema>;

function errorsOf(fn: () => unknown): { field: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MCPServerValidationError);
    return (err as MCPServerValidationError).errors;
  }
  throw new Error('expected a validation error');
}

describe('MCPServer schema: defaults (seed 003 kubebuilder markers)', () => {
  it('fills transport, port, replicas and the MCP path', () => {
    const spec = parseMCPServerSpec({ image: 'x:1' });
    expect(spec).toEqual({ image: 'x:1', transport: 'streamable-http', port: 8080, replicas: 1, path: '/mcp' });
    expect(DEFAULTS).toEqual({ transport: 'streamable-http', port: 8080, replicas: 1, path: '/mcp' });
  });
  it('spec.path must be an absolute path without query or spaces', () => {
    expect(parseMCPServerSpec({ image: 'x', path: '/v1/mcp' }).path).toBe('/v1/mcp');
    for (const path of ['mcp', '/a b', '/mcp?x=1', ''])
      expect(() => parseMCPServerSpec({ image: 'x', path })).toThrow(/spec\.path: must be an absolute URL path/);
  });
  it('keeps command and args as written (Kubernetes container semantics)', () => {
    const spec = parseMCPServerSpec({
      image: 'x',
      transport: 'stdio',
      command: ['npx', '$(PKG)'],
      args: ['--flag', ''],
    });
    expect(spec.command).toEqual(['npx', '$(PKG)']);
    expect(spec.args).toEqual(['--flag', '']);
    expect(parseMCPServerSpec({ image: 'x' }).command).toBeUndefined();
  });
  it('spec.auth.oidc (issue 17): required by mode oidc, refused under another mode, issuer https (loopback http only)', () => {
    const oidc = { issuer: 'https://issuer.example' };
    expect(parseMCPServerSpec({ image: 'x', auth: { mode: 'oidc', oidc } }).auth).toEqual({ mode: 'oidc', oidc });
    expect(() => parseMCPServerSpec({ image: 'x', auth: { mode: 'oidc' } })).toThrow(
      /spec\.auth\.oidc: auth mode oidc requires auth\.oidc\.issuer/,
    );
    expect(() => parseMCPServerSpec({ image: 'x', auth: { oidc } })).toThrow(
      /spec\.auth\.mode: auth\.oidc is set but auth mode is kubernetes/,
    );
    for (const issuer of ['http://issuer.example', 'issuer.example', 'ftp://127.0.0.1'])
      expect(() => parseMCPServerSpec({ image: 'x', auth: { mode: 'oidc', oidc: { issuer } } })).toThrow(
        /spec\.auth\.oidc\.issuer: must be an https URL/,
      );
    expect(() =>
      parseMCPServerSpec({ image: 'x', auth: { mode: 'oidc', oidc: { ...oidc, usernameClaim: 'a b' } } }),
    ).toThrow(/spec\.auth\.oidc\.usernameClaim/);
    expect(
      parseMCPServerSpec({ image: 'x', auth: { mode: 'oidc', oidc: { issuer: 'http://127.0.0.1:5556' } } }).auth,
    ).toBeTruthy();
  });
  it('keeps values the user set', () => {
    const spec = parseMCPServerSpec({ image: 'x', transport: 'http', port: 3001, replicas: 0 });
    expect(spec).toMatchObject({ transport: 'http', port: 3001, replicas: 0 });
  });
  it('accepts every seed sample verbatim', () => {
    const samples = loadSamples();
    expect(samples.map((s) => s.id)).toEqual([
      'seed001-advanced',
      'seed001-basic',
      'seed001-production',
      'seed003-advanced',
      'seed003-basic',
    ]);
    for (const s of samples) expect(parseMCPServer(s.manifest).metadata.name).toMatch(/-mcpserver$/);
  });
});

describe('MCPServer schema: validation names the field and the rule', () => {
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['missing image', {}, 'spec.image', /Required/],
    ['empty image', { image: '' }, 'spec.image', />=1 characters/],
    ['bad transport', { image: 'x', transport: 'grpc' }, 'spec.transport', /stdio.*http.*streamable-http/],
    ['port 0', { image: 'x', port: 0 }, 'spec.port', />=1/],
    ['port 70000', { image: 'x', port: 70000 }, 'spec.port', /<=65535/],
    ['port as string', { image: 'x', port: '8080' }, 'spec.port', /expected number/],
    ['fractional port', { image: 'x', port: 80.5 }, 'spec.port', /int/],
    ['negative replicas', { image: 'x', replicas: -1 }, 'spec.replicas', />=0/],
    [
      'stdio with 2 replicas',
      { image: 'x', transport: 'stdio', replicas: 2 },
      'spec.replicas',
      /stdio transport does not support multiple replicas \(requested: 2\)/,
    ],
    ['config value not a string', { image: 'x', config: { A: 1 } }, 'spec.config.A', /expected string/],
    ['config key not a ConfigMap key', { image: 'x', config: { 'a b': 'x' } }, 'spec.config["a b"]', /ConfigMap key/],
    [
      'config key config.json',
      { image: 'x', config: { 'config.json': '{}' } },
      'spec.config["config.json"]',
      /reserved/,
    ],
    [
      'unknown quantity',
      { image: 'x', resources: { limits: { cpu: 'lots' } } },
      'spec.resources.limits.cpu',
      /quantity/,
    ],
    ['unknown spec field', { image: 'x', replica: 2 }, 'spec.replica', /unknown field/],
    ['env without name', { image: 'x', env: [{ value: 'v' }] }, 'spec.env[0].name', /Required/],
    ['duplicate env', { image: 'x', env: [{ name: 'A' }, { name: 'A' }] }, 'spec.env[1].name', /duplicate/],
    ['empty command', { image: 'x', transport: 'stdio', command: [] }, 'spec.command', />=1 items/],
    [
      'empty executable',
      { image: 'x', transport: 'stdio', command: [''] },
      'spec.command[0]',
      /executable \(command\[0\]\) must not be empty/,
    ],
    ['command not strings', { image: 'x', command: ['node', 1] }, 'spec.command[1]', /expected string/],
    ['args not an array', { image: 'x', args: 'serve' }, 'spec.args', /expected array/],
    [
      'securityContext wrong type',
      { image: 'x', securityContext: { runAsUser: 'root' } },
      'spec.securityContext.runAsUser',
      /expected number/,
    ],
  ];
  it.each(cases)('%s', (_label, spec, field, rule) => {
    const errors = errorsOf(() => parseMCPServerSpec(spec, 'demo'));
    const hit = errors.find((e) => e.field === field);
    expect(hit).toBeDefined();
    expect(hit!.message).toMatch(rule);
  });
  it('checks metadata.name as a DNS-1035 label and lists every failing field at once', () => {
    const err = errorsOf(() =>
      parseMCPServer({
        apiVersion: 'mcp.example.com/v1alpha1',
        kind: 'MCPServer',
        metadata: { name: 'Bad.Name' },
        spec: { port: 0 },
      }),
    );
    expect(err.map((e) => e.field)).toEqual(['metadata.name', 'spec.image', 'spec.port']);
  });
  it('the error message has one line per field', () => {
    expect(() => parseMCPServerSpec({ image: '', port: 0 }, 'demo')).toThrow(
      /MCPServer demo is invalid:\n {2}spec\.image: .*\n {2}spec\.port: /,
    );
  });
});

describe('CRD derived from the schema', () => {
  const crd = mcpServerCrd() as unknown as Sure<V1CustomResourceDefinition>;
  const version = crd.spec.versions[0];
  const spec = specSchema().spec as Schema;

  it('has the names, scope and subresources of seed 003', () => {
    expect(crd.metadata.name).toBe('mcpservers.mcp.example.com');
    expect(crd.metadata.namespace).toBeUndefined();
    expect(crd.spec.names).toMatchObject({
      kind: 'MCPServer',
      plural: 'mcpservers',
      shortNames: ['mcps'],
      categories: ['ai', 'mcp'],
    });
    expect(crd.spec.scope).toBe('Namespaced');
    expect(version.name).toBe('v1alpha1');
    expect(version.subresources).toEqual({
      status: {},
      scale: {
        specReplicasPath: '.spec.replicas',
        statusReplicasPath: '.status.replicas',
        labelSelectorPath: '.status.selector',
      },
    });
    expect(version.additionalPrinterColumns.map((c: { name: string }) => c.name)).toEqual([
      'Phase',
      'Ready',
      'Replicas',
      'Transport',
      'Verified',
      'Tools',
      'Auth',
      'Reason',
      'Endpoint',
      'Age',
    ]);
  });
  it('spec has exactly the fields of MCPServerSpec, with defaults, enums, bounds and required', () => {
    expect(Object.keys(spec.properties!)).toEqual([
      'image',
      'transport',
      'port',
      'replicas',
      'config',
      'resources',
      'securityContext',
      'serviceAccount',
      'env',
      'path',
      'command',
      'args',
      'auth',
      'allowFrom',
    ]);
    expect(Object.keys(spec.properties!)).toEqual(Object.keys(mcpServerSpec.shape));
    expect((spec.properties!.auth as Schema).properties!.mode).toMatchObject({
      type: 'string',
      enum: ['kubernetes', 'oidc', 'none'],
      default: 'kubernetes',
    });
    expect(spec.required).toEqual(['image']);
    expect(spec.properties!.image).toMatchObject({ type: 'string', minLength: 1 });
    expect(spec.properties!.transport).toMatchObject({
      type: 'string',
      enum: ['stdio', 'http', 'streamable-http'],
      default: 'streamable-http',
    });
    expect(spec.properties!.port).toMatchObject({ type: 'integer', minimum: 1, maximum: 65535, default: 8080 });
    expect(spec.properties!.replicas).toMatchObject({ type: 'integer', minimum: 0, default: 1, format: 'int32' });
    expect(spec.properties!.command).toMatchObject({ type: 'array', minItems: 1, items: { type: 'string' } });
    expect(spec.properties!.args).toMatchObject({ type: 'array', items: { type: 'string' } });
  });
  it('writes quantities as int-or-string with the Quantity pattern', () => {
    const cpu = (spec.properties!.resources as Schema).properties!.limits!.additionalProperties as Schema;
    expect(cpu['x-kubernetes-int-or-string']).toBe(true);
    expect(cpu.anyOf).toEqual([{ type: 'integer' }, { type: 'string' }]);
    expect(new RegExp(cpu.pattern as string).test('128Mi')).toBe(true);
    expect(new RegExp(cpu.pattern as string).test('lots')).toBe(false);
  });
  it('is a structural schema: no additionalProperties false, no propertyNames, no JS integer bounds', () => {
    const text = JSON.stringify(version.schema);
    expect(text).not.toContain('"additionalProperties":false');
    expect(text).not.toContain('propertyNames');
    expect(text).not.toContain('9007199254740991');
    expect(text).not.toContain('$schema');
  });
  it('the CEL name rule matches the schema rule', () => {
    expect(NAME_RULE.rule).toContain(DNS1035_LABEL.source);
  });
});

describe('quantityValue', () => {
  it.each([
    ['100m', 0.1],
    ['2', 2],
    [2, 2],
    ['128Mi', 128 * 2 ** 20],
    ['1G', 1e9],
    ['1.5', 1.5],
    ['1e3', 1000],
    ['.5Ki', 512],
  ])('%s -> %d', (q, v) => expect(quantityValue(q as string | number)).toBeCloseTo(v as number));
  it('throws on a non-quantity', () => expect(() => quantityValue('lots')).toThrow(/not a Kubernetes quantity/));
});
