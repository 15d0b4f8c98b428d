/**
 * The policy's pure rules (mcp-server/policy.ts) and the audit argument masking, without a
 * cluster: which tools are enabled in each mode, which requests are refused, how Secret values
 * are masked in every response shape the apiserver produces.
 */
import { describe, expect, it } from '@jest/globals';
import { MASK, Policy, PolicyError, maskErrorText, maskSecrets } from '../../mcp-server/policy.js';
import { checkName, parseApiPath } from '../../mcp-server/names.js';
import { maskArgs } from '../../mcp-server/audit.js';
import { budgetTable, compact, fromApiTable } from '../../mcp-server/format.js';
import { filterLines, rolloutStatus } from '../../mcp-server/tools/workloads.js';
import type * as k8s from '@kubernetes/client-node';
import type { Sure } from '../shapes.js';

const pods = { method: 'GET', group: '', resource: 'pods', kind: 'Pod', namespaced: true };

describe('Policy.toolEnabled', () => {
  it('read-only allows only read tools; disable-destructive drops delete tools; allow/deny lists apply', () => {
    const ro = new Policy({ readOnly: true });
    expect([ro.toolEnabled('list', 'read'), ro.toolEnabled('apply', 'write'), ro.toolEnabled('del', 'delete')]).toEqual(
      [true, false, false],
    );
    const nd = new Policy({ disableDestructive: true });
    expect([nd.toolEnabled('apply', 'write'), nd.toolEnabled('del', 'delete')]).toEqual([true, false]);
    const al = new Policy({ allowTools: ['a'], denyTools: ['a'] });
    expect(al.toolEnabled('a', 'read')).toBe(false);
    expect(new Policy({ allowTools: ['a'] }).toolEnabled('b', 'read')).toBe(false);
  });
});

describe('Policy.checkRequest', () => {
  it('refuses writes in read-only mode and DELETE with disable-destructive', () => {
    expect(() => new Policy({ readOnly: true }).checkRequest({ ...pods, method: 'PATCH', namespace: 'a' })).toThrow(
      PolicyError,
    );
    expect(() => new Policy({ readOnly: true }).checkRequest({ ...pods, namespace: 'a' })).not.toThrow();
    expect(() =>
      new Policy({ disableDestructive: true }).checkRequest({ ...pods, method: 'DELETE', namespace: 'a' }),
    ).toThrow(/destructive/);
  });
  it('denies kinds by kind, resource, resource.group and kind.group, case-insensitively', () => {
    const p = new Policy({ denyKinds: ['SECRET', 'deployments.apps'] });
    expect(() =>
      p.checkRequest({
        method: 'GET',
        group: '',
        resource: 'secrets',
        kind: 'Secret',
        namespaced: true,
        namespace: 'a',
      }),
    ).toThrow(/kind Secret is denied/);
    expect(() =>
      p.checkRequest({
        method: 'GET',
        group: 'apps',
        resource: 'deployments',
        kind: 'Deployment',
        namespaced: true,
        namespace: 'a',
      }),
    ).toThrow(/denied/);
    expect(() => p.checkRequest({ ...pods, namespace: 'a' })).not.toThrow();
  });
  it('namespace allow-list: no all-namespaces lists, no other namespaces, no cluster-scoped writes', () => {
    const p = new Policy({ namespaces: ['a'] });
    expect(() => p.checkRequest({ ...pods, namespace: 'a' })).not.toThrow();
    expect(() => p.checkRequest({ ...pods, namespace: 'b' })).toThrow(/namespace b is not allowed/);
    expect(() => p.checkRequest({ ...pods })).toThrow(/across all namespaces/);
    expect(() =>
      p.checkRequest({ method: 'GET', group: '', resource: 'nodes', kind: 'Node', namespaced: false }),
    ).not.toThrow();
    expect(() =>
      p.checkRequest({ method: 'PATCH', group: '', resource: 'nodes', kind: 'Node', namespaced: false }),
    ).toThrow(/cluster-scoped/);
    expect(() =>
      p.checkRequest({
        method: 'GET',
        group: '',
        resource: 'namespaces',
        kind: 'Namespace',
        namespaced: false,
        name: 'b',
      }),
    ).toThrow(/namespace b/);
  });
});

