import { describe, expect, it } from '@jest/globals';
import { App } from 'cdk8s';
import { parse } from 'yaml';
import { renderMCPServer, toYaml, type KubeObject } from '../../charts/render.js';
import { renderSources, RenderError } from '../../charts/render-cli.js';
import { MCPServerChart, CONFIG_HASH_ANNOTATION, DEFAULT_SECURITY_CONTEXT } from '../../charts/mcpserver.js';
import { OperatorChart, CONTROLLER_RULES } from '../../charts/operator.js';
import { CALLER_CLUSTER_ROLE } from '../../gateway/auth/sar.js';
import { loadSamples } from '../../charts/samples.js';
import { byKind } from '../shapes.js';

const manifest = (spec: Record<string, unknown>, name = 'demo', namespace?: string) => ({
  apiVersion: 'mcp.example.com/v1alpha1',
  kind: 'MCPServer',
  metadata: { name, ...(namespace ? { namespace } : {}) },
  spec: { image: 'registry.example/mcp:1', ...spec },
});
const container = (objs: KubeObject[]) => byKind(objs).Deployment.spec.template.spec.containers[0];
const envOf = (objs: KubeObject[]) =>
  Object.fromEntries(container(objs).env.map((e) => [e.name, e.value ?? e.valueFrom]));

