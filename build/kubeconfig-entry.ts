/** Entry of dist/cli/kubeconfig.cjs (build.ts): client-node's KubeConfig and only what it needs. */
export { KubeConfig } from '@kubernetes/client-node/dist/config.js';
