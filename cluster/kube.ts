/**
 * Small Kubernetes API helpers used while bringing the cluster up: the admin KubeConfig,
 * apiserver readiness, idempotent creation, YAML directories, node readiness.
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { ApiException, KubeConfig, loadAllYaml, type KubernetesObject, type V1Node } from '@kubernetes/client-node';
import { CRD_ESTABLISHED_MS, KUBECONFIG_PATH } from './paths.js';
import { adminTls } from './pki.js';
import { httpGet, waitFor } from './process.js';

/** An admin KubeConfig for the local cluster, loaded from {@link KUBECONFIG_PATH}. */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(KUBECONFIG_PATH);
  return kc;
}

/** True if GET `<server>/readyz` answers 200 (any error counts as false). */
export async function apiserverReady(server: string): Promise<boolean> {
  try {
    const res = await httpGet(`${server}/readyz`, adminTls());
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Objects of every `*.yaml` file in `dir` (sorted by name). `loadAllYaml` deserialises built-in
 * kinds into the client's model classes, so typed calls serialise every field they carry.
 */
export function loadYamlDir(dir: string): KubernetesObject[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => loadAllYaml(fs.readFileSync(path.join(dir, f), 'utf8')) as (KubernetesObject | null)[])
    .filter((o): o is KubernetesObject => o !== null && typeof o === 'object');
}

/**
 * Runs `create` until it succeeds or answers 409 Conflict (already exists), retrying other errors
 * (bounded by {@link CRD_ESTABLISHED_MS}).
 * @throws Error naming `what` when it keeps failing.
 */
export async function createIdempotently(what: string, create: () => Promise<unknown>): Promise<void> {
  await waitFor('kube-apiserver', `creation of ${what}`, CRD_ESTABLISHED_MS, async () => {
    try {
      await create();
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 409)) throw err;
    }
    return true;
  });
}

/** Whether a Node's Ready condition is True. */
export function nodeIsReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}
