/**
 * Rendering of a bridged stdio MCPServer (issue 11): init container, launcher, sidecar, Service,
 * probes on the bridge, restricted security contexts, the bridge image option, and render ==
 * synth for a bridged server. Also command/args on other transports (Kubernetes semantics).
 */
import { describe, expect, it } from '@jest/globals';
import { App } from 'cdk8s';
import {
  DEFAULT_BRIDGE_IMAGE,
  DEFAULT_SECURITY_CONTEXT,
  MCPServerChart,
  isBridged,
  servesHttp,
} from '../../charts/mcpserver.js';
import { OperatorChart } from '../../charts/operator.js';
import { renderMCPServer, toYaml, type KubeObject } from '../../charts/render.js';
import { renderSources } from '../../charts/render-cli.js';
import { launchScript } from '../../gateway/wiring.js';
import { byKind, type Container } from '../shapes.js';

const manifest = (spec: object, name = 'everything', namespace?: string) => ({
  apiVersion: 'mcp.example.com/v1alpha1',
  kind: 'MCPServer',
  metadata: { name, ...(namespace ? { namespace } : {}) },
  spec,
});
const BRIDGED = {
  image: 'localhost/kubemcp/everything:test',
  transport: 'stdio',
  port: 3001,
  command: ['node', '/app/index.js'],
  args: ['stdio'],
};

describe('bridged stdio (transport stdio with command)', () => {
  const { Service: svc, Deployment: dep } = byKind(renderMCPServer(manifest(BRIDGED), 'team-a'));
  const pod = dep.spec.template.spec;
  const [server, bridge] = pod.containers as [Container, Container];

  it('is bridged only with command; serves HTTP then', () => {
    expect(isBridged({ transport: 'stdio', command: ['x'] })).toBe(true);
    expect(isBridged({ transport: 'stdio' })).toBe(false);
    expect(isBridged({ transport: 'http', command: ['x'] })).toBe(false);
    expect(servesHttp({ transport: 'stdio', command: ['x'] })).toBe(true);
    expect(servesHttp({ transport: 'stdio' })).toBe(false);
  });

  it('a Service on the bridge port, targeting the named port of the sidecar', () => {
    expect(svc.spec.ports).toEqual([{ name: 'mcp', port: 3001, targetPort: 'mcp', protocol: 'TCP' }]);
    expect(svc.spec.selector).toEqual({
      'app.kubernetes.io/name': 'mcp-server',
      'app.kubernetes.io/instance': 'everything',
    });
    expect(svc.metadata.labels['mcp.example.com/transport']).toBe('stdio');
  });

  it('the init container installs the launcher and FIFOs from the kubemcp image', () => {
    expect(pod.initContainers).toHaveLength(1);
    const init = pod.initContainers[0];
    expect(init).toMatchObject({
      name: 'bridge-init',
      image: DEFAULT_BRIDGE_IMAGE,
      imagePullPolicy: 'IfNotPresent',
      args: ['bridge-init', '--dir', '/bridge'],
    });
    expect(init.volumeMounts).toEqual([{ name: 'bridge', mountPath: '/bridge' }]);
  });

  it('the server container runs command and args through the launcher on the FIFOs; no ports, no probes', () => {
    expect(server.name).toBe('mcp-server');
    expect(server.image).toBe(BRIDGED.image);
    expect(server.command).toEqual([
      '/bridge/bin/busybox',
      'sh',
      '-c',
      launchScript('/bridge'),
      'node',
      '/app/index.js',
      'stdio',
    ]);
    expect(server.args).toBeUndefined();
    expect(server.ports).toBeUndefined();
    expect(server.livenessProbe).toBeUndefined();
    expect(server.readinessProbe).toBeUndefined();
    expect(server.volumeMounts).toContainEqual({ name: 'bridge', mountPath: '/bridge' });
    expect(server.env.find((e) => e.name === 'MCP_TRANSPORT')?.value).toBe('stdio');
    expect(server.resources.requests).toEqual({ cpu: '50m', memory: '64Mi' });
  });

  it('the sidecar runs `kubemcp bridge` on the port, with /health liveness and /ready readiness', () => {
    expect(bridge).toMatchObject({
      name: 'mcp-bridge',
      image: DEFAULT_BRIDGE_IMAGE,
      // The bridge is the gateway of a stdio server: the same access options as `kubemcp gateway` (issue 17).
      args: [
        'bridge',
        '--dir',
        '/bridge',
        '--port',
        '3001',
        '--host',
        '0.0.0.0',
        '--auth',
        'kubernetes',
        '--mcpserver',
        '$(POD_NAMESPACE)/everything',
        '--peers',
        'everything-peers.$(POD_NAMESPACE).svc.cluster.local',
        '--audience',
        'http://everything.$(POD_NAMESPACE).svc.cluster.local:3001/mcp',
      ],
      env: [
        { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'MCP_DRAIN_SECONDS', value: '25' },
        { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'NODE_OPTIONS', value: '--max-semi-space-size=1' },
        { name: 'MALLOC_ARENA_MAX', value: '2' },
      ],
      ports: [{ name: 'mcp', containerPort: 3001, protocol: 'TCP' }],
    });
    expect(bridge.livenessProbe.httpGet).toEqual({ path: '/health', port: 'mcp', scheme: 'HTTP' });
    expect(bridge.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'mcp', scheme: 'HTTP' });
    expect(bridge.volumeMounts).toEqual([
      { name: 'bridge', mountPath: '/bridge' },
      { name: 'session-keys', mountPath: '/var/run/kubemcp/session-keys', readOnly: true },
    ]);
  });

  it('every container is restricted (Pod Security Standard), the emptyDir is bounded, kubectl logs defaults to the server', () => {
    for (const c of [...pod.initContainers, ...pod.containers])
      expect(c.securityContext).toEqual(DEFAULT_SECURITY_CONTEXT);
    expect(pod.volumes).toContainEqual({ name: 'bridge', emptyDir: { sizeLimit: '16Mi' } });
    expect(dep.spec.template.metadata.annotations).toEqual({ 'kubectl.kubernetes.io/default-container': 'mcp-server' });
    expect(dep.spec.replicas).toBe(1);
    // The bridge drains for 25 s on SIGTERM (lib/http-drain.ts); the grace period covers it.
    expect(pod.terminationGracePeriodSeconds).toBe(30);
  });

  it("a user securityContext applies to the server container only; the bridge's stay restricted", () => {
    const { Deployment: d } = byKind(
      renderMCPServer(manifest({ ...BRIDGED, securityContext: { runAsUser: 4242, runAsNonRoot: true } })),
    );
    const [s, b] = d.spec.template.spec.containers as [Container, Container];
    expect(s.securityContext).toEqual({ runAsUser: 4242, runAsNonRoot: true });
    expect(b.securityContext).toEqual(DEFAULT_SECURITY_CONTEXT);
    expect(d.spec.template.spec.initContainers[0].securityContext).toEqual(DEFAULT_SECURITY_CONTEXT);
  });

  it('the bridge image is a render option; the operator chart passes its own image to the controller', () => {
    const { Deployment: d } = byKind(
      renderMCPServer(manifest(BRIDGED), undefined, { bridgeImage: 'registry.example/kubemcp:9' }),
    );
    expect(d.spec.template.spec.initContainers[0].image).toBe('registry.example/kubemcp:9');
    expect(d.spec.template.spec.containers[1]?.image).toBe('registry.example/kubemcp:9');
    const op = new OperatorChart(new App({ outdir: '/dev/null' }), 'op', {
      image: 'registry.example/kubemcp:9',
    }).toJson() as KubeObject[];
    const controller = byKind(op).Deployment.spec.template.spec.containers[0];
    expect(controller.args).toContain('--bridge-image=registry.example/kubemcp:9');
    const dflt = new OperatorChart(new App({ outdir: '/dev/null' }), 'op').toJson() as KubeObject[];
    expect(byKind(dflt).Deployment.spec.template.spec.containers[0].args).toContain(
      `--bridge-image=${DEFAULT_BRIDGE_IMAGE}`,
    );
  });

  it('render == synth == kubemcp render for a bridged server, byte for byte, with and without a bridge image', () => {
    const m = manifest(
      { ...BRIDGED, config: { LOG_LEVEL: 'debug' }, env: [{ name: 'A', value: 'b' }] },
      'everything',
      'team-a',
    );
    for (const bridgeImage of [undefined, 'registry.example/kubemcp:9']) {
      const once = toYaml(renderMCPServer(m, undefined, { bridgeImage }));
      expect(toYaml(renderMCPServer(structuredClone(m), undefined, { bridgeImage }))).toBe(once);
      const app = new App({ outdir: '/dev/null' });
      new MCPServerChart(app, 'everything', { mcpServer: m, bridgeImage });
      expect(app.synthYaml()).toBe(once);
      expect(renderSources([['everything.yaml', JSON.stringify(m)]], undefined, { bridgeImage })).toBe(once);
      expect(once).toContain('kind: Service');
      expect(once).toContain('name: mcp-bridge');
    }
  });
});

