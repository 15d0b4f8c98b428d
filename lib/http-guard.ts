/**
 * The request checks shared by the HTTP side of `kubemcp serve` (mcp-server/http.ts) and of
 * `kubemcp bridge` (gateway/http.ts), built on the MCP SDK's middleware and the `cors` package:
 *
 * - Host header (DNS-rebinding protection, MCP spec 2025-11-25, Transports > Security Warning):
 *   the SDK's `hostHeaderValidation` (server/middleware/hostHeaderValidation), 403 for a Host
 *   not allowed. Default on a loopback bind: localhost, 127.0.0.1, [::1].
 * - Origin: refused with 403 unless absent, listed in the CORS origins (or `*`), or, on a
 *   loopback bind with no CORS list, a loopback page (e.g. the MCP Inspector). The `cors`
 *   package only decides which headers to send and never refuses a request, and the SDK has no
 *   Origin middleware: this check is our own.
 * - CORS headers and preflights: the `cors` package.
 * - Bearer token: the SDK's `requireBearerAuth` (server/auth/middleware/bearerAuth) with a
 *   verifier of the one static token (constant-time comparison), 401 with `WWW-Authenticate: Bearer`.
 *
 * The SDK middleware is written for express; the servers here run on node:http (the SDK's
 * StreamableHTTPServerTransport takes node's request and response, and express would add a
 * framework to load for three calls), so {@link runMiddleware} gives them the three response
 * methods they use (`status`, `set`, `json`). That adapter is the only code of ours on this path.
 */
import type * as http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import cors from 'cors';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { hostHeaderValidation } from '@modelcontextprotocol/sdk/server/middleware/hostHeaderValidation.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';

/** Loopback bind addresses and Host names. */
export const LOOPBACK = ['127.0.0.1', 'localhost', '::1'];

/** Options of {@link httpGuard}. */
export interface GuardOptions {
  /** The bind address: a loopback one turns on the loopback defaults. */
  host: string;
  /** Host header names accepted; default for a loopback bind: the loopback names; for other binds: any. */
  allowedHosts?: string[];
  /** Origins allowed for CORS and the Origin check; `*` allows any. Default none. */
  corsOrigins?: string[];
  /** A bearer token required by {@link Guard.authorize} when set. */
  token?: string;
}

/** The checks of one server. Each resolves `true` when the request may go on, `false` when it has been answered (refused, or a preflight). */
export interface Guard {
  /** Host, Origin and CORS (a preflight is answered here). */
  check(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean>;
  /** The bearer token (always `true` when no token is configured). */
  authorize(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean>;
}

/** What an express middleware may call on the response here (the SDK middleware uses these). */
interface ExpressResponseSubset {
  status(code: number): ExpressResponseSubset;
  set(name: string, value: string): ExpressResponseSubset;
  json(body: unknown): ExpressResponseSubset;
}

/** A connect-style middleware on node's request and response (the `cors` package's shape). */
export type NodeMiddleware = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  next: (err?: unknown) => void,
) => unknown;

/** An express middleware as a NodeMiddleware: {@link runMiddleware} hands it a response with the express methods it uses. */
function fromExpress(mw: RequestHandler): NodeMiddleware {
  return (req, res, next) => mw(req as unknown as Request, res as unknown as Response, next as NextFunction);
}

/**
 * Runs a middleware on node's request and response, the response extended with express's
 * `status`, `set` and `json`. Resolves `true` when it called `next()` without an error, `false`
 * when it answered the request itself.
 * @throws the error a middleware passes to `next(err)` or throws.
 */
export async function runMiddleware(
  mw: NodeMiddleware,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<boolean> {
  let status = 200;
  const shim: ExpressResponseSubset = {
    status(code) {
      status = code;
      return shim;
    },
    set(name, value) {
      res.setHeader(name, value);
      return shim;
    },
    json(body) {
      if (!res.headersSent) {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      }
      return shim;
    },
  };
  // The response object is node's own, with the express methods above delegating to it.
  const expressRes = new Proxy(res, {
    get(target, prop, receiver) {
      if (prop === 'status' || prop === 'set' || prop === 'json') return shim[prop];
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
    },
    set(target, prop, value) {
      return Reflect.set(target, prop, value);
    },
  });
  return await new Promise<boolean>((resolve, reject) => {
    let called = false;
    const next = (err?: unknown) => {
      called = true;
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve(true);
    };
    Promise.resolve(mw(req, expressRes, next)).then(
      () => {
        if (!called) resolve(false);
      },
      (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))),
    );
  });
}

