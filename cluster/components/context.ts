/**
 * What a component's start function gets: the bin dir, the ports, the apiserver URL and a
 * `launch` that spawns a process and records it in state.json at once (so `down` can stop it even
 * if the starting process dies).
 *
 * @module
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { COMPONENT_READY_MS, LOOPBACK, type Component } from '../paths.js';
import { pki, writeKubeconfig } from '../pki.js';
import { httpGet, waitFor } from '../process.js';
import type { ClusterPorts, ProcessRecord, RealNodeNetwork } from '../state.js';

/** Inputs of every component's start function. */
export interface StartContext {
  /** Directory of the control-plane binaries (build.sh). */
  binDir: string;
  /** apiserver URL, `https://127.0.0.1:<port>`. */
  server: string;
  /** Ports chosen for this start. */
  ports: ClusterPorts;
  /** Spawns `bin` as `component`, records it in state.json and returns its record. */
  launch: (
    component: Component,
    bin: string,
    args: string[],
    env?: Record<string, string>,
    netns?: string,
    /** A directory mounted where in-cluster programs read their token and CA (ProcessRecord.inClusterCredentials). */
    inClusterCredentials?: string,
  ) => Promise<ProcessRecord>;
  /** Progress sink. */
  log: (line: string) => void;
  /** The real node's network, when the cluster runs one. */
  network?: RealNodeNetwork;
}

/**
 * Waits until `url` (HTTPS, server cert checked against `ca`) answers 200, while `proc` lives.
 * @throws Error naming the component and its log on timeout or exit.
 */
export function waitHealthz(
  component: Component,
  url: string,
  ca: Buffer,
  timeoutMs: number,
  proc: ProcessRecord,
): Promise<true> {
  const tls: https.RequestOptions = { ca };
  return waitFor(
    component,
    url,
    timeoutMs,
    async () => ((await httpGet(url, tls)).status === 200 ? true : undefined),
    proc,
  );
}

/** What differs between the control-plane components started by {@link startSecureComponent}. */
export interface SecureComponentSpec {
  /** The component (its binary in {@link StartContext.binDir} has the same name). */
  component: 'kube-scheduler' | 'kube-controller-manager';
  /** Base name of its kubeconfig (`<id>.kubeconfig`) and generated-cert directory under pki/. */
  id: string;
  /** The user its client certificate names (`system:kube-scheduler`, ...). */
  user: string;
  /** Its secure port on 127.0.0.1. */
  port: number;
  /** Flags after the shared ones (kubeconfigs, bind address and port, serving cert, no leader election). */
  args: string[];
}

/**
 * Starts a control-plane component served by component-base's secure serving (kube-scheduler,
 * kube-controller-manager): writes its kubeconfig (a client cert for `user`), launches it with
 * the flags both take (kubeconfig for the API, authentication and authorization; bind to
 * 127.0.0.1:`port` with the loopback serving cert; `--leader-elect=false`) plus `spec.args`, and
 * returns at once with its record and a promise of its /healthz answering 200
 * ({@link COMPONENT_READY_MS} at most; rejects naming its log).
 * Flags: https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/ and
 * .../kube-controller-manager/
 */
export async function startSecureComponent(
  ctx: StartContext,
  spec: SecureComponentSpec,
): Promise<{ proc: ProcessRecord; healthy: Promise<true> }> {
  const kubeconfig = pki(`${spec.id}.kubeconfig`);
  writeKubeconfig(kubeconfig, ctx.server, spec.id, spec.user);
  const proc = await ctx.launch(spec.component, path.join(ctx.binDir, spec.component), [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--bind-address=${LOOPBACK}`,
    `--secure-port=${spec.port}`,
    `--cert-dir=${pki(`${spec.id}-generated`)}`,
    `--tls-cert-file=${pki('loopback-serving.crt')}`,
    `--tls-private-key-file=${pki('loopback-serving.key')}`,
    '--leader-elect=false',
    ...spec.args,
  ]);
  const healthy = waitHealthz(
    spec.component,
    `https://${LOOPBACK}:${spec.port}/healthz`,
    fs.readFileSync(pki('ca.crt')),
    COMPONENT_READY_MS,
    proc,
  );
  return { proc, healthy };
}