describe('command and args elsewhere (Kubernetes container semantics)', () => {
  it('stdio with args but no command: args replace CMD, no bridge, no Service', () => {
    const objs = renderMCPServer(manifest({ image: 'x', transport: 'stdio', args: ['--stdio'] }));
    expect(objs.map((o) => o.kind)).toEqual(['Deployment', 'NetworkPolicy']);
    const pod = byKind(objs).Deployment.spec.template.spec;
    expect(pod.initContainers).toBeUndefined();
    expect(pod.containers).toHaveLength(1);
    expect(pod.containers[0].command).toBeUndefined();
    expect(pod.containers[0].args).toEqual(['--stdio']);
    expect(pod.volumes.map((v) => v.name)).toEqual(['tmp']);
  });

  it('HTTP transports pass command and args to their container as they are', () => {
    const { Deployment: d } = byKind(
      renderMCPServer(
        manifest({
          image: 'x',
          transport: 'streamable-http',
          command: ['node', 'srv.js'],
          args: ['--port', '$(MCP_PORT)'],
        }),
      ),
    );
    const c = d.spec.template.spec.containers[0];
    expect(c.command).toEqual(['node', 'srv.js']);
    expect(c.args).toEqual(['--port', '$(MCP_PORT)']);
    // The server container and the gateway in front of it (issue 17).
    expect(d.spec.template.spec.containers.map((x: Container) => x.name)).toEqual(['mcp-server', 'mcp-gateway']);
    expect(c.readinessProbe.httpGet.path).toBe('/ready');
  });

  it('without command or args the container keeps the image ENTRYPOINT and CMD (no fields rendered)', () => {
    const { Deployment: d } = byKind(renderMCPServer(manifest({ image: 'x' })));
    expect(d.spec.template.spec.containers[0].command).toBeUndefined();
    expect(d.spec.template.spec.containers[0].args).toBeUndefined();
  });
});
