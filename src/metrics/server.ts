/**
 * The operator's HTTP endpoint: `/metrics` for Prometheus, `/healthz` (the process is alive) and
 * `/readyz` (the first full resync has been reconciled) for probes, and `/health`, a JSON report
 * of every dependency for people.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  ready(): boolean;
  /** The `/health` document; its `status` decides 200 (ok) or 503 (degraded). */
  health?(): Promise<{ status: string }>;
}

export class MetricsServer {
  private readonly server: http.Server;

  constructor(private readonly options: MetricsServerOptions) {
    this.server = http.createServer((request, response) => {
      void this.handle(request, response);
    });
  }

  async start(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0];
    try {
      if (path === '/metrics') {
        const body = await this.options.registry.metrics();
        response.writeHead(200, { 'content-type': this.options.registry.contentType }).end(body);
      } else if (path === '/healthz') {
        response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const ready = this.options.ready();
        response
          .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
          .end(ready ? 'ok\n' : 'waiting for the first full resync\n');
      } else if (path === '/health' && this.options.health) {
        const report = await this.options.health();
        response
          .writeHead(report.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' })
          .end(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        response
          .writeHead(404, { 'content-type': 'text/plain' })
          .end('not found: try /metrics, /health, /healthz or /readyz\n');
      }
    } catch (error) {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`);
    }
  }
}