describe('MCPServerWorkload: children per transport', () => {
  it('streamable-http (default): Deployment + Service, probes, port named mcp, 200m/256Mi requests, 30 s grace', () => {
    const objs = renderMCPServer(manifest({}));
    expect(objs.map((o) => o.kind)).toEqual(['Service', 'Deployment', 'NetworkPolicy', 'Service']);
    const { Service: svc, Deployment: dep } = byKind(objs);
    expect(svc.metadata.name).toBe('demo');
    expect(svc.spec).toEqual({
      type: 'ClusterIP',
      selector: { 'app.kubernetes.io/instance': 'demo', 'app.kubernetes.io/name': 'mcp-server' },
      ports: [{ name: 'mcp', port: 8080, targetPort: 'mcp', protocol: 'TCP' }],
    });
    expect(dep.spec.replicas).toBe(1);
    expect(dep.spec.selector.matchLabels).toEqual(svc.spec.selector);
    const c = container(objs);
    expect(c.name).toBe('mcp-server');
    expect(c.imagePullPolicy).toBe('IfNotPresent');
    // The server's own port is named "server"; the Service's target "mcp" is the gateway's (issue 17).
    expect(c.ports).toEqual([{ name: 'server', containerPort: 8080, protocol: 'TCP' }]);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/health', port: 'server', scheme: 'HTTP' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'server', scheme: 'HTTP' });
    expect(c.resources).toEqual({ requests: { cpu: '200m', memory: '256Mi' } });
    expect(dep.spec.template.spec.terminationGracePeriodSeconds).toBe(30);
    expect(envOf(objs)).toMatchObject({ MCP_TRANSPORT: 'streamable-http', MCP_PORT: '8080', MCP_SERVER_NAME: 'demo' });
  });

  it('every HTTP server gets the gateway: the Service targets it, auth kubernetes by default, audience status.url', () => {
    const objs = renderMCPServer(manifest({ transport: 'http', port: 3001, path: '/rpc' }, 'demo', 'team-a'));
    const { Deployment: dep } = byKind(objs);
    const pod = dep.spec.template.spec;
    expect(pod.containers.map((c: { name: string }) => c.name)).toEqual(['mcp-server', 'mcp-gateway']);
    const gw = pod.containers[1]!;
    expect(gw.args).toEqual([
      'gateway',
      '--upstream',
      'http://127.0.0.1:3001',
      '--port',
      '18080',
      '--host',
      '0.0.0.0',
      '--auth',
      'kubernetes',
      '--mcpserver',
      '$(POD_NAMESPACE)/demo',
      '--peers',
      'demo-peers.$(POD_NAMESPACE).svc.cluster.local',
      '--audience',
      'http://demo.$(POD_NAMESPACE).svc.cluster.local:3001/rpc',
    ]);
    expect(gw.env).toEqual([
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'MCP_DRAIN_SECONDS', value: '25' },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'NODE_OPTIONS', value: '--max-semi-space-size=1' },
      { name: 'MALLOC_ARENA_MAX', value: '2' },
    ]);
    // Sealed sessions (issue 18): the session keys only in the gateway, optional, and the peers' headless Service.
    expect(gw.volumeMounts).toEqual([
      { name: 'session-keys', mountPath: '/var/run/kubemcp/session-keys', readOnly: true },
    ]);
    expect(pod.containers[0]!.volumeMounts.map((m: { name: string }) => m.name)).not.toContain('session-keys');
    expect(pod.volumes).toContainEqual({
      name: 'session-keys',
      secret: { secretName: 'demo-session-keys', optional: true, defaultMode: 0o444 },
    });
    const peers = objs.find((o) => o.kind === 'Service' && o.metadata.name === 'demo-peers') as unknown as {
      spec: Record<string, unknown>;
    };
    expect(peers.spec).toEqual({
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: { 'app.kubernetes.io/name': 'mcp-server', 'app.kubernetes.io/instance': 'demo' },
      ports: [{ name: 'mcp', port: 18080, targetPort: 'mcp', protocol: 'TCP' }],
    });
    expect(gw.ports).toEqual([{ name: 'mcp', containerPort: 18080, protocol: 'TCP' }]);
    expect(gw.readinessProbe.httpGet).toEqual({ path: '/.kubemcp/readyz', port: 'mcp', scheme: 'HTTP' });
    expect(gw.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true });
    expect(dep.spec.template.metadata.annotations['kubectl.kubernetes.io/default-container']).toBe('mcp-server');
    // The gateway's review rights: system:auth-delegator for the pod's ServiceAccount, cluster-scoped.
    const crb = objs.find((o) => o.kind === 'ClusterRoleBinding')!;
    expect(crb.metadata).toMatchObject({
      name: 'kubemcp:gateway:team-a:demo',
      annotations: { 'mcp.example.com/mcpserver': 'team-a/demo' },
    });
    expect(crb.metadata.namespace).toBeUndefined();
    expect(crb).toMatchObject({
      roleRef: { kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: 'team-a' }],
    });
  });

  it('spec.auth.impersonate: MCP_IMPERSONATE=gateway on the server container and kubemcp:impersonator bound to its own ServiceAccount only', () => {
    const objs = renderMCPServer(manifest({ serviceAccount: 'srv', auth: { impersonate: true } }, 'demo', 'team-a'));
    expect(envOf(objs)).toMatchObject({ MCP_IMPERSONATE: 'gateway' });
    const crbs = objs.filter((o) => o.kind === 'ClusterRoleBinding');
    expect(crbs.map((o) => o.metadata.name)).toEqual([
      'kubemcp:gateway:team-a:demo',
      'kubemcp:impersonator:team-a:demo',
    ]);
    expect(crbs[1]).toMatchObject({
      metadata: { annotations: { 'mcp.example.com/mcpserver': 'team-a/demo' } },
      roleRef: { kind: 'ClusterRole', name: 'kubemcp:impersonator' },
      subjects: [{ kind: 'ServiceAccount', name: 'srv', namespace: 'team-a' }],
    });
    expect(crbs[1]!.metadata.namespace).toBeUndefined();
    // Without it: no variable, no binding.
    const plain = renderMCPServer(manifest({ serviceAccount: 'srv' }, 'demo', 'team-a'));
    expect(envOf(plain).MCP_IMPERSONATE).toBeUndefined();
    expect(plain.filter((o) => o.kind === 'ClusterRoleBinding')).toHaveLength(1);
    // Refused, naming the field: mode none, no ServiceAccount of its own, stdio.
    expect(() =>
      renderMCPServer(manifest({ serviceAccount: 'srv', auth: { impersonate: true, mode: 'none' } })),
    ).toThrow(/spec\.auth\.impersonate: auth\.impersonate needs a verified caller/);
    expect(() => renderMCPServer(manifest({ auth: { impersonate: true } }))).toThrow(
      /spec\.auth\.impersonate: auth\.impersonate needs spec\.serviceAccount/,
    );
    expect(() =>
      renderMCPServer(
        manifest({ serviceAccount: 'srv', transport: 'stdio', command: ['x'], auth: { impersonate: true } }),
      ),
    ).toThrow(/spec\.auth\.impersonate: auth\.impersonate is for HTTP servers/);
  });

  it('spec.auth: mode none opts out (no review binding), extra audiences follow, a server on 18080 moves the gateway to 18081, and `$(` in an audience is not expanded', () => {
    const none = renderMCPServer(manifest({ port: 18080, auth: { mode: 'none' } }, 'demo', 'team-a'));
    expect(none.some((o) => o.kind === 'ClusterRoleBinding')).toBe(false);
    const gw = byKind(none).Deployment.spec.template.spec.containers[1]!;
    expect(gw.args).toEqual(expect.arrayContaining(['--port', '18081', '--auth', 'none']));
    expect(gw.args).not.toContain('--audience');
    const extra = renderMCPServer(
      manifest({ serviceAccount: 'srv', auth: { audiences: ['https://mcp.example.com/$(X)'] } }, 'demo', 'team-a'),
    );
    const args = byKind(extra).Deployment.spec.template.spec.containers[1]!.args as string[];
    expect(args.slice(-4)).toEqual([
      '--audience',
      'http://demo.$(POD_NAMESPACE).svc.cluster.local:8080/mcp',
      '--audience',
      'https://mcp.example.com/$$(X)',
    ]);
    expect(extra.find((o) => o.kind === 'ClusterRoleBinding')!.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'srv', namespace: 'team-a' },
    ]);
    expect(() => renderMCPServer(manifest({ auth: { mode: 'open' } }))).toThrow(/spec\.auth\.mode/);
  });

  it('spec.auth mode oidc: the gateway gets the audience and every --oidc-* option, literal; the review binding stays (Kubernetes tokens and SARs)', () => {
    const objs = renderMCPServer(
      manifest(
        {
          auth: {
            mode: 'oidc',
            oidc: { issuer: 'https://issuer.example/$(X)', groupsClaim: 'roles', usernamePrefix: 'corp:' },
          },
        },
        'demo',
        'team-a',
      ),
    );
    const args = byKind(objs).Deployment.spec.template.spec.containers[1]!.args as string[];
    expect(args.slice(args.indexOf('--auth'))).toEqual([
      '--auth',
      'oidc',
      '--mcpserver',
      '$(POD_NAMESPACE)/demo',
      '--peers',
      'demo-peers.$(POD_NAMESPACE).svc.cluster.local',
      '--audience',
      'http://demo.$(POD_NAMESPACE).svc.cluster.local:8080/mcp',
      '--oidc-issuer',
      'https://issuer.example/$$(X)',
      '--oidc-username-prefix',
      'corp:',
      '--oidc-groups-claim',
      'roles',
    ]);
    expect(objs.filter((o) => o.kind === 'ClusterRoleBinding')).toHaveLength(1);
    // spec.auth.tools goes to the gateway as one JSON argument, `$(` not expanded.
    const tools = [{ names: ['get-$(X)'], groups: ['admins'] }];
    const withTools = renderMCPServer(manifest({ auth: { tools } }, 'demo', 'team-a'));
    const targs = byKind(withTools).Deployment.spec.template.spec.containers[1]!.args as string[];
    expect(targs[targs.indexOf('--tool-policy') + 1]).toBe('[{"names":["get-$$(X)"],"groups":["admins"]}]');
    expect(() =>
      renderMCPServer(manifest({ auth: { tools: [{ names: [], serviceAccounts: ['Bad/Name'] }] } })),
    ).toThrow(/spec\.auth\.tools\[0\]\.names[\s\S]*spec\.auth\.tools\[0\]\.serviceAccounts\[0\]/);
  });

  it('http: 100m/128Mi requests, 30 s grace (the gateway drains 25 s), custom port on Service and container', () => {
    const objs = renderMCPServer(manifest({ transport: 'http', port: 3001 }));
    const { Service: svc, Deployment: dep } = byKind(objs);
    expect(svc.spec.ports[0].port).toBe(3001);
    expect(container(objs).ports[0].containerPort).toBe(3001);
    expect(container(objs).resources.requests).toEqual({ cpu: '100m', memory: '128Mi' });
    expect(dep.spec.template.spec.terminationGracePeriodSeconds).toBe(30);
    expect(dep.spec.template.metadata.labels['mcp.example.com/transport']).toBe('http');
  });

  it('stdio: no Service, no ports, no HTTP probes, 50m/64Mi, 5 s grace', () => {
    const objs = renderMCPServer(manifest({ transport: 'stdio' }));
    expect(objs.map((o) => o.kind)).toEqual(['Deployment', 'NetworkPolicy']);
    const c = container(objs);
    expect(c.ports).toBeUndefined();
    expect(c.livenessProbe).toBeUndefined();
    expect(c.readinessProbe).toBeUndefined();
    expect(c.resources.requests).toEqual({ cpu: '50m', memory: '64Mi' });
    expect(byKind(objs).Deployment.spec.template.spec.terminationGracePeriodSeconds).toBe(5);
  });

  it('stdio refuses more than one replica', () => {
    expect(() => renderMCPServer(manifest({ transport: 'stdio', replicas: 2 }))).toThrow(
      /spec\.replicas: stdio transport does not support multiple replicas/,
    );
  });
});

