/**
 * The pod settings of rollouts drain (issue 18, lib/http-drain.ts; charts/mcpserver.ts): a pod with
 * a gateway or bridge gets terminationGracePeriodSeconds 30 and its gateway MCP_DRAIN_SECONDS 25
 * (the drain deadline under the grace period); the gateway's readiness probe is /.kubemcp/readyz
 * (503 from the first moment of a drain) while liveness stays on /.kubemcp/healthz; the server
 * container's preStop hook is an HTTP GET on the gateway's /.kubemcp/drained (the kubelet runs it,
 * so any image works), so the server gets SIGTERM only once the gateway's drain has ended. A stdio
 * server without `command` has no gateway and keeps seed 003's 5 s.
 */
import { describe, expect, it } from '@jest/globals';
import { renderMCPServer } from '../../charts/render.js';
import { byKind, type Container } from '../shapes.js';

const manifest = (spec: object, name = 'demo') => ({
  apiVersion: 'mcp.example.com/v1alpha1',
  kind: 'MCPServer',
  metadata: { name },
  spec,
});
const podOf = (spec: object) => byKind(renderMCPServer(manifest(spec), 'team-a')).Deployment.spec.template.spec;
const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));

describe('rollouts drain: pod settings', () => {
  it.each([
    ['http', 3001, 18080],
    ['streamable-http', 3001, 18080],
    ['streamable-http', 18080, 18081],
  ])(
    '%s on port %i: grace 30 s, gateway drain 25 s, readyz readiness, server preStop waits on the gateway at %i',
    (transport, port, gw) => {
      const pod = podOf({ image: 'example.com/mcp:1', transport, port });
      expect(pod.terminationGracePeriodSeconds).toBe(30);
      const [server, gateway] = pod.containers as [Container, Container];
      expect(gateway.name).toBe('mcp-gateway');
      expect(envOf(gateway).MCP_DRAIN_SECONDS).toBe('25');
      expect(gateway.readinessProbe.httpGet).toMatchObject({ path: '/.kubemcp/readyz', port: 'mcp' });
      expect(gateway.livenessProbe.httpGet).toMatchObject({ path: '/.kubemcp/healthz', port: 'mcp' });
      expect(gateway.lifecycle).toBeUndefined(); // SIGTERM starts its drain at once
      expect(server.lifecycle).toEqual({
        preStop: { httpGet: { path: '/.kubemcp/drained', port: gw, scheme: 'HTTP' } },
      });
      expect(envOf(server).MCP_DRAIN_SECONDS).toBeUndefined();
    },
  );

  it('bridged stdio: grace 30 s, bridge drain 25 s, the stdio container waits on the bridge on spec.port', () => {
    const pod = podOf({ image: 'example.com/mcp:1', transport: 'stdio', port: 3001, command: ['mcp'] });
    expect(pod.terminationGracePeriodSeconds).toBe(30);
    const [server, bridge] = pod.containers as [Container, Container];
    expect(bridge.name).toBe('mcp-bridge');
    expect(envOf(bridge).MCP_DRAIN_SECONDS).toBe('25');
    expect(bridge.readinessProbe.httpGet).toMatchObject({ path: '/ready' });
    expect(server.lifecycle).toEqual({
      preStop: { httpGet: { path: '/.kubemcp/drained', port: 3001, scheme: 'HTTP' } },
    });
  });

  it('stdio without command: no gateway, no hook, seed 003 grace of 5 s', () => {
    const pod = podOf({ image: 'example.com/mcp:1', transport: 'stdio' });
    expect(pod.terminationGracePeriodSeconds).toBe(5);
    expect(pod.containers).toHaveLength(1);
    expect((pod.containers[0] as Container).lifecycle).toBeUndefined();
  });
});
