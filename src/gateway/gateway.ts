/**
 * `sessionctl gateway`: the authenticating reverse proxy in front of session containers. Wires the
 * routing table (kept current by notifications), admission, forwarding, WebSocket tunnels, activity
 * batching and wake-on-request into one HTTP(S) server. Stateless: every fact is in PostgreSQL, so
 * any number of gateways can run side by side.
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/gateway';
import { ActivityBatcher } from './activity';
import { admit } from './admission';
import { answers, sendAnswer } from './answers';
import { tokenCookie } from './auth';
import { upstreamRequestHeaders } from './headers';
import type { GatewayMetrics } from './metrics';
import { forward, hasBody } from './proxy';
import { RouteSource } from './route-source';
import { RouteTable } from './routes';
import { parseTarget } from './target';
import { Upstreams } from './upstreams';
import { Waker } from './wake';
import { rejectUpgrade, tunnel } from './websocket';

/**
 * How long after a wake an unreachable session is retried, and how often: a refused connection on
 * the host costs microseconds, and every step of the retry adds up to its length to the wake.
 */
const WAKE_SETTLE_MS = 10_000;
const WAKE_RETRY_MS = 10;

/** Answers to requests Node's parser refused: a slow or oversized head. */
const CLIENT_ERRORS: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
};

export interface GatewayOptions {
  config: GatewayConfig;
  pool: Pool;
  connectionString: string;
  logger: Logger;
  metrics: GatewayMetrics;
}

export class Gateway {
  readonly table = new RouteTable();
  private readonly server: http.Server;
  private readonly source: RouteSource;
  private readonly activity: ActivityBatcher;
  private readonly waker: Waker;
  private readonly upstreams: Upstreams;
  private readonly proto: 'http' | 'https';
  /** Upgraded sockets: Node's server no longer tracks them, so stop() closes them itself. */
  private readonly upgraded = new Set<Duplex>();

  constructor(private readonly options: GatewayOptions) {
    const { config, pool, logger, metrics } = options;
    this.proto = config.tls ? 'https' : 'http';
    this.upstreams = new Upstreams({
      connections: config.upstreamConnections,
      keepAliveMs: config.upstreamKeepAliveMs,
      idleTimeoutMs: config.idleTimeoutMs,
    });
    this.activity = new ActivityBatcher({
      db: pool,
      logger,
      flushMs: config.activityFlushMs,
      intervalMs: config.activityIntervalMs,
      onFlush: (written, error) => {
        metrics.activityFlushes.inc({ result: error ? 'error' : 'ok' });
        metrics.activitySessions.inc(written);
      },
    });
    this.waker = new Waker({
      db: pool,
      table: this.table,
      logger,
      timeoutMs: config.wakeTimeoutMs,
      onWoken: (result, seconds) => {
        metrics.wakes.inc({ result });
        metrics.wakeDuration.observe(seconds);
      },
    });
    this.source = new RouteSource({
      db: pool,
      connectionString: options.connectionString,
      table: this.table,
      logger,
      onLoaded: () => this.afterLoad(),
      onLoadFailed: () => metrics.routeLoads.inc({ result: 'error' }),
    });
    this.server = this.createServer();
    metrics.setReadyProbe(() => this.ready());
    // A deleted session's activity bookkeeping goes with it, so the maps stay as small as the table.
    this.table.on('changed', (name: string) => {
      if (!this.table.get(name)) this.activity.forget(name);
    });
  }