describe('MCPServerWorkload: PodDisruptionBudget (issue 10, part 3)', () => {
  it("2 or more replicas: PDB <name> with maxUnavailable 1 and the pods' selector, after the Deployment", () => {
    for (const replicas of [2, 5]) {
      const objs = renderMCPServer(manifest({ replicas }));
      expect(objs.map((o) => o.kind)).toEqual([
        'Service',
        'Deployment',
        'PodDisruptionBudget',
        'NetworkPolicy',
        'Service',
      ]);
      const { PodDisruptionBudget: pdb, Deployment: dep } = byKind(objs);
      expect(pdb.apiVersion).toBe('policy/v1');
      expect(pdb.metadata.name).toBe('demo');
      expect(pdb.metadata.labels).toEqual(dep.metadata.labels);
      expect(pdb.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: dep.spec.selector.matchLabels } });
    }
  });
  it('0 or 1 replica: no PDB (it would block node drains)', () => {
    for (const replicas of [0, 1])
      expect(renderMCPServer(manifest({ replicas })).map((o) => o.kind)).toEqual([
        'Service',
        'Deployment',
        'NetworkPolicy',
        'Service',
      ]);
    expect(renderMCPServer(manifest({ transport: 'stdio', replicas: 1 })).map((o) => o.kind)).toEqual([
      'Deployment',
      'NetworkPolicy',
    ]);
  });
});

