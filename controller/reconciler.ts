/**
 * One reconcile of one MCPServer: seed 003's Reconcile (finalizer, validation, children, status),
 * done by server-side apply with the same construct `cdk8s synth` uses.
 *
 * Steps: read the object from the informer cache; on deletion run the finalizer (status
 * Terminating, delete the children, remove the finalizer); add the finalizer; validate (invalid:
 * phase Failed, ConfigurationValid=False, children left as they were); render the desired
 * children (charts/render.ts) with a controller owner reference; server-side apply each one that
 * differs from what this field manager last applied (controller/drift.ts); prune owned children
 * the spec no longer renders; write status through the status subresource when it changed.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { stringify } from 'yaml';
import {
  API_VERSION,
  FINALIZER,
  GROUP,
  KIND,
  PLURAL,
  VERSION,
  type MCPServerPeer,
  type MCPServerSpec,
  type MCPServerStatus,
} from '../charts/api/schema.js';
import { MCPServerValidationError, parseMCPServerSpec } from '../charts/api/validate.js';
import { renderMCPServer, type KubeObject, type RenderOptions } from '../charts/render.js';
import { clusterBindingNames, clusterBindings, isBridged, labelsFor, servesHttp } from '../charts/mcpserver.js';
import { randomBytes } from 'node:crypto';
import {
  SESSION_KEY_BYTES,
  SESSION_KEY_CURRENT,
  SESSION_KEY_PREVIOUS,
  sessionKeysSecretName,
} from '../gateway/wiring.js';

/** Set it to a new value on an MCPServer to rotate its session keys (gateway/sessions.ts; e.g. a date). */
export const ROTATE_SESSION_KEYS_ANNOTATION = 'mcp.example.com/rotate-session-keys';
/** On the session-key Secret: the rotate annotation's value it was last rotated for. */
export const ROTATED_FOR_ANNOTATION = 'mcp.example.com/rotated-for';
import { BRIDGE_RECHECK_MS, bridgeProblem, type BridgeReadyTargetFn } from './bridge-ready.js';
import { APPLIED_HASH_ANNOTATION, applyReason, foreignListEntries, hashOf } from './drift.js';
import type { ControllerMetrics } from './metrics.js';
import { podProblem } from './pods.js';
import { computeStatus, serviceReady, statusChanged, type ObservedState, type VerifyInput } from './status.js';
import type { Verifier, VerifyTarget } from './verify.js';

/** The one field manager of every apply the controller sends. */
export const FIELD_MANAGER = 'kubemcp-controller';
/** The event source component. */
export const COMPONENT = 'kubemcp-controller';

/** An MCPServer as read from the apiserver (plain JSON). */
export interface MCPServerObject {
  apiVersion: string;
  kind: string;
  metadata: k8s.V1ObjectMeta & { name: string; namespace: string; uid: string };
  spec?: unknown;
  status?: MCPServerStatus;
}

/** The kinds an MCPServer renders into, with their informer caches. */
export type ChildKind = 'ConfigMap' | 'Service' | 'Deployment' | 'PodDisruptionBudget' | 'NetworkPolicy';
export const CHILD_KINDS: ChildKind[] = ['ConfigMap', 'Service', 'Deployment', 'PodDisruptionBudget', 'NetworkPolicy'];

/** Read access to the informer caches the reconciler works from. */
export interface Caches {
  mcpServer(namespace: string, name: string): MCPServerObject | undefined;
  child(kind: ChildKind, namespace: string, name: string): KubeObject | undefined;
  children(kind: ChildKind, namespace: string): readonly KubeObject[];
  /** The pods of the MCPServer `name` (label `app.kubernetes.io/instance=<name>`). */
  pods(namespace: string, name: string): readonly k8s.V1Pod[];
}

/** What a reconcile asks of the work queue. */
export interface ReconcileResult {
  /** Reconcile again after this many ms (e.g. waiting for a rollout without events). */
  requeueAfterMs?: number;
}

const CHILD_API_VERSIONS: Record<ChildKind, string> = {
  ConfigMap: 'v1',
  Service: 'v1',
  Deployment: 'apps/v1',
  PodDisruptionBudget: 'policy/v1',
  NetworkPolicy: 'networking.k8s.io/v1',
};
const plural: Record<ChildKind, string> = {
  ConfigMap: 'configmaps',
  Service: 'services',
  Deployment: 'deployments',
  PodDisruptionBudget: 'poddisruptionbudgets',
  NetworkPolicy: 'networkpolicies',
};

