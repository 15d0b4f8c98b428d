/**
 * Setup shared by the real-node suites that run MCPServers through an in-process controller
 * (bridge.test.ts, drain.test.ts): the images loaded into the real node, a namespace whose pods
 * run there under the `restricted` Pod Security Standard, the CRD, and a controller watching only
 * that namespace (bridge image: the kubemcp image; verification on, re-verified hourly).
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { realNodeNamespace, type realNodeStatus } from '../../cluster/index.js';
import { Controller } from '../../controller/controller.js';
import { ensureImagesLoaded } from '../../images/cluster.js';
import { KUBEMCP_IMAGE } from '../../images/images.js';
import { installCrd, waitFor } from '../kube.js';

/** Namespace labels enforcing the `restricted` Pod Security Standard (latest). */
export const RESTRICTED = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
};

/**
 * Loads the images, creates `ns` on the real node (restricted), waits for its default
 * ServiceAccount, installs the CRD and starts a controller for `ns`.
 * @throws Error when the real node is not available (with its reason), or a step fails.
 */
export async function startRealNodeController(
  kc: k8s.KubeConfig,
  ns: string,
  status: ReturnType<typeof realNodeStatus>,
  log: Logger,
): Promise<Controller> {
  if (!status.available)
    throw new Error(`the real node is not available: ${status.reason?.message ?? 'unknown reason'}`);
  ensureImagesLoaded({ output: 'pipe', log: () => undefined });
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: realNodeNamespace(ns, RESTRICTED) });
  await waitFor(
    `default ServiceAccount in ${ns}`,
    async () =>
      (await core.readNamespacedServiceAccount({ name: 'default', namespace: ns }).catch(() => undefined)) !==
      undefined,
  );
  await installCrd(kc);
  const controller = new Controller({
    kubeConfig: kc,
    log,
    namespace: ns,
    workers: 2,
    bridgeImage: KUBEMCP_IMAGE,
    verify: 'auto',
    verifyIntervalMs: 3_600_000,
    verifyTimeoutMs: 30_000,
  });
  await controller.start();
  return controller;
}