/** A Host header name as the SDK compares it (URL hostname: lower case, IPv6 in brackets). */
function hostName(h: string): string {
  const bare = h
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return bare.includes(':') ? `[${bare}]` : bare;
}

/** The hostname of an Origin (`scheme://host[:port]`), or undefined when it is not a URL. */
function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
}

/** The headers of every CORS answer (the MCP session and protocol headers, and the auth challenge). */
const CORS = {
  methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
  allowedHeaders: ['Content-Type', 'Authorization', 'Mcp-Session-Id', 'Mcp-Protocol-Version', 'Last-Event-ID'],
  exposedHeaders: ['Mcp-Session-Id', 'WWW-Authenticate'],
  maxAge: 600,
  optionsSuccessStatus: 204,
};

/**
 * Builds the checks of one HTTP server (see the module comment).
 * Refusals: 403 JSON-RPC error for a Host (the SDK's message, "Invalid Host: ...") or Origin not
 * allowed; 401 with `WWW-Authenticate: Bearer ...` and an OAuth error body for a missing or
 * wrong token.
 */
export function httpGuard(opts: GuardOptions): Guard {
  const loopback = LOOPBACK.includes(opts.host);
  const allowedHosts = opts.allowedHosts ?? (loopback ? LOOPBACK : undefined);
  const origins = opts.corsOrigins ?? [];
  const hostCheck = allowedHosts ? fromExpress(hostHeaderValidation(allowedHosts.map(hostName))) : undefined;
  const corsCheck: NodeMiddleware = cors({ ...CORS, origin: origins.includes('*') ? '*' : origins });

  const originAllowed = (origin: string | undefined): boolean => {
    if (!origin) return true;
    if (origins.includes('*') || origins.includes(origin)) return true;
    // Same-host pages of a loopback server (e.g. the MCP Inspector on localhost) are allowed.
    const h = originHost(origin);
    return loopback && !!h && LOOPBACK.includes(h) && opts.corsOrigins === undefined;
  };

  let auth: NodeMiddleware | undefined;
  if (opts.token) {
    const expected = Buffer.from(opts.token);
    auth = fromExpress(
      requireBearerAuth({
        verifier: {
          verifyAccessToken: async (token: string): Promise<AuthInfo> => {
            const got = Buffer.from(token);
            if (got.length !== expected.length || !timingSafeEqual(got, expected))
              throw new InvalidTokenError('a valid bearer token is required');
            // A static token does not expire; the SDK requires an expiry, so it is always an hour ahead.
            return { token, clientId: 'kubemcp-token', scopes: [], expiresAt: Math.floor(Date.now() / 1000) + 3600 };
          },
        },
      }),
    );
  }

  return {
    async check(req, res) {
      if (hostCheck && !(await runMiddleware(hostCheck, req, res))) return false;
      const origin = req.headers.origin;
      if (!originAllowed(origin)) {
        res.writeHead(403, { 'Content-Type': 'application/json' });
        res.end(
          JSON.stringify({
            jsonrpc: '2.0',
            error: { code: -32000, message: `Forbidden: origin ${origin} is not allowed` },
            id: null,
          }),
        );
        return false;
      }
      return runMiddleware(corsCheck, req, res);
    },
    async authorize(req, res) {
      return auth ? runMiddleware(auth, req, res) : true;
    },
  };
}
