/**
 * MCPServer reads, merge patches and phase waits shared by the controller suites
 * (controller.test.ts, truth.test.ts, bridge.test.ts), against the real apiserver.
 */
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../../charts/api/schema.js';
import { waitFor } from '../kube.js';
import type { MCPS } from '../shapes.js';

const G = { group: GROUP, version: VERSION, plural: PLURAL };

/** What {@link mcpsApi} returns. */
export interface McpsApi {
  /** GET one MCPServer; rejects with client-node's error (e.g. code 404). */
  get(namespace: string, name: string): Promise<MCPS>;
  /** JSON merge patch of one MCPServer (RFC 7386). */
  mergePatch(namespace: string, name: string, body: object): Promise<unknown>;
  /**
   * Waits (polling every 250 ms, up to `timeoutMs`, default 90 s) until the MCPServer's status
   * has `phase`, is of its current generation and `extra` holds; resolves to that object.
   * @throws Error naming the wait and the last status read.
   */
  waitPhase(
    namespace: string,
    name: string,
    phase: string,
    extra?: (o: MCPS) => unknown,
    timeoutMs?: number,
  ): Promise<MCPS>;
}

/** MCPServer helpers over `kc`'s CustomObjectsApi (see {@link McpsApi}). */
export function mcpsApi(kc: k8s.KubeConfig): McpsApi {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const get = (namespace: string, name: string) =>
    custom.getNamespacedCustomObject({ ...G, namespace, name }) as Promise<MCPS>;
  return {
    get,
    mergePatch: (namespace, name, body) =>
      custom.patchNamespacedCustomObject(
        { ...G, namespace, name, body },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ),
    async waitPhase(namespace, name, phase, extra = () => true, timeoutMs = 90_000) {
      let last: MCPS | undefined;
      try {
        return await waitFor(
          `${namespace}/${name} phase ${phase}`,
          async () => {
            const o = (last = await get(namespace, name));
            return (
              o.status?.phase === phase && o.status.observedGeneration === o.metadata.generation && !!extra(o) && o
            );
          },
          timeoutMs,
          250,
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last?.status)}`);
      }
    },
  };
}

/** Whether the request finds its object: false on 404, the error otherwise. */
export const exists = (p: Promise<unknown>): Promise<boolean> =>
  p.then(
    () => true,
    (e: { code?: number }) => (e.code === 404 ? false : Promise.reject(e)),
  );