describe('MCPServerWorkload: NetworkPolicy (issue 17, isolation)', () => {
  const netpol = (objs: KubeObject[]) => byKind(objs).NetworkPolicy;
  it("HTTP: ingress only on the gateway's named port mcp, from anywhere, the pods' selector, after the Deployment", () => {
    const objs = renderMCPServer(manifest({}, 'demo', 'team'));
    const np = netpol(objs);
    const dep = byKind(objs).Deployment;
    expect(objs.findIndex((o) => o.kind === 'NetworkPolicy')).toBeGreaterThan(
      objs.findIndex((o) => o.kind === 'Deployment'),
    );
    expect(np.metadata).toMatchObject({ name: 'demo', namespace: 'team', labels: dep.metadata.labels });
    expect(np.spec).toEqual({
      podSelector: { matchLabels: dep.spec.selector.matchLabels },
      policyTypes: ['Ingress'],
      ingress: [{ ports: [{ port: 'mcp', protocol: 'TCP' }] }],
    });
    // The port named mcp is the gateway's, not the server container's own.
    const containers = dep.spec.template.spec.containers as { name: string; ports?: { name: string }[] }[];
    expect(containers.filter((c) => c.ports?.some((p) => p.name === 'mcp')).map((c) => c.name)).toEqual([
      'mcp-gateway',
    ]);
  });
  it('bridged stdio: the bridge port; stdio without command listens nowhere: all ingress closed', () => {
    expect(netpol(renderMCPServer(manifest({ transport: 'stdio', command: ['npx', 'x'] }))).spec.ingress).toEqual([
      { ports: [{ port: 'mcp', protocol: 'TCP' }] },
    ]);
    const closed = netpol(renderMCPServer(manifest({ transport: 'stdio' }))).spec;
    expect(closed.policyTypes).toEqual(['Ingress']);
    expect(closed.ingress).toBeUndefined(); // no rule: nothing admitted
  });
  it('spec.allowFrom narrows the peers; the operator peer is added only beside it', () => {
    const allowFrom = [
      {
        namespaceSelector: { matchLabels: { team: 'a' } },
        podSelector: { matchExpressions: [{ key: 'role', operator: 'In', values: ['agent'] }] },
      },
      { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } },
    ];
    const op = {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'mcp-system' } },
      podSelector: { matchLabels: { app: 'c' } },
    };
    expect(netpol(renderMCPServer(manifest({ allowFrom }), undefined, { operatorPeer: op })).spec.ingress).toEqual([
      {
        ports: [{ port: 'mcp', protocol: 'TCP' }],
        // The MCPServer's own pods: a gateway forwards another pod's sealed session (issue 18).
        from: [
          ...allowFrom,
          op,
          {
            podSelector: {
              matchLabels: { 'app.kubernetes.io/name': 'mcp-server', 'app.kubernetes.io/instance': 'demo' },
            },
          },
        ],
      },
    ]);
    expect(netpol(renderMCPServer(manifest({}), undefined, { operatorPeer: op })).spec.ingress).toEqual([
      { ports: [{ port: 'mcp', protocol: 'TCP' }] },
    ]);
  });
  it('bad peers are refused naming the field', () => {
    expect(() => renderMCPServer(manifest({ allowFrom: [{}] }))).toThrow(/spec\.allowFrom\[0\]/);
    expect(() => renderMCPServer(manifest({ allowFrom: [] }))).toThrow(/spec\.allowFrom/);
    expect(() =>
      renderMCPServer(manifest({ allowFrom: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] })),
    ).toThrow(/spec\.allowFrom\[0\]\.ipBlock/);
    for (const cidr of ['10.0.0.0', '10.0.0.0/33', '300.0.0.0/8', 'fd00::/129', 'x/8'])
      expect(() => renderMCPServer(manifest({ allowFrom: [{ ipBlock: { cidr } }] }))).toThrow(
        /spec\.allowFrom\[0\]\.ipBlock\.cidr/,
      );
    expect(() => renderMCPServer(manifest({ allowFrom: [{ ipBlock: { cidr: 'fd00::/64' } }] }))).not.toThrow();
    expect(() =>
      renderMCPServer(
        manifest({ allowFrom: [{ podSelector: { matchExpressions: [{ key: 'a', operator: 'Maybe' }] } }] }),
      ),
    ).toThrow(/spec\.allowFrom\[0\]\.podSelector\.matchExpressions\[0\]\.operator/);
  });
});