/** The apiserver's message of a refused request (the Status body's `message`), or the error's own. */
export function apiErrorMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  let text: string | undefined;
  if (typeof body === 'string') {
    try {
      text = (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      text = body;
    }
  } else if (body && typeof body === 'object' && 'message' in body)
    text = String((body as { message: unknown }).message);
  return (text ?? (err instanceof Error ? err.message : String(err))).slice(0, 1000);
}

const isPodReady = (p: k8s.V1Pod) =>
  !p.metadata?.deletionTimestamp && !!p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

/** The controller owner reference that ties a child to its MCPServer (garbage collection, watches). */
export function ownerReference(obj: MCPServerObject): k8s.V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: obj.metadata.name,
    uid: obj.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * The children the controller applies for an MCPServer: exactly `renderMCPServer`'s namespaced
 * output (what `npm run synth` and `kubemcp render` print, without the gateway's cluster-scoped
 * ClusterRoleBinding, which {@link Reconciler} applies apart) plus the controller owner reference
 * and the applied-hash annotation.
 * @throws MCPServerValidationError when the spec is invalid.
 */
export function desiredChildren(obj: MCPServerObject, options: RenderOptions = {}): KubeObject[] {
  const manifest = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace },
    spec: obj.spec,
  };
  // The gateway's ClusterRoleBinding is cluster-scoped and cannot be owned: applied on its own (authDelegation).
  const namespaced = renderMCPServer(manifest, obj.metadata.namespace, options).filter(
    (c) => c.kind !== 'ClusterRoleBinding',
  );
  return namespaced.map((child) => {
    const withOwner = { ...child, metadata: { ...child.metadata, ownerReferences: [ownerReference(obj)] } };
    const hash = hashOf(withOwner);
    return {
      ...withOwner,
      metadata: {
        ...withOwner.metadata,
        annotations: {
          ...(withOwner.metadata as { annotations?: object }).annotations,
          [APPLIED_HASH_ANNOTATION]: hash,
        },
      },
    };
  });
}

function isOwnedBy(child: KubeObject, uid: string): boolean {
  return ((child.metadata.ownerReferences as k8s.V1OwnerReference[] | undefined) ?? []).some(
    (r) => r.controller && r.uid === uid,
  );
}

/** Options of {@link Reconciler}. */
export interface ReconcilerOptions {
  kubeConfig: k8s.KubeConfig;
  caches: Caches;
  log: Logger;
  metrics: ControllerMetrics;
  /** Runs the MCP handshakes of HTTP MCPServers; undefined: verification is off (`--verify=off`). */
  verifier?: Verifier;
  /** Where the handshake of an MCPServer goes (Service DNS name, or the apiserver's service proxy). */
  verifyTarget?: (namespace: string, name: string, spec: MCPServerSpec) => VerifyTarget;
  /** Where a bridged pod's `/ready` is read when it runs but is not ready (controller/bridge-ready.ts); undefined: not read. */
  bridgeReadyTarget?: BridgeReadyTargetFn;
  /** Image of the bridge of bridged stdio MCPServers (`--bridge-image`). */
  bridgeImage?: string;
  /** The operator's pods, admitted by MCPServers that narrow `spec.allowFrom` (so the handshake reaches them). */
  operatorPeer?: MCPServerPeer;
}

/** A child the apiserver refused. */
interface ApplyFailure {
  kind: string;
  name: string;
  message: string;
}

export class Reconciler {
  private readonly objects: k8s.KubernetesObjectApi;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  private readonly recentEvents = new Map<string, number>();
  /** What this process last made of each MCPServer's gateway review binding (JSON, '' for none). */
  private readonly delegations = new Map<string, string>();
  /** `<uid>/<rotation>` of the session-key Secrets this process made sure of (sessionKeys). */
  private readonly keysDone = new Set<string>();

  constructor(private readonly opts: ReconcilerOptions) {
    this.objects = k8s.KubernetesObjectApi.makeApiClient(opts.kubeConfig);
    this.custom = opts.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    this.core = opts.kubeConfig.makeApiClient(k8s.CoreV1Api);
  }