describe('maskSecrets', () => {
  const secret = {
    kind: 'Secret',
    apiVersion: 'v1',
    metadata: {
      name: 's',
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"k":"djE="}}', keep: 'x' },
    },
    data: { k: 'djE=' },
    stringData: { p: 'v' },
  };
  it('masks a Secret, a SecretList, a v1 List, a watch event and a Table row', () => {
    const m = maskSecrets(secret) as Sure<k8s.V1Secret>;
    expect(m.data).toEqual({ k: MASK });
    expect(m.stringData).toEqual({ p: MASK });
    expect(m.metadata.annotations).toEqual({ keep: 'x', 'kubectl.kubernetes.io/last-applied-configuration': MASK });
    const list = maskSecrets({
      kind: 'SecretList',
      items: [{ metadata: { name: 'a' }, data: { k: 'djE=' } }],
    }) as Sure<k8s.V1SecretList>;
    expect(list.items[0].data).toEqual({ k: MASK });
    const v1 = maskSecrets({
      kind: 'List',
      items: [secret, { kind: 'ConfigMap', data: { a: 'b' } }],
    }) as Sure<k8s.V1SecretList>;
    expect(v1.items[0].data.k).toBe(MASK);
    expect(v1.items[1]?.data.a).toBe('b');
    const ev = maskSecrets({ type: 'ADDED', object: secret }) as Sure<{ type: string; object: k8s.V1Secret }>;
    expect(ev.object.data.k).toBe(MASK);
    const table = maskSecrets(
      { kind: 'Table', rows: [{ cells: ['s'], object: { kind: 'PartialObjectMetadata', metadata: secret.metadata } }] },
      true,
    );
    expect(JSON.stringify(table)).not.toContain('djE=');
    expect(JSON.stringify(maskSecrets(secret))).not.toContain('djE=');
  });
  it('Policy.sanitize is a no-op with showSecrets', () => {
    expect((new Policy({ showSecrets: true }).sanitize(secret) as k8s.V1Secret).data?.k).toBe('djE=');
  });
  it('maskArgs masks Secret manifests (YAML and JSON) and patches of Secrets', () => {
    const y = maskArgs({ manifest: 'apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData: {p: hunter2}\n' });
    expect(JSON.stringify(y)).not.toContain('hunter2');
    const j = maskArgs({ manifest: JSON.stringify({ kind: 'Secret', data: { p: 'aHVudGVyMg==' } }) });
    expect(JSON.stringify(j)).not.toContain('aHVudGVyMg==');
    expect(maskArgs({ kind: 'secret/a', patch: { data: { p: 'x' } } }).patch).toBe(MASK);
    expect(maskArgs({ name: 'web', replicas: 3 })).toEqual({ name: 'web', replicas: 3 });
  });
});

describe('formatting', () => {
  it('compact drops managedFields and last-applied only', () => {
    const o = compact({
      kind: 'Pod',
      metadata: {
        name: 'p',
        managedFields: [{}],
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
      },
      spec: { a: 1 },
    });
    expect(o).toEqual({ kind: 'Pod', metadata: { name: 'p' }, spec: { a: 1 } });
  });
  it('fromApiTable keeps priority-0 columns, renders dates as ages, adds NAMESPACE', () => {
    const t = fromApiTable(
      {
        columnDefinitions: [
          { name: 'Name', type: 'string', priority: 0 },
          { name: 'IP', type: 'string', priority: 1 },
          { name: 'Age', type: 'date', priority: 0 },
        ],
        rows: [
          {
            cells: ['a', '10.0.0.1', new Date(Date.now() - 300_000).toISOString()],
            object: { metadata: { namespace: 'ns' } },
          },
        ],
      },
      true,
    );
    expect(t).toEqual({ columns: ['NAMESPACE', 'NAME', 'AGE'], rows: [['ns', 'a', '300s'.replace('300s', '5m')]] });
  });
  it('budgetTable keeps whole rows within the budget', () => {
    const t = { columns: ['NAME'], rows: Array.from({ length: 100 }, (_, i) => [`row-${i}`]) };
    const b = budgetTable(t, 100);
    expect(b.text.length).toBeLessThanOrEqual(100);
    expect(b.shown).toBeGreaterThan(5);
    expect(b.text.split('\n')).toHaveLength(b.shown + 1);
  });
  it('filterLines gives grep -C context with separators', () => {
    expect(filterLines('a\nb\nERR 1\nc\nd\ne\nERR 2\nf', 'ERR', 1)).toEqual({
      text: 'b\nERR 1\nc\n--\ne\nERR 2\nf',
      matches: 2,
    });
  });
  it('rolloutStatus follows kubectl for Deployments', () => {
    const d = (status: object, gen = 1) => ({
      kind: 'Deployment',
      metadata: { name: 'w', generation: gen },
      spec: { replicas: 2 },
      status: { observedGeneration: 1, ...status },
    });
    expect(rolloutStatus(d({ updatedReplicas: 2, replicas: 2, availableReplicas: 2 })).done).toBe(true);
    expect(rolloutStatus(d({ updatedReplicas: 1, replicas: 2 })).message).toMatch(/1 out of 2 new replicas/);
    expect(rolloutStatus(d({}, 2)).message).toMatch(/spec update to be observed/);
    expect(rolloutStatus(d({ conditions: [{ type: 'Progressing', reason: 'ProgressDeadlineExceeded' }] })).failed).toBe(
      true,
    );
  });
});