describe('MCPServerWorkload: optional fields', () => {
  it('config: ConfigMap <name>-config with config.json and one key per entry, mounted read-only, MCP_CONFIG_FILE set', () => {
    const objs = renderMCPServer(manifest({ config: { LOG_LEVEL: 'info', B: '2' } }));
    expect(objs.map((o) => o.kind)).toEqual(['ConfigMap', 'Service', 'Deployment', 'NetworkPolicy', 'Service']);
    const cm = byKind(objs).ConfigMap;
    expect(cm.metadata.name).toBe('demo-config');
    expect(Object.keys(cm.data).sort()).toEqual(['B', 'LOG_LEVEL', 'config.json']);
    expect(JSON.parse(cm.data['config.json']!)).toEqual({
      config: { B: '2', LOG_LEVEL: 'info' },
      server: { name: 'demo', port: 8080, transport: 'streamable-http' },
      'streamable-http': { session: { maxConnections: 100, timeout: '30m' } },
    });
    expect(envOf(objs).MCP_CONFIG_FILE).toBe('/etc/mcp/config.json');
    expect(container(objs).volumeMounts).toContainEqual({ name: 'config', mountPath: '/etc/mcp', readOnly: true });
    const pod = byKind(objs).Deployment.spec.template;
    expect(pod.spec.volumes).toContainEqual({ name: 'config', configMap: { name: 'demo-config' } });
    expect(pod.metadata.annotations[CONFIG_HASH_ANNOTATION]).toMatch(/^[0-9a-f]{16}$/);
  });

  it('config change changes the pod-template hash; no config means no ConfigMap, mount or MCP_CONFIG_FILE', () => {
    const hash = (cfg: Record<string, string>) =>
      byKind(renderMCPServer(manifest({ config: cfg }))).Deployment.spec.template.metadata.annotations[
        CONFIG_HASH_ANNOTATION
      ];
    expect(hash({ A: '1' })).not.toBe(hash({ A: '2' }));
    const objs = renderMCPServer(manifest({ config: {} }));
    expect(objs.map((o) => o.kind)).not.toContain('ConfigMap');
    expect(envOf(objs).MCP_CONFIG_FILE).toBeUndefined();
    expect(container(objs).volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
  });

  it('http config.json carries the CORS section', () => {
    const cm = byKind(renderMCPServer(manifest({ transport: 'http', config: { A: 'b' } }))).ConfigMap;
    expect(JSON.parse(cm.data['config.json']!).http).toEqual({ cors: { enabled: true, origins: ['*'] } });
  });

  it('securityContext unset: restricted defaults and an emptyDir at /tmp', () => {
    const objs = renderMCPServer(manifest({}));
    expect(container(objs).securityContext).toEqual(DEFAULT_SECURITY_CONTEXT);
    expect(byKind(objs).Deployment.spec.template.spec.volumes).toContainEqual({ name: 'tmp', emptyDir: {} });
  });

  it('securityContext set: the user one wins entirely', () => {
    const sc = { runAsUser: 1001, runAsGroup: 1001, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: false };
    expect(container(renderMCPServer(manifest({ securityContext: sc }))).securityContext).toEqual(sc);
  });

  it('resources: defaults fill only what the user left out, never above a user limit', () => {
    const c = container(
      renderMCPServer(
        manifest({ resources: { requests: { cpu: '1' }, limits: { memory: '100Mi', 'nvidia.com/gpu': 1 } } }),
      ),
    );
    expect(c.resources.requests).toEqual({ cpu: '1', memory: '100Mi' });
    expect(c.resources.limits).toEqual({ memory: '100Mi', 'nvidia.com/gpu': 1 });
  });

  it('serviceAccount sets serviceAccountName; unset leaves it out', () => {
    expect(
      byKind(renderMCPServer(manifest({ serviceAccount: 'mcp-sa' }))).Deployment.spec.template.spec.serviceAccountName,
    ).toBe('mcp-sa');
    expect(byKind(renderMCPServer(manifest({}))).Deployment.spec.template.spec.serviceAccountName).toBeUndefined();
  });

  it('env: user entries appended; a user entry replaces the built-in of the same name; valueFrom kept', () => {
    const objs = renderMCPServer(
      manifest({
        env: [
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
          { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
          { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
          { name: 'PLAIN', value: 'x' },
        ],
      }),
    );
    const names = container(objs).env.map((e) => e.name);
    expect(names).toEqual([
      'MCP_TRANSPORT',
      'MCP_PORT',
      'MCP_SERVER_NAME',
      'POD_NAME',
      'POD_NAMESPACE',
      'TOKEN',
      'CPU',
      'PLAIN',
    ]);
    const env = envOf(objs);
    expect(env.POD_NAME).toEqual({ fieldRef: { fieldPath: 'metadata.uid' } });
    expect(env.TOKEN).toEqual({ secretKeyRef: { name: 's', key: 'k' } });
    expect(env.CPU).toEqual({ resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } });
  });

  it('labels: seed 003 labels on every child; the selector leaves out the mutable transport label', () => {
    for (const o of renderMCPServer(manifest({ config: { A: '1' } }))) {
      expect(o.metadata.labels).toEqual({
        'app.kubernetes.io/name': 'mcp-server',
        'app.kubernetes.io/instance': 'demo',
        'app.kubernetes.io/component': 'server',
        'app.kubernetes.io/managed-by': 'mcp-operator',
        'mcp.example.com/transport': 'streamable-http',
      });
    }
    const a = byKind(renderMCPServer(manifest({ transport: 'http' }))).Deployment.spec.selector;
    const b = byKind(renderMCPServer(manifest({ transport: 'streamable-http' }))).Deployment.spec.selector;
    expect(a).toEqual(b);
  });

  it('namespace: taken from the manifest, or overridden', () => {
    // Every namespaced object; the gateway's ClusterRoleBinding is cluster-scoped and names the namespace in its subject.
    const namespaced = (objs: ReturnType<typeof renderMCPServer>) =>
      objs.filter((o) => o.kind !== 'ClusterRoleBinding');
    expect(
      namespaced(renderMCPServer(manifest({}, 'x', 'team-a'))).every((o) => o.metadata.namespace === 'team-a'),
    ).toBe(true);
    const b = renderMCPServer(manifest({}, 'x', 'team-a'), 'team-b');
    expect(namespaced(b).every((o) => o.metadata.namespace === 'team-b')).toBe(true);
    expect(
      (b.find((o) => o.kind === 'ClusterRoleBinding')!.subjects as Array<{ namespace: string }>)[0]!.namespace,
    ).toBe('team-b');
    expect(renderMCPServer(manifest({})).every((o) => o.metadata.namespace === undefined)).toBe(true);
  });
});

describe('determinism and equivalence with cdk8s synth', () => {
  it('the same spec renders byte-identical YAML, and render equals synth for every seed sample', () => {
    for (const s of loadSamples()) {
      const once = toYaml(renderMCPServer(s.manifest));
      expect(toYaml(renderMCPServer(structuredClone(s.manifest)))).toBe(once);
      const app = new App({ outdir: '/dev/null' });
      new MCPServerChart(app, s.id, { mcpServer: s.manifest });
      expect(app.synthYaml()).toBe(once);
      expect(renderSources([[s.path, s.text]])).toBe(once);
    }
  });

  it('samples with 2 or more replicas carry their PDB in render and synth alike', () => {
    const withPdb = loadSamples().filter((s) =>
      renderMCPServer(s.manifest).some((o) => o.kind === 'PodDisruptionBudget'),
    );
    expect(withPdb.map((s) => s.id).sort()).toEqual(['seed001-advanced', 'seed001-production', 'seed003-advanced']);
    for (const s of withPdb) {
      const app = new App({ outdir: '/dev/null' });
      new MCPServerChart(app, s.id, { mcpServer: s.manifest });
      expect(app.synthYaml()).toContain('kind: PodDisruptionBudget');
      expect(renderSources([[s.path, s.text]])).toContain('kind: PodDisruptionBudget');
    }
  });

  it('the seed basic sample renders the documented shape', () => {
    const basic = loadSamples().find((s) => s.id === 'seed001-basic')!;
    const objs = renderMCPServer(basic.manifest);
    expect(objs.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
      'ConfigMap/default/basic-mcpserver-config',
      'Service/default/basic-mcpserver',
      'Deployment/default/basic-mcpserver',
      'NetworkPolicy/default/basic-mcpserver',
      'Service/default/basic-mcpserver-peers',
      'ClusterRoleBinding/undefined/kubemcp:gateway:default:basic-mcpserver',
    ]);
    expect(byKind(objs).Service.spec.ports[0].port).toBe(3001);
  });
});

describe('kubemcp render input handling', () => {
  it('renders several documents and skips empty ones', () => {
    const text = `---\n${JSON.stringify(manifest({}, 'a'))}\n---\n${JSON.stringify(manifest({ transport: 'stdio' }, 'b'))}\n---\n`;
    const docs = renderSources([['x.yaml', text]])
      .split(/^---$/m)
      .map((d) => parse(d));
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      'Service/a',
      'Deployment/a',
      'NetworkPolicy/a',
      'Service/a-peers',
      'Deployment/b',
      'NetworkPolicy/b',
    ]);
  });
  it('refuses other kinds, YAML errors and invalid specs, naming file, document and field', () => {
    expect(() => renderSources([['x.yaml', 'apiVersion: v1\nkind: Pod\n']])).toThrow(
      /x\.yaml, document 1: expected apiVersion mcp\.example\.com\/v1alpha1, kind MCPServer/,
    );
    expect(() => renderSources([['x.yaml', 'a: [\n']])).toThrow(RenderError);
    expect(() => renderSources([['x.yaml', JSON.stringify(manifest({ port: 0 }))]])).toThrow(
      /x\.yaml, document 1: MCPServer demo is invalid:\n {2}spec\.port: /,
    );
  });
});

