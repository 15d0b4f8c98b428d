/**
 * lib/in-cluster.ts, the gateway's in-cluster credentials without client-node (pure: a temporary
 * ServiceAccount directory and an environment of the test's own): the apiserver URL from
 * KUBERNETES_SERVICE_HOST/PORT (IPv6 bracketed), the CA and bearer token applied to node's request
 * options, the token re-read after a minute (the kubelet rotates it), a clear error naming a
 * missing file, and nothing outside a pod.
 */
import { afterAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as https from 'node:https';
import { inClusterCredentials } from '../../lib/in-cluster.js';

const dir = mkdtempSync(path.join(tmpdir(), 'kubemcp-sa-'));
writeFileSync(path.join(dir, 'ca.crt'), 'CA PEM');
writeFileSync(path.join(dir, 'token'), 'token-1\n');
const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', KUBEMCP_SERVICEACCOUNT_DIR: dir };

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('inClusterCredentials', () => {
  it('is undefined outside a pod', () => {
    expect(inClusterCredentials({})).toBeUndefined();
  });
  it('names the apiserver and applies the CA and the bearer token', async () => {
    const c = inClusterCredentials(env)!;
    expect(c.server).toBe('https://10.96.0.1:443');
    expect(inClusterCredentials({ ...env, KUBERNETES_SERVICE_HOST: 'fd00::1' })!.server).toBe('https://[fd00::1]:443');
    const opts: https.RequestOptions = { headers: { accept: 'application/json' } };
    await c.applyToHTTPSOptions(opts);
    expect(opts.ca).toBe('CA PEM');
    expect(opts.headers).toEqual({ accept: 'application/json', Authorization: 'Bearer token-1' });
  });
  it('re-reads a rotated token after a minute, not before', async () => {
    jest.useFakeTimers({ now: Date.now() });
    try {
      const c = inClusterCredentials(env)!;
      writeFileSync(path.join(dir, 'token'), 'token-2\n');
      const auth = async () => {
        const o: https.RequestOptions = {};
        await c.applyToHTTPSOptions(o);
        return (o.headers as Record<string, string>).Authorization;
      };
      expect(await auth()).toBe('Bearer token-1');
      jest.setSystemTime(Date.now() + 61_000);
      expect(await auth()).toBe('Bearer token-2');
    } finally {
      jest.useRealTimers();
      writeFileSync(path.join(dir, 'token'), 'token-1\n');
    }
  });
  it('names the file it cannot read', () => {
    expect(() => inClusterCredentials({ ...env, KUBEMCP_SERVICEACCOUNT_DIR: path.join(dir, 'nope') })).toThrow(
      /cannot read .*nope\/ca\.crt/,
    );
  });
});
