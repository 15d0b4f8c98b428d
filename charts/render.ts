/**
 * Offline rendering of MCPServer manifests into their children, with the same construct that
 * `cdk8s synth` uses: GitOps without the operator (`kubemcp render`), and the controller's
 * desired state.
 */
import { App, Yaml } from 'cdk8s';
import { MCPServerChart } from './mcpserver.js';
import type { MCPServerPeer } from './api/schema.js';

/** Options of rendering that are not part of the MCPServer spec. */
export interface RenderOptions {
  /** Image of the bridge (init container and sidecar) of a bridged stdio server; default the kubemcp image (DEFAULT_BRIDGE_IMAGE). */
  bridgeImage?: string;
  /** The operator's pods as a NetworkPolicy peer, admitted beside a non-empty `spec.allowFrom` (charts/mcpserver.ts operatorPeer). */
  operatorPeer?: MCPServerPeer;
}

/** A rendered Kubernetes object as plain JSON. */
export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
};

/**
 * Renders one MCPServer manifest into its children as plain JSON objects, in apply order
 * (ConfigMap, Service, Deployment, PodDisruptionBudget; absent ones skipped).
 * @param manifest a whole MCPServer object (apiVersion, kind, metadata, spec).
 * @param namespace overrides `metadata.namespace` (the controller passes the object's).
 * @param options rendering options (the bridge image).
 * @throws MCPServerValidationError naming the failing fields.
 */
export function renderMCPServer(manifest: unknown, namespace?: string, options: RenderOptions = {}): KubeObject[] {
  const app = new App({ outdir: '/dev/null' });
  const chart = new MCPServerChart(app, 'mcpserver', {
    mcpServer: manifest,
    namespace,
    bridgeImage: options.bridgeImage,
    operatorPeer: options.operatorPeer,
  });
  return chart.toJson() as KubeObject[];
}

/** YAML documents of objects, formatted byte-for-byte as `cdk8s synth` writes them. */
export function toYaml(objects: unknown[]): string {
  return Yaml.stringify(...objects);
}
