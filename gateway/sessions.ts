/**
 * Legacy (2025-era) MCP sessions that survive replicas (issue 18). A Streamable HTTP session
 * (MCP 2025-11-25, Transports > Session Management) lives in one pod: the server container that
 * issued it (reverse-proxy mode) or the bridge's one stdio process (stdio mode). Behind a balancer
 * that picks a pod per request (the apiserver's service proxy, an Ingress, a Gateway, a client that
 * opens a connection per request) its next request lands on any pod.
 *
 * So the `Mcp-Session-Id` a client sees is sealed here: AES-256-GCM (node:crypto) over
 * `[pod address, pod name, the session's own id]`, with the MCPServer's `namespace/name` as
 * additional data, under a key the operator keeps per MCPServer in a Secret mounted into the
 * gateway ({@link SessionKeys}; `current` seals, `current` and `previous` open, so sessions keep
 * working through one rotation). A client cannot forge, alter or redirect a sealed id: anything
 * that does not open is answered 404 "Session not found" (which the spec tells clients to answer
 * with a new session) before any connection is opened for it.
 *
 * A gateway that receives a session of another pod ({@link SessionRouter}) forwards the request as
 * it came (method, path, headers including the caller's Authorization, body, and the answer back,
 * SSE streams included) to that pod's gateway, only when the address is one of the MCPServer's
 * current pods (the A records of its headless Service `<name>-peers`, which publishes not-ready
 * pods too, so a draining owner still serves its sessions). The owner authenticates, authorizes
 * and audits the request as its own, and checks the session's caller (another caller gets 404).
 * One hop only: a forwarded request for yet another pod is 404. An owner that is gone (not a
 * current pod, its connection refused, or its address now another pod's) is 404 too.
 *
 * agentgateway encodes upstream sessions in the id the same way; ToolHive and microsoft/mcp-gateway
 * keep a shared table (Redis, Cosmos): this needs no store.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { promises as dns } from 'node:dns';
import fs from 'node:fs';
import * as http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { rpcError } from '../lib/http-json.js';
import { SESSION_KEY_BYTES, SESSION_KEY_CURRENT, SESSION_KEY_PREVIOUS } from './wiring.js';

export { SESSION_KEYS_DIR, SESSION_KEY_BYTES, SESSION_KEY_CURRENT, SESSION_KEY_PREVIOUS } from './wiring.js';

/** Longest `Mcp-Session-Id` the gateway tries to open, in characters; longer ones are unknown. */
export const MAX_SEALED_ID_LENGTH = 1024;
/** The header a forwarding gateway adds (its pod's name); a request carrying it is never forwarded again. */
export const FORWARDED_HEADER = 'kubemcp-forwarded-by';
/** Seconds between re-reads of the key files (the kubelet updates a mounted Secret within about a minute). */
export const SESSION_KEYS_RELOAD_SECONDS = 10;

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The pod that owns a session: its gateway's `ip:port` (`[ip]:port` for IPv6) and the pod's name. */
export interface SessionOwner {
  address: string;
  pod: string;
}

/** What a sealed id carries. */
export interface SessionRoute {
  owner: SessionOwner;
  /** The session's id where it lives (the server container's, or the bridge's own). */
  inner: string;
}

