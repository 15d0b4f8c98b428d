/**
 * What a component's start function gets: the bin dir, the ports, the apiserver URL and a
 * `launch` that spawns a process and records it in state.json at once (so `down` can stop it even
 * if the starting process dies).
 *
 * @module
 */
import https from 'node:https';
import type { Component } from '../paths.js';
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
  launch: (component: Component, bin: string, args: string[], env?: Record<string, string>, netns?: string) => Promise<ProcessRecord>;
  /** Progress sink. */
  log: (line: string) => void;
  /** The real node's network, when the cluster runs one. */
  network?: RealNodeNetwork;
}

/**
 * Waits until `url` (HTTPS, server cert checked against `ca`) answers 200, while `proc` lives.
 * @throws Error naming the component and its log on timeout or exit.
 */
export function waitHealthz(component: Component, url: string, ca: Buffer, timeoutMs: number, proc: ProcessRecord): Promise<true> {
  const tls: https.RequestOptions = { ca };
  return waitFor(component, url, timeoutMs, async () => ((await httpGet(url, tls)).status === 200 ? true : undefined), proc);
}
