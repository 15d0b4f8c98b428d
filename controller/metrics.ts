/**
 * Prometheus metrics of the controller (prom-client), named after controller-runtime's
 * (controller_runtime_reconcile_total, workqueue_depth, ...) under a `kubemcp_controller_` prefix.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The controller's metric set, in its own registry (so tests can run several controllers). */
export class ControllerMetrics {
  readonly registry = new Registry();
  /** Reconciles by result: success, error. */
  readonly reconcileTotal = new Counter({
    name: 'kubemcp_controller_reconcile_total',
    help: 'Reconciles by result',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'kubemcp_controller_reconcile_errors_total',
    help: 'Reconciles that returned an error',
    registers: [this.registry],
  });
  /** Reconcile duration in seconds. */
  readonly reconcileDuration = new Histogram({
    name: 'kubemcp_controller_reconcile_duration_seconds',
    help: 'Time per reconcile in seconds',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'kubemcp_controller_workqueue_depth',
    help: 'Keys waiting in the work queue',
    registers: [this.registry],
  });
  /** Server-side apply requests by child kind and reason (created, desired state changed, drift). */
  readonly applyRequests = new Counter({
    name: 'kubemcp_controller_apply_requests_total',
    help: 'Server-side apply requests sent',
    labelNames: ['kind', 'reason'],
    registers: [this.registry],
  });
  /** Every write request the controller sends, by verb and resource. */
  readonly writeRequests = new Counter({
    name: 'kubemcp_controller_write_requests_total',
    help: 'Write requests sent to the apiserver',
    labelNames: ['verb', 'resource'],
    registers: [this.registry],
  });
  /** MCP handshakes by result: Verified, ConnectionFailed, HTTPError, ProtocolError, Timeout, AuthRequired. */
  readonly handshakes = new Counter({
    name: 'kubemcp_controller_mcp_handshakes_total',
    help: 'MCP handshakes (protocol verification) by result',
    labelNames: ['result'],
    registers: [this.registry],
  });
  /** MCP handshake duration in seconds. */
  readonly handshakeDuration = new Histogram({
    name: 'kubemcp_controller_mcp_handshake_duration_seconds',
    help: 'Time per MCP handshake in seconds',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly isLeader = new Gauge({
    name: 'kubemcp_controller_is_leader',
    help: '1 while this instance holds the leader lease',
    registers: [this.registry],
  });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'kubemcp_controller_' });
  }
}
