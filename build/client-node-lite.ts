/**
 * What `kubemcp serve` uses of `@kubernetes/client-node`, inside the bundle (build.ts points
 * mcp-server/'s `@kubernetes/client-node` imports here): `KubeConfig` (kubeconfig files,
 * in-cluster config, exec/OIDC/cloud auth, TLS options), nothing of the generated API client.
 *
 * The real class lives in `kubeconfig.cjs` next to the bundle (build.ts bundles the package's
 * `dist/config.js` into it as CommonJS) and is loaded synchronously by the first `new
 * KubeConfig()`, so the server answers `initialize` and `tools/list` before paying for it
 * (mcp-server/stdio.ts warms it up right after). Outside the bundle (tsx, jest) this file is unused.
 */
import { createRequire } from 'node:module';
import type * as k8s from '@kubernetes/client-node';

const load = createRequire(import.meta.url);
let real: { KubeConfig: typeof k8s.KubeConfig } | undefined;

/** The real `KubeConfig` class, loaded on first use. @throws Error when kubeconfig.cjs is missing beside the bundle. */
export function realKubeConfig(): typeof k8s.KubeConfig {
  real ??= load('./kubeconfig.cjs') as { KubeConfig: typeof k8s.KubeConfig };
  return real.KubeConfig;
}

/** `new KubeConfig()` returns an instance of the real class (a constructor may return another object). */
export const KubeConfig = function KubeConfig() {
  return new (realKubeConfig())();
} as unknown as typeof k8s.KubeConfig;
