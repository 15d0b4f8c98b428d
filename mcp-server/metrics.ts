/**
 * Prometheus metrics of `kubemcp serve` (served at /metrics in HTTP mode): tool calls by tool
 * and result, tool latency in seconds, open HTTP sessions. One registry per Metrics instance
 * (so several servers in one process, as in tests, do not collide).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  private readonly calls: Counter<'tool' | 'result'>;
  private readonly latency: Histogram<'tool'>;
  readonly sessions: Gauge;

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'kubemcp_' });
    this.calls = new Counter({
      name: 'kubemcp_tool_calls_total',
      help: 'MCP tool calls by tool and result',
      labelNames: ['tool', 'result'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'kubemcp_tool_duration_seconds',
      help: 'MCP tool call latency in seconds',
      labelNames: ['tool'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.sessions = new Gauge({
      name: 'kubemcp_http_sessions',
      help: 'Open Streamable HTTP sessions',
      registers: [this.registry],
    });
  }

  /** Records one tool call; `ms` is its duration in milliseconds. */
  observe(tool: string, result: 'ok' | 'error', ms: number): void {
    this.calls.inc({ tool, result });
    this.latency.observe({ tool }, ms / 1000);
  }
}