/** `ip:port`, with brackets for IPv6 (RFC 3986 host syntax). */
export function hostPort(ip: string, port: number): string {
  return net.isIPv6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * The session keys of one MCPServer, read from a directory holding the files `current` and,
 * after a rotation, `previous` (each {@link SESSION_KEY_BYTES} raw bytes: the mounted Secret),
 * re-read at most every {@link SESSION_KEYS_RELOAD_SECONDS}. A file of another length is ignored
 * (logged once per content). No `current` key: nothing is sealed (sessions stay in their pod, as
 * before issue 18) and the gateway says so at start.
 */
export class SessionKeys {
  private keys: Buffer[] = [];
  private loadedAt = -Infinity;
  private warned = new Set<string>();

  /** @param dir the directory; `keys` given instead: fixed keys (tests), the first one sealing. */
  constructor(
    private readonly dir?: string,
    fixed?: Buffer[],
    private readonly log?: Logger,
  ) {
    if (fixed) {
      for (const k of fixed)
        if (k.length !== SESSION_KEY_BYTES) throw new Error(`a session key must be ${SESSION_KEY_BYTES} bytes`);
      this.keys = fixed;
      this.loadedAt = Infinity;
    }
  }

  /** The keys that open ids, the sealing one first; empty when there is none. */
  all(): Buffer[] {
    if (this.dir && Date.now() - this.loadedAt > SESSION_KEYS_RELOAD_SECONDS * 1000) this.load();
    return this.keys;
  }

  private load(): void {
    this.loadedAt = Date.now();
    const keys: Buffer[] = [];
    for (const name of [SESSION_KEY_CURRENT, SESSION_KEY_PREVIOUS]) {
      let k: Buffer;
      try {
        k = fs.readFileSync(path.join(this.dir!, name));
      } catch {
        if (name === SESSION_KEY_CURRENT) break; // no current key: nothing seals or opens
        continue;
      }
      if (k.length === SESSION_KEY_BYTES) keys.push(k);
      else if (!this.warned.has(`${name}:${k.length}`)) {
        this.warned.add(`${name}:${k.length}`);
        this.log?.warn({ file: name, bytes: k.length }, `session key ignored: not ${SESSION_KEY_BYTES} bytes`);
      }
      if (name === SESSION_KEY_CURRENT && !keys.length) break;
    }
    this.keys = keys;
  }
}

/**
 * Seals and opens session ids of one MCPServer ({@link SessionKeys}; `context`, the MCPServer's
 * `namespace/name`, is the AEAD's additional data, so another MCPServer's ids never open here even
 * under the same key). The sealed form is base64url (RFC 4648 section 5: visible ASCII, as the spec
 * requires of a session id) of `version(1) | iv(12) | ciphertext | tag(16)`, about 140 characters.
 */
export class SessionSeal {
  constructor(
    private readonly keys: SessionKeys,
    private readonly context: string,
  ) {}

  /** Whether ids are sealed (a current key is present). */
  get enabled(): boolean {
    return this.keys.all().length > 0;
  }

  /**
   * Seals `route` under the current key.
   * @throws when there is no key ({@link enabled} false).
   */
  seal(route: SessionRoute): string {
    const key = this.keys.all()[0];
    if (!key) throw new Error('no session key: ids cannot be sealed');
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(Buffer.from(this.context));
    const plain = Buffer.from(JSON.stringify([route.owner.address, route.owner.pod, route.inner]));
    const body = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, body, c.getAuthTag()]).toString('base64url');
  }

  /** The route in a sealed id; undefined when it does not open under any key (forged, truncated, altered, another MCPServer's, too old a key). */
  open(id: string): SessionRoute | undefined {
    if (id.length > MAX_SEALED_ID_LENGTH || !/^[A-Za-z0-9_-]+$/.test(id)) return undefined;
    const raw = Buffer.from(id, 'base64url');
    if (raw.length < 1 + IV_BYTES + TAG_BYTES + 1 || raw[0] !== VERSION) return undefined;
    const iv = raw.subarray(1, 1 + IV_BYTES);
    const tag = raw.subarray(raw.length - TAG_BYTES);
    const body = raw.subarray(1 + IV_BYTES, raw.length - TAG_BYTES);
    for (const key of this.keys.all()) {
      try {
        const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
        d.setAAD(Buffer.from(this.context));
        d.setAuthTag(tag);
        const plain = JSON.parse(Buffer.concat([d.update(body), d.final()]).toString('utf8')) as unknown;
        if (!Array.isArray(plain) || plain.length !== 3 || !plain.every((x) => typeof x === 'string')) return undefined;
        const [address, pod, inner] = plain as string[];
        return { owner: { address: address!, pod: pod! }, inner: inner! };
      } catch {
        // not this key: try the next
      }
    }
    return undefined;
  }
}