  private createServer(): http.Server {
    const { config } = this.options;
    const serverOptions: http.ServerOptions = {
      maxHeaderSize: config.maxHeaderBytes,
      headersTimeout: config.headersTimeoutMs,
      // Bodies stream for as long as they flow; the idle limit below ends stalled ones.
      requestTimeout: 0,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      // How often Node looks for connections past headersTimeout: often enough that a slowloris goes soon after its limit.
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(config.headersTimeoutMs / 2))),
      noDelay: true,
    };
    const handler = (request: IncomingMessage, response: ServerResponse) => this.handle(request, response);
    const server = config.tls
      ? https.createServer(
          { ...serverOptions, cert: readFileSync(config.tls.certPath), key: readFileSync(config.tls.keyPath) },
          handler,
        )
      : http.createServer(serverOptions, handler);
    server.timeout = config.idleTimeoutMs;
    server.on(
      'upgrade',
      (request: IncomingMessage, socket: Duplex, head: Buffer) => void this.upgrade(request, socket, head),
    );
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable) return socket.destroy();
      const status = CLIENT_ERRORS[error.code ?? ''] ?? '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    });
    return server;
  }

  async start(): Promise<AddressInfo> {
    this.source.start();
    this.activity.start();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.config.port, this.options.config.host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  /** The first full load of the routing table is done and notifications are flowing. */
  ready(): boolean {
    return this.source.loaded && this.source.connected;
  }

  async stop(): Promise<void> {
    // In-flight requests get a moment to finish; WebSockets and stragglers are then cut.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const grace = setTimeout(() => {
      this.server.closeAllConnections();
      for (const socket of this.upgraded) socket.destroy();
    }, 2_000);
    await closed;
    clearTimeout(grace);
    await this.source.stop();
    await this.activity.stop();
    await this.upstreams.close();
  }

  private afterLoad(): void {
    const { metrics } = this.options;
    const ready = this.table.readyCount();
    metrics.routeLoads.inc({ result: 'ok' });
    metrics.routes.set({ ready: 'true' }, ready);
    metrics.routes.set({ ready: 'false' }, this.table.size - ready);
    this.upstreams.retain(this.table.origins());
  }

  /**
   * `retryUntil`: a just-woken session is Ready once its container runs, which can be a moment before
   * its server listens; a bodiless request that finds nobody there is tried again until then.
   */
  private handle(request: IncomingMessage, response: ServerResponse, retryUntil = 0): void {
    const started = performance.now();
    const { config, metrics } = this.options;
    const url = request.url ?? '/';
    const target = parseTarget(url, request.headers.host, config.domain);
    if (!target) return this.own(request, response, url, started);
    const admission = admit(request, target, this.table, metrics);
    switch (admission.kind) {
      case 'answer':
        sendAnswer(request, response, admission.answer);
        return metrics.request(admission.answer.status, (performance.now() - started) / 1000);
      case 'exchange':
        response.writeHead(request.method === 'GET' || request.method === 'HEAD' ? 302 : 307, {
          location: admission.location,
          'set-cookie': tokenCookie(admission.token, admission.cookiePath, this.proto === 'https'),
          'cache-control': 'no-store',
          'content-length': 0,
        });
        response.end();
        return metrics.request(302, (performance.now() - started) / 1000);
      case 'wake':
        return void this.wakeThen(request, response, admission.route.name, started);
      case 'forward': {
        const { route, resolved, token } = admission;
        this.activity.mark(route.name);
        const headers = upstreamRequestHeaders(request.rawHeaders, {
          remoteAddress: request.socket.remoteAddress ?? '',
          proto: this.proto,
          token,
          tokenHeader: route.tokenHeader,
          trustForwarded: config.trustForwarded,
        });
        forward(request, response, {
          pool: this.upstreams.get(resolved.upstream.origin),
          path: resolved.path,
          headers,
          retry:
            retryUntil > Date.now() && !hasBody(request)
              ? () => setTimeout(() => this.handle(request, response, retryUntil), WAKE_RETRY_MS)
              : undefined,
          onDone: (status, error) => {
            metrics.request(status, (performance.now() - started) / 1000);
            if (error && status >= 500)
              metrics.upstreamErrors.inc({ reason: status === 504 ? 'timeout' : 'unreachable' });
          },
        });
      }
    }
  }

  /** Paths outside /s/: the gateway's own probes, else 404. */
  private own(request: IncomingMessage, response: ServerResponse, url: string, started: number): void {
    const path = url.split('?')[0];
    if (path === '/healthz' || path === '/readyz') {
      const ok = path === '/healthz' || this.ready();
      response
        .writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' })
        .end(ok ? 'ok\n' : 'routing table not loaded yet\n');
      return;
    }
    sendAnswer(request, response, answers.notFound(undefined));
    this.options.metrics.request(404, (performance.now() - started) / 1000);
  }

  /** Browsers get the progress page at once; other clients wait for the session, up to the timeout. */
  private async wakeThen(
    request: IncomingMessage,
    response: ServerResponse,
    session: string,
    started: number,
  ): Promise<void> {
    const waiting = this.waker.wake(session);
    const html = (request.headers.accept ?? '').includes('text/html');
    if (html && !this.table.get(session)?.ready) {
      sendAnswer(request, response, answers.waking(session));
      return this.options.metrics.request(503, (performance.now() - started) / 1000);
    }
    const result = await waiting;
    if (response.destroyed) return;
    if (result === 'ready') return this.handle(request, response, Date.now() + WAKE_SETTLE_MS);
    sendAnswer(request, response, result === 'gone' ? answers.notFound(session) : answers.wakeTimeout(session));
    this.options.metrics.request(result === 'gone' ? 404 : 503, (performance.now() - started) / 1000);
  }

  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const { config, metrics } = this.options;
    socket.on('error', () => socket.destroy());
    this.upgraded.add(socket);
    socket.once('close', () => this.upgraded.delete(socket));
    const target = parseTarget(request.url ?? '/', request.headers.host, config.domain);
    if (!target) return rejectUpgrade(socket, 404, 'Not Found', {}, 'sessions are reached at /s/<session>/\n');
    // A WebSocket cannot follow a redirect: a query token is accepted as it is (and never forwarded).
    let admission = admit(request, target, this.table, metrics, false);
    if (admission.kind === 'wake') {
      const result = await this.waker.wake(admission.route.name);
      admission =
        result === 'ready'
          ? admit(request, target, this.table, metrics, false)
          : {
              kind: 'answer',
              answer: result === 'gone' ? answers.notFound(target.session) : answers.wakeTimeout(target.session),
            };
    }
    if (admission.kind !== 'forward') {
      const answer = admission.kind === 'answer' ? admission.answer : answers.unauthorized(target.session);
      metrics.request(answer.status, 0);
      return rejectUpgrade(socket, answer.status, answer.title, answer.headers, `${answer.detail}\n`);
    }
    this.tunnel(request, socket, head, admission);
  }

  private tunnel(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    admission: Extract<ReturnType<typeof admit>, { kind: 'forward' }>,
  ): void {
    const { config, metrics } = this.options;
    const { route, resolved, token } = admission;
    const session = route.name;
    this.activity.mark(session);
    tunnel(request, socket, head, {
      pool: this.upstreams.get(resolved.upstream.origin),
      path: resolved.path,
      headers: upstreamRequestHeaders(request.rawHeaders, {
        remoteAddress: request.socket.remoteAddress ?? '',
        proto: this.proto,
        token,
        tokenHeader: route.tokenHeader,
        trustForwarded: config.trustForwarded,
      }),
      idleTimeoutMs: config.idleTimeoutMs,
      onData: () => this.activity.mark(session),
      onOpen: () => {
        metrics.request(101, 0);
        metrics.websocketsOpen.inc();
      },
      onClose: () => metrics.websocketsOpen.dec(),
      onFailed: () => {
        metrics.request(502, 0);
        metrics.upstreamErrors.inc({ reason: 'upgrade' });
      },
    });
  }
}
