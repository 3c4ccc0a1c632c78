/**
 * The deployment units, checked with the tools that consume them: docker-compose (Debian's 1.29.2)
 * parses compose.yaml, systemd-analyze verifies the unit, promtool reads the compose scrape config,
 * and make-certs.sh produces certificates that openssl and a real mutual-TLS handshake accept.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { testWithCommand } from '../helpers/tools';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const DEPLOY = path.join(ROOT, 'deploy');
const COMPOSE_ENV = {
  POSTGRES_PASSWORD: 'compose-test-password',
  SESSIONCTL_CONTROLLER_DB_PASSWORD: 'controller-test-password',
  SESSIONCTL_WRITER_DB_PASSWORD: 'writer-test-password',
  GRAFANA_ADMIN_PASSWORD: 'grafana-test-password',
  SESSIONCTL_DOCKER_HOST: 'tcp://docker1.example.org:2376',
};

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sessionctl-deploy-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('deploy/compose.yaml', () => {
  interface ComposeService {
    image?: string;
    build?: { context: string; dockerfile: string };
    volumes?: string[];
    ports?: string[];
    environment?: Record<string, string>;
    read_only?: boolean;
    cap_drop?: string[];
  }
  let config: { services: Record<string, ComposeService> };

  beforeAll(async () => {
    const { stdout } = await run('docker-compose', ['-f', path.join(DEPLOY, 'compose.yaml'), 'config'], {
      env: { ...process.env, ...COMPOSE_ENV },
    });
    config = parse(stdout) as typeof config;
  });

  test('docker-compose config accepts it: controller, gateway, migrate, Postgres, Prometheus and Grafana', () => {
    expect(Object.keys(config.services).sort()).toEqual([
      'controller',
      'gateway',
      'grafana',
      'migrate',
      'postgres',
      'prometheus',
    ]);
    const controller = config.services.controller;
    expect(controller.build).toEqual({ context: ROOT, dockerfile: 'deploy/Dockerfile' });
    expect(controller.environment).toMatchObject({
      DOCKER_TLS_VERIFY: '1',
      DOCKER_HOST: COMPOSE_ENV.SESSIONCTL_DOCKER_HOST,
      DOCKER_CERT_PATH: '/etc/sessionctl/docker-tls',
    });
    expect(controller.read_only).toBe(true);
    expect(controller.cap_drop).toEqual(['ALL']);
    // The controller is not the database owner: only the one-shot migrate service is.
    expect(controller.environment?.DATABASE_URL).toMatch(
      /^postgres:\/\/sessionctl_controller_login:controller-test-password@/,
    );
    expect(config.services.migrate.environment?.DATABASE_URL).toMatch(/^postgres:\/\/sessionctl:/);
  });

  test('client certificates are mounted read-only, the docker socket never, ports only on 127.0.0.1', () => {
    const controllerVolumes = config.services.controller.volumes ?? [];
    expect(controllerVolumes).toContain(
      `${path.join(DEPLOY, 'docker-tls', 'out', 'client')}:/etc/sessionctl/docker-tls:ro`,
    );
    for (const [name, service] of Object.entries(config.services)) {
      for (const volume of service.volumes ?? [])
        expect({ name, volume, socket: /docker\.sock|\/var\/run\/docker|\/run\/docker/.test(volume) }).toEqual({
          name,
          volume,
          socket: false,
        });
      for (const port of service.ports ?? []) expect(port).toMatch(/^127\.0\.0\.1:/);
    }
    // Every file or folder compose mounts from the repository exists.
    for (const service of Object.values(config.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0];
        if (source.startsWith(DEPLOY) && !source.includes(`${path.sep}out${path.sep}`))
          expect(existsSync(source)).toBe(true);
      }
    }
  });

  test('without its secrets compose refuses to start and names the variable', async () => {
    const env = { ...process.env, ...COMPOSE_ENV } as NodeJS.ProcessEnv;
    delete env.POSTGRES_PASSWORD;
    const failure = await run('docker-compose', ['-f', path.join(DEPLOY, 'compose.yaml'), 'config'], { env }).then(
      () => undefined,
      (error: { stderr: string }) => error,
    );
    expect(failure?.stderr).toMatch(/set POSTGRES_PASSWORD/);
  });

  test('the Prometheus config compose mounts is valid, and the Dockerfile copies only what exists', async () => {
    const { stdout } = await run('promtool', [
      'check',
      'config',
      '--syntax-only',
      path.join(DEPLOY, 'prometheus', 'prometheus-compose.yml'),
    ]);
    expect(stdout).toMatch(/SUCCESS/);
    const dockerfile = readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM node:20\S* AS build$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/SESSIONCTL_METRICS_ADDR=127\.0\.0\.1:9464/);
    for (const [, sources] of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const source of sources.split(/\s+/))
        expect({ source, exists: existsSync(path.join(ROOT, source)) }).toEqual({ source, exists: true });
    }
  });
});

describe('deploy/systemd/sessionctl.service', () => {
  const unit = path.join(DEPLOY, 'systemd', 'sessionctl.service');

  test('is hardened', () => {
    const text = readFileSync(unit, 'utf8');
    for (const line of [
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'CapabilityBoundingSet=',
      'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
      'SystemCallFilter=@system-service',
      'LoadCredential=key.pem:/etc/sessionctl/docker-tls/key.pem',
      'Environment=DOCKER_CERT_PATH=%d',
    ]) {
      expect(text.split('\n').some((entry) => entry.startsWith(line))).toBe(true);
    }
  });

  testWithCommand('systemd-analyze', 'part of systemd', 'systemd-analyze verify accepts it', async () => {
    const result = await run('systemd-analyze', ['verify', unit]).then(
      ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({
        code: error.code,
        output: error.stdout + error.stderr,
      }),
    );
    expect(result.output.trim()).toBe('');
    expect(result.code).toBe(0);
  });
});

describe('deploy/systemd/sessionctl-gateway.service', () => {
  const unit = path.join(DEPLOY, 'systemd', 'sessionctl-gateway.service');

  test('is hardened and runs the gateway', () => {
    const text = readFileSync(unit, 'utf8');
    for (const line of [
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'CapabilityBoundingSet=',
      'SystemCallFilter=@system-service',
      'ExecStart=/usr/bin/node /opt/sessionctl/bin/sessionctl.js gateway',
    ]) {
      expect(text.split('\n').some((entry) => entry.startsWith(line))).toBe(true);
    }
  });

  testWithCommand('systemd-analyze', 'part of systemd', 'systemd-analyze verify accepts it', async () => {
    const result = await run('systemd-analyze', ['verify', unit]).then(
      ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({
        code: error.code,
        output: error.stdout + error.stderr,
      }),
    );
    expect(result.output.trim()).toBe('');
    expect(result.code).toBe(0);
  });
});

describe('deploy/docker-tls/make-certs.sh', () => {
  const script = path.join(DEPLOY, 'docker-tls', 'make-certs.sh');
  const openssl = async (...args: string[]) => (await run('openssl', args)).stdout;
  const mode = (file: string) => statSync(file).mode & 0o777;

  test('writes a CA, a server certificate with DNS and IP SANs and a client certificate, keys 0400 and certificates 0444', async () => {
    const out = path.join(tmp, 'tls');
    await run('bash', [script, out, '--host', 'docker1.example.org', '--host', 'localhost', '--ip', '127.0.0.1']);
    const files = {
      ca: ['ca.pem', 'ca-key.pem'],
      server: ['ca.pem', 'server-cert.pem', 'server-key.pem'],
      client: ['ca.pem', 'cert.pem', 'key.pem'],
    };
    for (const [folder, names] of Object.entries(files)) {
      for (const name of names)
        expect({ file: `${folder}/${name}`, mode: mode(path.join(out, folder, name)).toString(8) }).toEqual({
          file: `${folder}/${name}`,
          mode: name.includes('key') ? '400' : '444',
        });
    }
    const san = await openssl(
      'x509',
      '-in',
      path.join(out, 'server', 'server-cert.pem'),
      '-noout',
      '-ext',
      'subjectAltName',
    );
    expect(san).toMatch(/DNS:docker1\.example\.org, DNS:localhost, IP Address:127\.0\.0\.1/);
    expect(
      await openssl('x509', '-in', path.join(out, 'server', 'server-cert.pem'), '-noout', '-ext', 'extendedKeyUsage'),
    ).toMatch(/TLS Web Server Authentication/);
    expect(
      await openssl('x509', '-in', path.join(out, 'client', 'cert.pem'), '-noout', '-ext', 'extendedKeyUsage'),
    ).toMatch(/TLS Web Client Authentication/);
    expect(
      await openssl(
        'verify',
        '-CAfile',
        path.join(out, 'ca', 'ca.pem'),
        path.join(out, 'server', 'server-cert.pem'),
        path.join(out, 'client', 'cert.pem'),
      ),
    ).toMatch(/server-cert.pem: OK[\s\S]*cert.pem: OK/);

    // A real mutual-TLS handshake on 127.0.0.1, as dockerd and the controller would do it.
    const read = (folder: string, name: string) => readFileSync(path.join(out, folder, name));
    const server = tls.createServer(
      {
        key: read('server', 'server-key.pem'),
        cert: read('server', 'server-cert.pem'),
        ca: read('server', 'ca.pem'),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => socket.end(`hello ${socket.getPeerCertificate().subject.CN}`),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const greeting = await new Promise<string>((resolve, reject) => {
        const socket = tls.connect(
          {
            host: '127.0.0.1',
            port,
            ca: read('client', 'ca.pem'),
            cert: read('client', 'cert.pem'),
            key: read('client', 'key.pem'),
          },
          () => undefined,
        );
        let text = '';
        socket.on('data', (chunk) => (text += chunk.toString()));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect(greeting).toBe('hello sessionctl-controller');
      // Without a client certificate the server refuses the connection.
      const refused = await new Promise<string>((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port, ca: read('client', 'ca.pem') });
        socket.on('data', () => resolve('accepted'));
        socket.on('error', (error) => resolve(error.message));
        socket.on('end', () => resolve('closed'));
      });
      expect(refused).not.toBe('accepted');
    } finally {
      server.close();
    }

    // Rotation: refuses to overwrite; --reuse-ca signs new leaves with the same CA.
    await expect(run('bash', [script, out, '--host', 'docker1.example.org'])).rejects.toMatchObject({
      stderr: expect.stringMatching(/refusing to overwrite/),
    });
    const serialBefore = await openssl('x509', '-in', path.join(out, 'client', 'cert.pem'), '-noout', '-serial');
    const caBefore = readFileSync(path.join(out, 'ca', 'ca.pem'), 'utf8');
    await run('bash', [script, out, '--host', 'docker1.example.org', '--ip', '127.0.0.1', '--reuse-ca']);
    expect(await openssl('x509', '-in', path.join(out, 'client', 'cert.pem'), '-noout', '-serial')).not.toBe(
      serialBefore,
    );
    expect(readFileSync(path.join(out, 'ca', 'ca.pem'), 'utf8')).toBe(caBefore);
    expect(
      await openssl('verify', '-CAfile', path.join(out, 'ca', 'ca.pem'), path.join(out, 'client', 'cert.pem')),
    ).toMatch(/OK/);
    expect(mode(path.join(out, 'client', 'key.pem')).toString(8)).toBe('400');
  });

  test('daemon.json asks for verified TLS with the file names make-certs.sh writes', () => {
    const daemon = JSON.parse(readFileSync(path.join(DEPLOY, 'docker-tls', 'daemon.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(daemon).toMatchObject({ tls: true, tlsverify: true, icc: false, 'no-new-privileges': true });
    for (const key of ['tlscacert', 'tlscert', 'tlskey'] as const)
      expect(path.basename(String(daemon[key]))).toMatch(/^(ca|server-cert|server-key)\.pem$/);
    expect(
      (daemon.hosts as string[]).filter((host) => host.startsWith('tcp://')).every((host) => host.endsWith(':2376')),
    ).toBe(true);
  });
});