/**
 * The current pods of an MCPServer as gateway addresses: the A/AAAA records of its headless
 * Service (`<name>-peers.<namespace>.svc.cluster.local`, publishNotReadyAddresses) with the
 * gateway's port, cached for `cacheMs` (default 1 s); {@link fresh} skips the cache.
 */
export function dnsPeers(fqdn: string, port: number, cacheMs = 1000) {
  let cached: { at: number; set: ReadonlySet<string> } | undefined;
  const resolve = async (): Promise<ReadonlySet<string>> => {
    const [v4, v6] = await Promise.all([
      dns.resolve4(fqdn).catch(() => [] as string[]),
      dns.resolve6(fqdn).catch(() => [] as string[]),
    ]);
    const set = new Set([...v4, ...v6].map((ip) => hostPort(ip, port)));
    cached = { at: Date.now(), set };
    return set;
  };
  return {
    current: async () => (cached && Date.now() - cached.at < cacheMs ? cached.set : resolve()),
    fresh: resolve,
  };
}

/**
 * A fixed set of pods as gateway addresses: `ips` (IP literals) with the gateway's port, for a
 * gateway outside Kubernetes or a bench on loopback (`--peers 127.0.0.1,127.0.0.2`).
 */
export function staticPeers(ips: readonly string[], port: number) {
  const set: ReadonlySet<string> = new Set(ips.map((ip) => hostPort(ip, port)));
  return { current: async () => set, fresh: async () => set };
}

/** Options of {@link SessionRouter}. */
export interface SessionRouterOptions {
  seal: SessionSeal;
  /** This pod. */
  self: SessionOwner;
  /** The MCPServer's current pods' gateway addresses ({@link dnsPeers}); `fresh` re-reads before a 404. */
  peers: { current: () => Promise<ReadonlySet<string>>; fresh: () => Promise<ReadonlySet<string>> };
  /**
   * true (reverse-proxy mode): a local request's header is replaced by the inner id, which the
   * server container knows; false (stdio mode): the sealed id is the session's own key and stays.
   */
  unwrap: boolean;
  log: Logger;
  registry?: Registry;
  /** Longest wait for the TCP connection to the owner pod's gateway, ms (default 5000); the request then runs as long as it lasts. */
  connectTimeoutMs?: number;
}

/** What {@link SessionRouter.route} did with a request. */
export type RouteResult =
  /** No session id, sealing off, or the session is this pod's: handle it here (in unwrap mode the header now holds the inner id). */
  | { local: true; route?: SessionRoute }
  /** Answered: forwarded to its owner, or 404 (`unknown`: the caller should audit it). */
  | { local: false; unknown?: boolean };

/**
 * Routes the requests of sealed sessions to the pod that owns them (see the module comment).
 * Counted in `kubemcp_gateway_session_routes_total{outcome}`: local, forwarded, unknown (did not
 * open), gone (the owner is not a current pod or refused the connection), hop (a forwarded request
 * for another pod).
 */
export class SessionRouter {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  private readonly counter?: Counter<'outcome'>;

  constructor(private readonly opts: SessionRouterOptions) {
    this.counter = opts.registry
      ? new Counter({
          name: 'kubemcp_gateway_session_routes_total',
          help: 'Requests of sealed sessions by where they went: local, forwarded, unknown, gone, hop',
          labelNames: ['outcome'],
          registers: [opts.registry],
        })
      : undefined;
  }

  /** Whether ids are sealed. */
  get enabled(): boolean {
    return this.opts.seal.enabled;
  }