describe('OperatorChart', () => {
  const objs = new OperatorChart(new App({ outdir: '/dev/null' }), 'operator').toJson() as KubeObject[];
  it('renders the CRD without a namespace and everything else in mcp-system', () => {
    const cluster = ['CustomResourceDefinition', 'Namespace', 'ClusterRole', 'ClusterRoleBinding'];
    expect(objs.map((o) => o.kind).sort()).toEqual(
      [...cluster, 'ClusterRole', 'ClusterRole', 'Deployment', 'Role', 'RoleBinding', 'ServiceAccount'].sort(),
    );
    for (const o of objs) expect(o.metadata.namespace).toBe(cluster.includes(o.kind) ? undefined : 'mcp-system');
  });
  it("ships the callers' ClusterRole (create mcpservers/proxy), aggregated into edit, and lets the controller's handshake pass it", () => {
    const caller = objs.find((o) => o.kind === 'ClusterRole' && o.metadata.name === CALLER_CLUSTER_ROLE) as unknown as {
      metadata: { labels: Record<string, string> };
      rules: unknown[];
    };
    expect(caller.metadata.labels['rbac.authorization.k8s.io/aggregate-to-edit']).toBe('true');
    expect(caller.metadata.labels['rbac.authorization.k8s.io/aggregate-to-view']).toBeUndefined();
    expect(caller.rules).toEqual([
      { apiGroups: ['mcp.example.com'], resources: ['mcpservers/proxy'], verbs: ['create'] },
    ]);
    expect(CONTROLLER_RULES).toContainEqual({
      apiGroups: ['mcp.example.com'],
      resources: ['mcpservers/proxy'],
      verbs: ['create'],
    });
  });
  it('ships kubemcp:impersonator (impersonate users, groups, serviceaccounts) and lets the controller bind it, not impersonate', () => {
    const role = objs.find(
      (o) => o.kind === 'ClusterRole' && o.metadata.name === 'kubemcp:impersonator',
    ) as unknown as {
      rules: unknown[];
    };
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['users', 'groups', 'serviceaccounts'], verbs: ['impersonate'] },
    ]);
    expect(CONTROLLER_RULES).toContainEqual({
      apiGroups: ['rbac.authorization.k8s.io'],
      resources: ['clusterroles'],
      verbs: ['bind'],
      resourceNames: ['system:auth-delegator', 'kubemcp:impersonator'],
    });
    expect(JSON.stringify(CONTROLLER_RULES)).not.toContain('impersonate"');
  });
  it('grants least privilege: no wildcards, secrets never listed or watched, leases only in its namespace', () => {
    const text = JSON.stringify(CONTROLLER_RULES);
    expect(text).not.toContain('*');
    // Secrets: only the session keys' create, and get/update to rotate them (issue 18).
    expect(CONTROLLER_RULES.filter((r) => r.resources?.includes('secrets'))).toEqual([
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'update'] },
    ]);
    expect(text).not.toContain('leases');
    const role = byKind(objs).Role;
    expect(role.rules[0].resources).toEqual(['leases']);
  });
  it('runs `kubemcp controller` with health and metrics ports and probes', () => {
    const dep = byKind(objs).Deployment;
    const c = dep.spec.template.spec.containers[0];
    expect(c.args[0]).toBe('controller');
    expect(c.ports.map((p) => p.name)).toEqual(['metrics', 'health']);
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(dep.spec.template.spec.serviceAccountName).toBe('kubemcp-controller');
    // The young-generation cap that keeps its RSS low (npm run bench:controller runs it the same way).
    expect(c.env).toContainEqual({ name: 'NODE_OPTIONS', value: '--max-semi-space-size=1' });
    // ... and the V8 flag NODE_OPTIONS refuses, on the image's own node command, and glibc's arena cap.
    expect(c.command).toEqual(['node', '--heap-growing-percent=20', '/app/dist/cli/kubemcp.js']);
    expect(c.env).toContainEqual({ name: 'MALLOC_ARENA_MAX', value: '2' });
  });
});
