/**
 * Issue 13's deployment items, each checked where it can be: the hardening guidance in daemon.json
 * and the deploy README, compose's own database roles, the metrics ports on loopback by default in
 * every place that sets them, /health answering a burst from one probe, the TLS floor in a real
 * handshake, and the client-certificate expiry metric of a running controller.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config';
import { loadDockerHostConfig } from '../../src/config/docker-host';
import { loadGatewayConfig } from '../../src/config/gateway';
import { createDockerClient } from '../../src/docker/client';
import { freePort, startController, type ControllerProcess } from '../helpers/controller';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/wait';

const ROOT = path.resolve(__dirname, '..', '..');
const DEPLOY = path.join(ROOT, 'deploy');
const read = (file: string) => readFileSync(path.join(DEPLOY, file), 'utf8');

describe('the Docker host hardening guidance', () => {
  test('daemon.json sets icc off and no-new-privileges; the README covers those, userns-remap and the firewall', () => {
    expect(JSON.parse(read('docker-tls/daemon.json'))).toMatchObject({ icc: false, 'no-new-privileges': true });
    const readme = read('README.md');
    for (const topic of [
      /"icc": false/,
      /"no-new-privileges": true/,
      /"userns-remap": "default"/,
      /Firewall the TLS port/,
    ])
      expect(readme).toMatch(topic);
    // The firewall example names the TLS port it protects.
    expect(readme).toMatch(/tcp dport 2376/);
  });
});

describe('compose database roles', () => {
  test('the controller and writers log in as their own users, each in one group; migrate is the owner', () => {
    const roles = read('postgres/init-roles.sh');
    expect(roles).toMatch(
      /CREATE ROLE sessionctl_controller_login LOGIN PASSWORD :'controller_password' IN ROLE sessionctl_controller;/,
    );
    expect(roles).toMatch(
      /CREATE ROLE sessionctl_writer_login LOGIN PASSWORD :'writer_password' IN ROLE sessionctl_writer;/,
    );
    const services = (
      parse(read('compose.yaml')) as { services: Record<string, { environment?: Record<string, string> }> }
    ).services;
    const user = (service: string) =>
      /^postgres:\/\/([^:]+):/.exec(services[service].environment?.DATABASE_URL ?? '')?.[1];
    expect(user('migrate')).toBe('sessionctl');
    expect(user('controller')).toBe('sessionctl_controller_login');
    // The writer's password reaches the database's first start, which creates sessionctl_writer_login.
    expect(services.postgres.environment?.SESSIONCTL_WRITER_DB_PASSWORD).toMatch(/SESSIONCTL_WRITER_DB_PASSWORD/);
  });
});

describe('metrics ports bind loopback by default', () => {
  test('in the controller and gateway configuration, the image, and the systemd units', () => {
    expect(loadConfig({}, '/srv').metricsHost).toBe('127.0.0.1');
    expect(loadGatewayConfig({ DATABASE_URL: 'postgres://x@127.0.0.1/x' }, '/srv').metricsHost).toBe('127.0.0.1');
    expect(read('Dockerfile')).toMatch(/SESSIONCTL_METRICS_ADDR=127\.0\.0\.1:9464/);
    for (const unit of ['systemd/sessionctl.service', 'systemd/sessionctl-gateway.service'])
      expect(read(unit)).not.toMatch(/METRICS_ADDR=(?!127\.0\.0\.1)/);
  });
});

describe('the TLS floor, in a real handshake with the dev certificates', () => {
  let server: https.Server;
  let port: number;
  const host = loadDockerHostConfig(process.env);

  beforeAll(async () => {
    port = await freePort();
    const certs = path.dirname(host.tls!.caPath);
    // A "daemon" that speaks TLS 1.2 at most, with the dev daemon's own certificate.
    server = https.createServer(
      {
        cert: readFileSync(path.join(certs, 'server-cert.pem')),
        key: readFileSync(path.join(certs, 'server-key.pem')),
        ca: readFileSync(host.tls!.caPath),
        requestCert: true,
        maxVersion: 'TLSv1.2',
      },
      (_request, response) => response.writeHead(200, { 'Content-Type': 'text/plain' }).end('OK'),
    );
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('TLS 1.2 by default connects; SESSIONCTL_DOCKER_TLS_MIN_VERSION=TLSv1.3 refuses a 1.2-only daemon', async () => {
    const at = { ...host, host: '127.0.0.1', port, url: `tcp://127.0.0.1:${port}` };
    expect(loadDockerHostConfig({ ...process.env }).tlsMinVersion).toBe('TLSv1.2');
    expect(String(await createDockerClient({ ...at, tlsMinVersion: 'TLSv1.2' }).ping())).toBe('OK');
    await expect(createDockerClient({ ...at, tlsMinVersion: 'TLSv1.3' }).ping()).rejects.toThrow(
      /protocol version|PROTOCOL|alert/i,
    );
  });
});

describe('a running controller', () => {
  let db: TestDatabase;
  let controller: ControllerProcess;
  beforeAll(async () => {
    db = await createTestDatabase('isolation_deploy');
    controller = await startController({ databaseUrl: db.url });
  });
  afterAll(async () => {
    await controller?.stop();
    await db?.drop();
  });

  test('/health answers a burst of 50 from one probe at a time, and from a fresh one after a second', async () => {
    const probes = () => controller.metric('sessionctl_docker_requests_total', { operation: 'version' });
    const before = await probes();
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 50 }, async () => (await fetch(`${controller.metricsUrl}/health`)).status),
    );
    const elapsedMs = performance.now() - started;
    expect(answers.every((status) => status === 200)).toBe(true);
    // One probe per started second of the burst at most (a result is reused for 1 s, one probe runs at a time).
    expect((await probes()) - before).toBeLessThanOrEqual(1 + Math.ceil(elapsedMs / 1000));
    // And the result is not kept longer: asking again, a new probe runs.
    const after = await probes();
    await waitFor(
      async () => {
        await fetch(`${controller.metricsUrl}/health`);
        return (await probes()) > after;
      },
      { timeoutMs: 10_000, intervalMs: 200, what: 'a fresh /health probe' },
    );
  });

  test('exports when its client certificate expires', async () => {
    const cert = new X509Certificate(readFileSync(loadDockerHostConfig(process.env).tls!.certPath));
    expect(await controller.metric('sessionctl_docker_client_certificate_expiry_timestamp_seconds')).toBe(
      Date.parse(cert.validTo) / 1000,
    );
  });
});