  /** A new session's id as clients see it: `inner` sealed with this pod as owner (unsealed when sealing is off). */
  sealNew(inner: string): string {
    return this.enabled ? this.opts.seal.seal({ owner: this.opts.self, inner }) : inner;
  }

  /**
   * Routes one request by its `Mcp-Session-Id`; call it before the body is read (a forwarded
   * request's body is streamed to the owner as it comes).
   */
  async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<RouteResult> {
    const sid = req.headers['mcp-session-id'];
    if (typeof sid !== 'string' || !this.enabled) return { local: true };
    const route = this.opts.seal.open(sid);
    if (!route) return this.unknown(res, 'unknown');
    const { self } = this.opts;
    if (route.owner.address === self.address) {
      // Same address, another pod name: the owner is gone and its address is reused.
      if (route.owner.pod !== self.pod) return this.unknown(res, 'gone');
      this.counter?.inc({ outcome: 'local' });
      if (this.opts.unwrap) req.headers['mcp-session-id'] = route.inner;
      return { local: true, route };
    }
    if (req.headers[FORWARDED_HEADER] !== undefined) return this.unknown(res, 'hop');
    let peers = await this.opts.peers.current();
    if (!peers.has(route.owner.address)) peers = await this.opts.peers.fresh();
    if (!peers.has(route.owner.address)) return this.unknown(res, 'gone');
    this.counter?.inc({ outcome: 'forwarded' });
    this.forward(req, res, route.owner);
    return { local: false };
  }

  /** The id to send back for a local session whose server answered with `inner` (the client's own sealed id when it sent one for it). */
  outgoing(inner: string, route?: SessionRoute, sent?: string): string {
    if (!this.enabled) return inner;
    if (route && sent && route.inner === inner) return sent;
    return this.sealNew(inner);
  }

  close(): void {
    this.agent.destroy();
  }

  private unknown(res: http.ServerResponse, outcome: string): RouteResult {
    this.counter?.inc({ outcome });
    rpcError(res, 404, -32001, 'Session not found: initialize a new session');
    return { local: false, unknown: true };
  }

  /** Passes `req` to the owner's gateway and its answer back, streaming both ways. */
  private forward(req: http.IncomingMessage, res: http.ServerResponse, owner: SessionOwner): void {
    const url = new URL(`http://${owner.address}`);
    const headers: http.OutgoingHttpHeaders = { ...req.headers, [FORWARDED_HEADER]: this.opts.self.pod };
    delete headers.connection;
    delete headers['keep-alive'];
    const prior = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = [prior, req.socket.remoteAddress].filter(Boolean).join(', ');
    const up = http.request({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port),
      method: req.method,
      path: req.url,
      headers,
      agent: this.agent,
    });
    // A connect that hangs (an address gone from the pod network) is cut; once connected, a call
    // or a stream runs as long as it lasts, as it would without the hop.
    up.on('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(
        () => up.destroy(Object.assign(new Error('no connection to the owner pod'), { code: 'ECONNREFUSED' })),
        this.opts.connectTimeoutMs ?? 5000,
      );
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    const abort = () => up.destroy();
    res.on('close', abort);
    up.on('response', (ur) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(ur.headers))
        if (v !== undefined && k !== 'connection' && k !== 'keep-alive' && k !== 'transfer-encoding') out[k] = v;
      res.writeHead(ur.statusCode ?? 502, out);
      if (typeof res.flushHeaders === 'function') res.flushHeaders();
      ur.pipe(res);
      ur.on('error', () => res.destroy());
    });
    up.on('error', (err) => {
      res.off('close', abort);
      if (res.headersSent) return res.destroy();
      const refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
      this.opts.log.warn({ owner: owner.pod, err: err.message }, 'forwarding a session request failed');
      if (refused) return void this.unknown(res, 'gone');
      rpcError(res, 502, -32603, `Bad Gateway: the pod that owns this session did not answer (${err.message})`);
    });
    req.pipe(up);
  }
}