describe('names and request paths (issue 9, item 2)', () => {
  it('checkName refuses what Kubernetes refuses, per kind', () => {
    for (const bad of ['.', '..', 'a/b', '%2e%2e', 'a\nb', ''])
      expect(() => checkName(bad, '', 'configmaps')).toThrow(/invalid name/);
    expect(() => checkName('UPPER', '', 'configmaps')).toThrow(/DNS-1123 subdomain/);
    expect(() => checkName('a.b', '', 'namespaces')).toThrow(/DNS-1123 label/);
    expect(() => checkName('1web', '', 'services')).toThrow(/DNS-1035 label/);
    expect(() => checkName('system:controller:x', 'rbac.authorization.k8s.io', 'clusterroles')).not.toThrow();
    expect(() => checkName('web-1.a', 'apps', 'deployments')).not.toThrow();
  });
  it('parseApiPath reads a URL path as the apiserver does', () => {
    expect(parseApiPath('/api/v1/namespaces/a/pods/p/log')).toEqual({
      kind: 'resource',
      group: '',
      version: 'v1',
      namespace: 'a',
      resource: 'pods',
      name: 'p',
      subresource: 'log',
    });
    expect(parseApiPath('/api/v1/namespaces/a')).toEqual({
      kind: 'resource',
      group: '',
      version: 'v1',
      resource: 'namespaces',
      name: 'a',
    });
    expect(parseApiPath('/api/v1/namespaces/a/status')).toEqual({
      kind: 'resource',
      group: '',
      version: 'v1',
      resource: 'namespaces',
      name: 'a',
      subresource: 'status',
    });
    expect(parseApiPath('/apis/apps/v1/deployments')).toEqual({
      kind: 'resource',
      group: 'apps',
      version: 'v1',
      resource: 'deployments',
    });
    expect(parseApiPath('/version')).toEqual({ kind: 'non-resource', path: '/version' });
    for (const bad of [
      '/api/v1/namespaces/a/configmaps/%2e%2e',
      '/api/v1/namespaces/a/configmaps/a%2Fb',
      '/api/v1//pods',
      '/metrics',
      '/api/v1/namespaces/a/pods/p/log/x',
    ])
      expect(parseApiPath(bad)).toBeUndefined();
  });
});

describe('write checks and error masking (issue 9, items 1 and 7)', () => {
  const cm = {
    method: 'PATCH',
    group: '',
    resource: 'configmaps',
    kind: 'ConfigMap',
    namespaced: true,
    namespace: 'a',
    name: 'c',
  };
  it('disable-destructive refuses ownerReferences in every patch shape', () => {
    const p = new Policy({ disableDestructive: true });
    const refs = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'u' }];
    expect(() => p.checkWrite(cm, { metadata: { ownerReferences: refs } }, 'application/merge-patch+json')).toThrow(
      /ownerReferences/,
    );
    expect(() =>
      p.checkWrite(
        cm,
        [{ op: 'add', path: '/metadata/ownerReferences/-', value: refs[0] }],
        'application/json-patch+json',
      ),
    ).toThrow(/ownerReferences/);
    expect(() => p.checkWrite(cm, [{ op: 'remove', path: '/metadata' }], 'application/json-patch+json')).toThrow(
      /ownerReferences/,
    );
    expect(() =>
      p.checkWrite(
        cm,
        { metadata: { '$setElementOrder/ownerReferences': [] } },
        'application/strategic-merge-patch+json',
      ),
    ).toThrow(/ownerReferences/);
    expect(() => p.checkWrite(cm, { metadata: { labels: { a: 'b' } } }, 'application/merge-patch+json')).not.toThrow();
    expect(() =>
      new Policy().checkWrite(cm, { metadata: { ownerReferences: refs } }, 'application/merge-patch+json'),
    ).not.toThrow();
  });
  it('maskErrorText masks Secret objects embedded as JSON or as a quoted JSON string', () => {
    const secret = {
      kind: 'Secret',
      metadata: { name: 's', annotations: { c: 'c2VjcmV0LXZhbHVl' } },
      data: { k: 'c2VjcmV0LXZhbHVl' },
    };
    const quoted = `Secret "s" is invalid: patch: Invalid value: ${JSON.stringify(JSON.stringify(secret))}: illegal base64`;
    const m = maskErrorText(quoted, true, [], ['s']);
    expect(m).not.toContain('c2VjcmV0LXZhbHVl');
    expect(m).toMatch(/^Secret "s" is invalid/);
    expect(maskErrorText(`x ${JSON.stringify(secret)}`, false)).not.toContain('c2VjcmV0LXZhbHVl');
    expect(maskErrorText('pods "web" not found', false)).toBe('pods "web" not found');
  });
});
