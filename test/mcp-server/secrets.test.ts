/**
 * Secret masking (issue 5): Secret values never leave the server unless --show-secrets, whatever
 * the path: get/list/describe/apply/patch results, `secret/<name>`, `secrets`, lower/upper-case
 * kinds, short names, apply-then-read, the last-applied annotation, a v1 List, watch-driven
 * resources, and the audit log. Against the real apiserver; the server runs in-process on HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createNamespace, kubeConfig } from '../kube.js';
import { startHttpServer, type HttpServer, callTool } from './helpers.js';

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const VALUE = 'hunter2-topsecret';
const B64 = Buffer.from(VALUE).toString('base64');
let ns: string;
let s: HttpServer;
let c: Client;
let auditFile: string;

const call = async (name: string, args: Record<string, unknown>) => await callTool(c, name, args);
/** Neither the value nor its base64 appears anywhere in the result (text and structured content). */
const expectClean = (r: unknown) => {
  const all = JSON.stringify(r);
  expect(all).not.toContain(VALUE);
  expect(all).not.toContain(B64);
};

beforeAll(async () => {
  ns = await createNamespace(kc, 'mcp-secrets');
  await core.createNamespacedSecret({
    namespace: ns,
    body: {
      metadata: {
        name: 'creds',
        annotations: {
          'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ stringData: { password: VALUE } }),
        },
      },
      data: { password: B64 },
    },
  });
  auditFile = path.join(mkdtempSync(path.join(tmpdir(), 'kubemcp-audit-')), 'audit.jsonl');
  s = await startHttpServer({}, {}, { auditLog: auditFile });
  c = await s.connect();
});
afterAll(async () => {
  await s?.close();
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('Secret values are masked', () => {
  const spellings: Array<Record<string, string>> = [
    { kind: 'Secret', name: 'creds' },
    { kind: 'secret', name: 'creds' },
    { kind: 'SECRET', name: 'creds' },
    { kind: 'secrets', name: 'creds' },
    { kind: 'Secrets', name: 'creds' },
    { kind: 'secret/creds' },
    { kind: 'secrets/creds' },
    { kind: 'SeCrEt/creds' },
    { kind: 'secrets', name: 'creds', apiVersion: 'v1' },
  ];
  it.each(spellings)('get-resource %j', async (args) => {
    const r = await call('get-resource', { ...args, namespace: ns });
    expect(r.isError).toBeFalsy();
    expectClean(r);
    expect(r.structuredContent.object.data).toEqual({ password: '***' });
    expect(
      r.structuredContent.object.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'],
    ).toBeUndefined();
  });

  it('describe-resource, list-resources (table) and a raw list through the gateway', async () => {
    expectClean(await call('describe-resource', { kind: 'secret', name: 'creds', namespace: ns }));
    const l = await call('list-resources', { kind: 'secrets', namespace: ns });
    expect(l.isError).toBeFalsy();
    expectClean(l);
    const all = await call('list-resources', { kind: 'secret', allNamespaces: true });
    expectClean(all);
    // The gateway masks list items (which carry no kind) by the request's resource.
    const api = await s.kube.resolve('secrets');
    const raw = await s.kube.list({ api, namespace: ns });
    expectClean(raw);
    expect(raw.items.find((i) => i.metadata?.name === 'creds')?.data).toEqual({ password: '***' });
  });

  it('apply-manifest (dry run and real) and apply-then-read, with data and stringData', async () => {
    const manifest = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: applied\nstringData:\n  token: ${VALUE}\ndata:\n  other: ${B64}\n`;
    const dry = await call('apply-manifest', { manifest, namespace: ns, dryRun: true });
    expect(dry.isError).toBeFalsy();
    expectClean(dry);
    const real = await call('apply-manifest', { manifest, namespace: ns });
    expect(real.isError).toBeFalsy();
    expectClean(real);
    const read = await call('get-resource', { kind: 'secret/applied', namespace: ns });
    expectClean(read);
    expect(Object.keys(read.structuredContent.object.data).sort()).toEqual(['other', 'token']);
    // The value really is stored: the masking is on output only.
    const stored = await core.readNamespacedSecret({ name: 'applied', namespace: ns });
    expect(Buffer.from(stored.data!.token!, 'base64').toString()).toBe(VALUE);
  });

  it('a Secret inside a v1 List and in a multi-document manifest', async () => {
    const list = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'json-secret' },
      data: { k: B64 },
    });
    const r = await call('apply-manifest', { manifest: `${list}`, namespace: ns });
    expectClean(r);
    const multi = await call('apply-manifest', {
      manifest: `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm1}\ndata: {a: b}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s2}\nstringData: {x: ${VALUE}}\n`,
      namespace: ns,
    });
    expect(multi.isError).toBeFalsy();
    expectClean(multi);
  });

  it('patch-resource on a Secret returns masked data', async () => {
    const r = await call('patch-resource', {
      kind: 'secret',
      name: 'creds',
      namespace: ns,
      patch: { stringData: { more: VALUE } },
    });
    expect(r.isError).toBeFalsy();
    expectClean(r);
    expect(r.structuredContent.object.data.more).toBe('***');
  });

  it('the audit log masks Secret values in tool arguments', () => {
    const lines = readFileSync(auditFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThanOrEqual(4);
    for (const l of lines) {
      expect(l).toMatchObject({
        audit: true,
        tool: expect.any(String),
        result: expect.stringMatching(/^(ok|error)$/),
        time: expect.any(String),
      });
    }
    expect(lines.some((l) => l.tool === 'apply-manifest' && l.target?.includes('secret/'))).toBe(true);
    const all = readFileSync(auditFile, 'utf8');
    expect(all).not.toContain(VALUE);
    expect(all).not.toContain(B64);
  });

  it('--show-secrets shows them (explicit opt-in)', async () => {
    const open = await startHttpServer({ showSecrets: true });
    try {
      const oc = await open.connect();
      const r = await callTool(oc, 'get-resource', { kind: 'secret/creds', namespace: ns });
      expect(r.structuredContent.object.data.password).toBe(B64);
    } finally {
      await open.close();
    }
  });
});