  /**
   * Reconciles the MCPServer `namespace/name` toward its desired state.
   * @throws the apiserver's error when a write fails (the queue retries with backoff).
   */
  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    try {
      return await this.reconcileObject(namespace, name);
    } catch (err) {
      // 404: the MCPServer (or its namespace) went away after the cache was read; its delete
      // event is on its way, and there is nothing left to converge.
      if ((err as { code?: number }).code === 404) return {};
      throw err;
    }
  }

  private async reconcileObject(namespace: string, name: string): Promise<ReconcileResult> {
    const obj = this.opts.caches.mcpServer(namespace, name);
    if (!obj) {
      this.opts.verifier?.forget(`${namespace}/${name}`);
      return {}; // deleted: owner references let the garbage collector remove the children
    }
    const log = this.opts.log.child({ mcpserver: `${namespace}/${name}`, generation: obj.metadata.generation });

    if (obj.metadata.deletionTimestamp) return this.finalize(obj, log);
    // The finalizer patch runs alongside the child applies (one round trip less per reconcile);
    // its error, if any, is thrown after them. Owner references let the garbage collector remove
    // children of an MCPServer deleted before its finalizer landed.
    const finalizing = (obj.metadata.finalizers ?? []).includes(FINALIZER)
      ? undefined
      : this.addFinalizer(obj).then(
          () => undefined,
          (err: unknown) => ({ err }),
        );
    const finalized = async () => {
      const r = await finalizing;
      if (r) throw r.err;
    };

    let spec: MCPServerSpec;
    try {
      spec = parseMCPServerSpec(obj.spec, name);
    } catch (err) {
      await finalized();
      if (!(err instanceof MCPServerValidationError)) throw err;
      const message = err.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
      log.warn({ reason: message }, 'invalid MCPServer');
      await this.event(obj, 'Warning', 'InvalidConfiguration', message);
      await this.writeStatus(obj, { name, namespace, generation: obj.metadata.generation ?? 0, invalid: message });
      return {};
    }

    const desired = desiredChildren(obj, { bridgeImage: this.opts.bridgeImage, operatorPeer: this.opts.operatorPeer });
    const applied = new Map<ChildKind, KubeObject>();
    const events: Array<Promise<void>> = [];
    const failures = await this.applyChildren(obj, desired, applied, log, events);
    const [delegation, keys] = await Promise.all([
      this.authDelegation(obj, spec, log),
      this.sessionKeys(obj, spec, log),
    ]);
    if (delegation) failures.push(delegation);
    if (keys) failures.push(keys);
    await finalized();

    await this.prune(obj, new Set(desired.map((d) => `${d.kind}/${d.metadata.name}`)), log);

    const dep = applied.get('Deployment') as
      (KubeObject & { spec?: { replicas?: number }; status?: k8s.V1DeploymentStatus }) | undefined;
    const svc = applied.get('Service') as (KubeObject & { spec?: { type?: string; clusterIP?: string } }) | undefined;
    const service = svc && { type: svc.spec?.type, clusterIP: svc.spec?.clusterIP };
    const pods = this.opts.caches.pods(namespace, name);
    const { verify, requeueAfterMs: verifyRequeue } = this.verification(obj, spec, pods, serviceReady(service));
    // The pods' own problem (image pull, crash loop, ...) first; else, for a bridged server whose
    // bridge runs but is not ready, the bridge's reason (e.g. initialize unanswered), rechecked
    // while it lasts: the kubelet reports no reason for a failing readiness probe.
    let problem = podProblem(pods);
    let requeueAfterMs = verifyRequeue;
    if (!problem && isBridged(spec) && this.opts.bridgeReadyTarget) {
      const b = await bridgeProblem(namespace, spec.port, pods, this.opts.bridgeReadyTarget);
      problem = b.problem;
      if (b.recheck) requeueAfterMs = Math.min(requeueAfterMs ?? BRIDGE_RECHECK_MS, BRIDGE_RECHECK_MS);
    }
    const before = obj.status;
    await this.writeStatus(obj, {
      name,
      namespace,
      generation: obj.metadata.generation ?? 0,
      spec,
      deployment: dep && {
        replicas: dep.status?.replicas,
        readyReplicas: dep.status?.readyReplicas,
        observedGeneration: dep.status?.observedGeneration,
        generation: (dep.metadata as k8s.V1ObjectMeta).generation,
      },
      service,
      applyFailures: failures,
      pods: problem,
      verify,
    });
    await Promise.all(events);
    const authOff = (c?: { type: string; reason: string }[]) =>
      !!c?.some((x) => x.type === 'AuthEnabled' && x.reason === 'AuthDisabled');
    if (authOff(obj.status?.conditions) && !authOff(before?.conditions))
      await this.event(
        obj,
        'Warning',
        'AuthDisabled',
        'spec.auth.mode is none: anyone who reaches the Service may call this MCP server',
      );
    const [oldTools, newTools] = [before?.tools, obj.status?.tools];
    if (oldTools && newTools && oldTools.hash !== newTools.hash) {
      const added = (newTools.names ?? []).filter((n) => !(oldTools.names ?? []).includes(n));
      const removed = (oldTools.names ?? []).filter((n) => !(newTools.names ?? []).includes(n));
      const detail = [
        added.length ? `added ${added.join(', ')}` : '',
        removed.length ? `removed ${removed.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; ');
      await this.event(
        obj,
        'Normal',
        'ToolsChanged',
        `Tool list changed: ${oldTools.count} -> ${newTools.count} tools${detail ? ` (${detail})` : ''}`,
      );
    }
    if (failures.length) {
      // Status and events say it; the queue retries with backoff until the cause goes away.
      throw Object.assign(
        new Error(`applying children failed: ${failures.map((f) => `${f.kind} ${f.name}: ${f.message}`).join('; ')}`),
        { code: 'ApplyFailed' },
      );
    }
    return requeueAfterMs ? { requeueAfterMs } : {};
  }

  /**
   * The protocol verification input of the status: disabled (no verifier, or stdio), waiting (no
   * ready pod or no Service), or the verifier's latest result for the current URL and ready pods
   * (a change of either starts a new handshake; see controller/verify.ts).
   */
  private verification(
    obj: MCPServerObject,
    spec: MCPServerSpec,
    pods: readonly k8s.V1Pod[],
    svcReady: boolean,
  ): { verify: VerifyInput; requeueAfterMs?: number } {
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const verifier = this.opts.verifier;
    if (!verifier || !this.opts.verifyTarget || !servesHttp(spec)) {
      verifier?.forget(key);
      return { verify: { state: 'disabled' } };
    }
    const ready = pods
      .filter(isPodReady)
      .map((p) => p.metadata!.name!)
      .sort();
    if (!ready.length || !svcReady) {
      verifier.forget(key);
      return { verify: { state: 'waiting' } };
    }
    const target = () => this.opts.verifyTarget!(obj.metadata.namespace, obj.metadata.name, spec);
    const inputs = `${spec.port}${spec.path}|${ready.join(',')}`;
    const o = verifier.check(key, inputs, target);
    return { verify: { state: 'checked', result: o.result, inFlight: o.inFlight }, requeueAfterMs: o.requeueAfterMs };
  }

  /**
   * Applies each desired child that differs from what this field manager last applied, after
   * removing foreign entries from the keyed lists the controller sets (controller/drift.ts
   * foreignListEntries); records what is live in `applied`. The children are applied
   * concurrently (one round trip per reconcile, not one per child). A child the apiserver refuses
   * is recorded (Warning event) and the others are still applied. The applied children are
   * announced by one Normal event per reason (`Created ConfigMap a-config, Service a, Deployment a`),
   * pushed to `events` so the caller can send it alongside the status write.
   * @returns the refused children with the apiserver's message, in desired order.
   * @throws when the MCPServer's namespace is gone (404) or a list fix raced another writer.
   */
  private async applyChildren(
    obj: MCPServerObject,
    desired: KubeObject[],
    appliedByKind: Map<ChildKind, KubeObject>,
    log: Logger,
    events: Array<Promise<void>>,
  ): Promise<ApplyFailure[]> {
    const namespace = obj.metadata.namespace;
    const outcomes = await Promise.allSettled(
      desired.map(async (child): Promise<{ failure?: ApplyFailure; announce?: [string, string] }> => {
        const kind = child.kind as ChildKind;
        // `applied` holds the MCPServer's own Service (status.url); the peers' headless Service is not it.
        const applied = { set: (k: ChildKind, v: KubeObject) => (primary ? appliedByKind.set(k, v) : undefined) };
        const primary = !(kind === 'Service' && child.metadata.name !== obj.metadata.name);
        const cached = this.opts.caches.child(kind, namespace, child.metadata.name);
        // Items of an informer's initial list carry no apiVersion/kind: not a difference to apply.
        const live =
          cached &&
          ({
            ...cached,
            apiVersion: cached.apiVersion ?? child.apiVersion,
            kind: cached.kind ?? child.kind,
          } as KubeObject);
        try {
          const fixed = live ? await this.removeForeignEntries(obj, child, live, log) : undefined;
          const reason = fixed ? `drift at ${fixed}` : applyReason(child, live as Record<string, unknown> | undefined);
          if (!reason) {
            applied.set(kind, live!);
            return {};
          }
          const result = await this.apply(child, reason);
          applied.set(kind, result);
          log.info({ kind, child: child.metadata.name, reason }, 'applied child');
          const eventReason =
            reason === 'created' ? 'Created' : reason.startsWith('drift') ? 'DriftReverted' : 'Updated';
          return {
            announce: [
              eventReason,
              eventReason === 'DriftReverted'
                ? `${kind} ${child.metadata.name} (${reason})`
                : `${kind} ${child.metadata.name}`,
            ],
          };
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          // Not the apiserver refusing the child (no HTTP status: a connection or transport
          // error): nothing to report on the object; the queue retries with backoff.
          if (code === 404 || code === 'Retry' || typeof code !== 'number') throw err;
          const message = apiErrorMessage(err);
          if (live) applied.set(kind, live);
          log.warn({ kind, child: child.metadata.name, err: message }, 'applying a child failed');
          events.push(
            this.event(obj, 'Warning', 'ApplyFailed', `Applying ${kind} ${child.metadata.name} failed: ${message}`),
          );
          return { failure: { kind, name: child.metadata.name, message } };
        }
      }),
    );
    const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (rejected) throw rejected.reason;
    const done = outcomes.map(
      (o) => (o as PromiseFulfilledResult<{ failure?: ApplyFailure; announce?: [string, string] }>).value,
    );
    const byReason = new Map<string, string[]>();
    for (const { announce } of done)
      if (announce) byReason.set(announce[0], [...(byReason.get(announce[0]) ?? []), announce[1]]);
    const verb: Record<string, string> = { Created: 'Created', Updated: 'Updated', DriftReverted: 'Reverted drift of' };
    for (const [reason, what] of byReason)
      events.push(this.event(obj, 'Normal', reason, `${verb[reason] ?? reason} ${what.join(', ')}`));
    return done.flatMap((d) => (d.failure ? [d.failure] : []));
  }

  /**
   * Removes entries the controller does not want from the keyed lists it sets (Service ports,
   * containers, container ports, env, volumes, volumeMounts), which a forced server-side apply
   * cannot remove when another manager owns them: a JSON patch that tests the resourceVersion of
   * a fresh read and replaces each such list by its rendered entries (live values kept).
   * Other fields other managers set (annotations, labels, other lists) are left alone.
   * @returns the fixed paths with their foreign entries (for the event and the apply reason), or
   *   undefined when there was nothing to remove.
   */
  private async removeForeignEntries(
    obj: MCPServerObject,
    child: KubeObject,
    cached: KubeObject,
    log: Logger,
  ): Promise<string | undefined> {
    if (child.kind !== 'Deployment' && child.kind !== 'Service') return undefined; // the only kinds with keyed lists
    const json = (o: unknown) => JSON.parse(JSON.stringify(o)) as never;
    if (!foreignListEntries(json(child), json(cached)).found.length) return undefined;
    const ns = obj.metadata.namespace;
    const name = child.metadata.name;
    const apps = this.opts.kubeConfig.makeApiClient(k8s.AppsV1Api);
    const fresh = json(
      child.kind === 'Deployment'
        ? await apps.readNamespacedDeployment({ name, namespace: ns })
        : await this.core.readNamespacedService({ name, namespace: ns }),
    ) as KubeObject;
    const { found, replace } = foreignListEntries(json(child), fresh as never);
    if (!found.length) return undefined;
    const body = [
      { op: 'test', path: '/metadata/resourceVersion', value: (fresh.metadata as k8s.V1ObjectMeta).resourceVersion },
      ...replace.map((r) => ({ op: 'replace', path: r.pointer, value: r.value })),
    ];
    const what = found.map((f) => `${f.path} (${f.entries.join('; ')})`).join(', ');
    this.opts.metrics.writeRequests.inc({ verb: 'patch', resource: plural[child.kind as ChildKind] });
    const headers = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);
    try {
      if (child.kind === 'Deployment')
        await apps.patchNamespacedDeployment({ name, namespace: ns, body, fieldManager: FIELD_MANAGER }, headers);
      else await this.core.patchNamespacedService({ name, namespace: ns, body, fieldManager: FIELD_MANAGER }, headers);
    } catch (err) {
      // Someone wrote the object since the read: retry from a fresh cache, not a status.
      if ((err as { code?: number }).code === 409 || /testing value .* failed|test failed/i.test(apiErrorMessage(err)))
        throw Object.assign(new Error(`${child.kind} ${name} changed while fixing its lists`), { code: 'Retry' });
      throw err;
    }
    log.info({ kind: child.kind, child: name, removed: what }, 'removed foreign list entries');
    return `${what}: foreign entries removed`;
  }

  /** Server-side apply (force, one field manager). Typed through loadYaml so no field is dropped. */
  private async apply(child: KubeObject, reason: string): Promise<KubeObject> {
    this.opts.metrics.applyRequests.inc({ kind: child.kind, reason: reason.startsWith('drift') ? 'drift' : reason });
    this.opts.metrics.writeRequests.inc({ verb: 'apply', resource: plural[child.kind as ChildKind] ?? child.kind });
    const typed = k8s.loadYaml<k8s.KubernetesObject>(stringify(child));
    const out = await this.objects.patch(
      typed,
      undefined,
      undefined,
      FIELD_MANAGER,
      true,
      k8s.PatchStrategy.ServerSideApply,
    );
    return out as unknown as KubeObject;
  }

  /** Deletes owned children of the given kinds that the current spec does not render. */
  private async prune(obj: MCPServerObject, keep: Set<string>, log: Logger): Promise<void> {
    for (const kind of CHILD_KINDS) {
      for (const child of this.opts.caches.children(kind, obj.metadata.namespace)) {
        if (!isOwnedBy(child, obj.metadata.uid) || keep.has(`${kind}/${child.metadata.name}`)) continue;
        await this.deleteChild(kind, child);
        log.info({ kind, child: child.metadata.name }, 'pruned child');
        await this.event(
          obj,
          'Normal',
          'Pruned',
          `Deleted ${kind} ${child.metadata.name}: no longer rendered by the spec`,
        );
      }
    }
  }

  /**
   * Deletes a child (precondition: its uid). The kind comes from the cache it was found in:
   * objects of an informer's initial list carry no apiVersion/kind (List items do not).
   */
  private async deleteChild(kind: ChildKind, child: KubeObject): Promise<void> {
    this.opts.metrics.writeRequests.inc({ verb: 'delete', resource: plural[kind] });
    const uid = (child.metadata as k8s.V1ObjectMeta).uid;
    try {
      await this.objects.delete(
        {
          apiVersion: CHILD_API_VERSIONS[kind],
          kind,
          metadata: { name: child.metadata.name, namespace: child.metadata.namespace },
        },
        undefined,
        undefined,
        undefined,
        undefined,
        'Background',
        { preconditions: { uid } } as never,
      );
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
  }

  /**
   * Applies or deletes the cluster-scoped ClusterRoleBinding that lets the MCPServer's gateway send
   * TokenReviews and SubjectAccessReviews (charts/mcpserver.ts authDelegatorBinding), once per
   * change of what it should be in this process's life; a failure is reported like a child's.
   */
  private async authDelegation(
    obj: MCPServerObject,
    spec: MCPServerSpec,
    log: Logger,
  ): Promise<ApplyFailure | undefined> {
    const { namespace, name } = obj.metadata;
    // The gateway's review binding and, with spec.auth.impersonate, the server's impersonation one.
    for (const b of clusterBindings(namespace, name, spec)) {
      const key = `${namespace}/${name}/${b.name}`;
      const wanted = b.want ? JSON.stringify(b.want) : '';
      if (this.delegations.get(key) === wanted) continue;
      try {
        if (b.want) await this.apply(b.want as unknown as KubeObject, 'cluster-binding');
        else await this.deleteClusterBinding(b.name);
        this.delegations.set(key, wanted);
        log.info(
          { binding: b.name, applied: !!b.want },
          b.want ? 'applied cluster binding' : 'removed cluster binding',
        );
      } catch (err) {
        const message = (err as { body?: { message?: string } }).body?.message ?? (err as Error).message;
        log.warn({ binding: b.name, err: message }, 'cluster binding failed');
        return { kind: 'ClusterRoleBinding', name: b.name, message };
      }
    }
    return undefined;
  }

  /**
   * Keeps the Secret `<name>-session-keys` of an HTTP MCPServer (gateway/sessions.ts, issue 18):
   * created with a random 32-byte `current` key (owned by the MCPServer, so deleted with it) when
   * absent; when the MCPServer's {@link ROTATE_SESSION_KEYS_ANNOTATION} differs from the value the
   * Secret was last rotated for, `current` becomes `previous` and a new `current` is made (an
   * update on the read object's resourceVersion, so two writers cannot lose a key). Sessions sealed
   * under the old key keep working through one rotation. Done once per annotation value in this
   * process's life; a refused write is reported like a child's (status names it).
   */
  private async sessionKeys(obj: MCPServerObject, spec: MCPServerSpec, log: Logger): Promise<ApplyFailure | undefined> {
    if (!servesHttp(spec)) return undefined;
    const { namespace, name, uid } = obj.metadata;
    const secretName = sessionKeysSecretName(name);
    const rotation = obj.metadata.annotations?.[ROTATE_SESSION_KEYS_ANNOTATION] ?? '';
    const memo = `${uid}/${rotation}`;
    if (this.keysDone.has(memo)) return undefined;
    const key = () => randomBytes(SESSION_KEY_BYTES).toString('base64');
    try {
      try {
        this.opts.metrics.writeRequests.inc({ verb: 'create', resource: 'secrets' });
        await this.core.createNamespacedSecret({
          namespace,
          body: {
            metadata: {
              name: secretName,
              namespace,
              labels: labelsFor(name, spec.transport),
              annotations: { [ROTATED_FOR_ANNOTATION]: rotation },
              ownerReferences: [ownerReference(obj)],
            },
            type: 'Opaque',
            data: { [SESSION_KEY_CURRENT]: key() },
          },
        });
        log.info({ secret: secretName }, 'created the session keys');
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw err;
        const live = await this.core.readNamespacedSecret({ name: secretName, namespace });
        if ((live.metadata?.annotations?.[ROTATED_FOR_ANNOTATION] ?? '') !== rotation) {
          const data = { ...(live.data ?? {}) };
          if (data[SESSION_KEY_CURRENT]) data[SESSION_KEY_PREVIOUS] = data[SESSION_KEY_CURRENT];
          data[SESSION_KEY_CURRENT] = key();
          this.opts.metrics.writeRequests.inc({ verb: 'update', resource: 'secrets' });
          await this.core.replaceNamespacedSecret({
            name: secretName,
            namespace,
            body: {
              ...live,
              metadata: {
                ...live.metadata,
                annotations: { ...live.metadata?.annotations, [ROTATED_FOR_ANNOTATION]: rotation },
              },
              data,
            },
          });
          log.info({ secret: secretName, rotation }, 'rotated the session keys');
          await this.event(
            obj,
            'Normal',
            'SessionKeysRotated',
            `Rotated ${secretName}: sessions of the previous key keep working`,
          );
        }
      }
      this.keysDone.add(memo);
      return undefined;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'number' || code === 404) throw err; // transport error or namespace gone: retried
      const message = apiErrorMessage(err);
      log.warn({ secret: secretName, err: message }, 'session keys failed');
      return { kind: 'Secret', name: secretName, message };
    }
  }

  /** Deletes the MCPServer's cluster-scoped bindings (absent is fine). */
  private async deleteAuthDelegation(namespace: string, name: string): Promise<void> {
    for (const b of clusterBindingNames(namespace, name)) await this.deleteClusterBinding(b);
  }

  /** Deletes ClusterRoleBinding `bindingName` (absent is fine). */
  private async deleteClusterBinding(bindingName: string): Promise<void> {
    this.opts.metrics.writeRequests.inc({ verb: 'delete', resource: 'clusterrolebindings' });
    try {
      await this.objects.delete({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: bindingName },
      });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
  }

  /** Finalizer: phase Terminating, children deleted, finalizer removed (seed 003's handleDeletion). */
  private async finalize(obj: MCPServerObject, log: Logger): Promise<ReconcileResult> {
    this.opts.verifier?.forget(`${obj.metadata.namespace}/${obj.metadata.name}`);
    const index = (obj.metadata.finalizers ?? []).indexOf(FINALIZER);
    if (index < 0) return {};
    await this.writeStatus(obj, {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      generation: obj.metadata.generation ?? 0,
      terminating: true,
    });
    await this.event(obj, 'Normal', 'Deleting', 'Deleting the MCPServer and its children');
    for (const kind of CHILD_KINDS) {
      for (const child of this.opts.caches.children(kind, obj.metadata.namespace))
        if (isOwnedBy(child, obj.metadata.uid)) await this.deleteChild(kind, child);
    }
    // Cluster-scoped, so no owner reference: the garbage collector would never remove it.
    await this.deleteAuthDelegation(obj.metadata.namespace, obj.metadata.name);
    this.delegations.delete(`${obj.metadata.namespace}/${obj.metadata.name}`);
    // Remove every copy (there should be one), testing the list first as addFinalizer does.
    const finalizers = obj.metadata.finalizers ?? [];
    await this.patchObject(obj, [
      { op: 'test', path: '/metadata/finalizers', value: finalizers },
      { op: 'replace', path: '/metadata/finalizers', value: finalizers.filter((f) => f !== FINALIZER) },
    ]);
    log.info('finalizer removed');
    return {};
  }

  /**
   * Adds the finalizer with a JSON patch that first tests the list it read: if anyone changed the
   * finalizers meanwhile, the apiserver refuses the patch (422) and the queue retries from a fresh
   * cache, so the finalizer is never added twice.
   */
  private async addFinalizer(obj: MCPServerObject): Promise<void> {
    const finalizers = obj.metadata.finalizers ?? [];
    await this.patchObject(
      obj,
      finalizers.length === 0
        ? [
            { op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion },
            { op: 'add', path: '/metadata/finalizers', value: [FINALIZER] },
          ]
        : [
            { op: 'test', path: '/metadata/finalizers', value: finalizers },
            { op: 'add', path: '/metadata/finalizers/-', value: FINALIZER },
          ],
    );
    obj.metadata.finalizers = [...finalizers, FINALIZER];
  }

  private async patchObject(obj: MCPServerObject, body: object[]): Promise<void> {
    this.opts.metrics.writeRequests.inc({ verb: 'patch', resource: PLURAL });
    await this.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: obj.metadata.namespace,
        plural: PLURAL,
        name: obj.metadata.name,
        body,
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
  }

  /** Computes the status and writes it (JSON merge patch on /status) only when it changed. */
  private async writeStatus(obj: MCPServerObject, observed: ObservedState): Promise<void> {
    const next = computeStatus(observed, obj.status, new Date().toISOString().replace(/\.\d+Z$/, 'Z'));
    if (!statusChanged(obj.status, next)) return;
    this.opts.metrics.writeRequests.inc({ verb: 'patch', resource: `${PLURAL}/status` });
    // A merge patch keeps what it does not mention: an endpoint or url the spec no longer has
    // (a stdio server that lost its bridge) is removed explicitly.
    const body = { status: { ...next, endpoint: next.endpoint ?? null, url: next.url ?? null } };
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace: obj.metadata.namespace,
        plural: PLURAL,
        name: obj.metadata.name,
        body,
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    obj.status = next;
  }

  /**
   * Records a core/v1 Event on the MCPServer. The same reason and message for the same object is
   * recorded at most once per 10 minutes, so retries do not flood the event stream. Event
   * failures are logged, never thrown (events are best effort, as in client-go's recorder).
   */
  async event(obj: MCPServerObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const key = `${obj.metadata.uid}/${reason}/${message}`;
    const now = Date.now();
    if ((this.recentEvents.get(key) ?? 0) > now - 600_000) return;
    this.recentEvents.set(key, now);
    if (this.recentEvents.size > 10_000) this.recentEvents.clear();
    this.opts.metrics.writeRequests.inc({ verb: 'create', resource: 'events' });
    const time = new Date();
    try {
      await this.core.createNamespacedEvent({
        namespace: obj.metadata.namespace,
        body: {
          metadata: { generateName: `${obj.metadata.name}.`, namespace: obj.metadata.namespace },
          involvedObject: {
            apiVersion: API_VERSION,
            kind: KIND,
            name: obj.metadata.name,
            namespace: obj.metadata.namespace,
            uid: obj.metadata.uid,
            resourceVersion: obj.metadata.resourceVersion,
          },
          reason,
          message: message.slice(0, 1024),
          type,
          source: { component: COMPONENT },
          reportingComponent: COMPONENT,
          reportingInstance: process.env.POD_NAME ?? COMPONENT,
          firstTimestamp: time,
          lastTimestamp: time,
          count: 1,
        },
      });
    } catch (err) {
      this.opts.log.warn({ err: String(err), reason }, 'recording an event failed');
    }
  }
}
