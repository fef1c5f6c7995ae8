import {spawn} from 'node:child_process'
import {writeFile, chmod} from 'node:fs/promises'
import {createServer, type Server, type Socket} from 'node:net'
import {join} from 'node:path'

import test from 'ava'

import {resolveConnection} from '../../src/core/conninfo/resolve.js'
import type {ReplError} from '../../src/core/errors.js'
import {connect} from '../../src/core/conninfo/connect.js'
import {resolveRunAsUser} from '../../src/core/server/os-user.js'
import {assertOneLineError, BIN, runRepl} from '../helpers/cli.js'
import {clusterPerMajor, freePort, pgVersions, testDir, type TestCluster} from '../helpers/cluster.js'
import {makeCertificates, type TestCertificates} from '../helpers/tls.js'

/**
 * Connections the way libpq users expect: every authentication method, .pgpass and PG*
 * variables, TLS modes, and clear one-line failures. Probed with `repl status`, which needs
 * only an ordinary connection, and `repl create-slot`/`drop-slot` for replication ones.
 */
const PASSWORD = 'Sw0rd fish:with\\specials'
let certs: TestCertificates
let workDir: string

/** Made once, before the first server starts: the servers serve these certificates. */
async function certificates(): Promise<TestCertificates> {
  if (!certs) {
    workDir = await testDir('conn')
    certs = await makeCertificates(workDir, await resolveRunAsUser('postgres'))
  }
  return certs
}

const clusters = clusterPerMajor(test, async () => {
  const {serverCert, serverKey} = await certificates()
  return {
    config: {ssl: 'on', ssl_cert_file: serverCert, ssl_key_file: serverKey},
    hba: [
      'host all u_scram 127.0.0.1/32 scram-sha-256',
      'host replication u_scram 127.0.0.1/32 scram-sha-256',
      'host all u_md5 127.0.0.1/32 md5',
      'host all u_pass 127.0.0.1/32 password',
      'host all u_trust 127.0.0.1/32 trust',
      'hostnossl all u_tlsonly 127.0.0.1/32 reject',
      'hostssl all u_tlsonly 127.0.0.1/32 scram-sha-256',
    ],
  }
}, async (c) => {
  const quoted = PASSWORD.replace(/'/g, "''")
  await c.sql(`
    SET password_encryption = 'scram-sha-256';
    CREATE ROLE u_scram LOGIN REPLICATION PASSWORD '${quoted}';
    CREATE ROLE u_pass LOGIN PASSWORD '${quoted}';
    CREATE ROLE u_tlsonly LOGIN PASSWORD '${quoted}';
    CREATE ROLE u_trust LOGIN;
    SET password_encryption = 'md5';
    CREATE ROLE u_md5 LOGIN PASSWORD '${quoted}';`)
})

/** `repl status` as `user`, with only the variables given (no PG* leaking from the test process). */
function status(c: TestCluster, user: string, env: NodeJS.ProcessEnv = {}, extraArgs: string[] = []) {
  return runRepl(['status', '-h', '127.0.0.1', '-p', String(c.port), '-U', user, '-d', 'postgres', '--json', ...extraArgs], {cleanEnv: true, env})
}

for (const version of pgVersions()) {
  test(`scram-sha-256, md5, password and trust each authenticate (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    for (const user of ['u_scram', 'u_md5', 'u_pass']) {
      const r = await status(c, user, {PGPASSWORD: PASSWORD})
      t.is(r.code, 0, `${user}: ${r.stderr}`)
      t.is(r.json().role, 'primary')
    }
    t.is((await status(c, 'u_trust')).code, 0)
  })

  test(`a replication connection authenticates with scram-sha-256 (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const env = {PGPASSWORD: PASSWORD}
    const args = ['-h', '127.0.0.1', '-p', String(c.port), '-U', 'u_scram']
    t.is((await runRepl(['create-slot', 'auth_probe', ...args], {cleanEnv: true, env})).code, 0)
    t.is((await runRepl(['drop-slot', 'auth_probe', ...args], {cleanEnv: true, env})).code, 0)
  })

  test(`.pgpass and PG* variables supply what flags do not (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const dir = await testDir('pgpass')
    const passfile = join(dir, 'pgpass')
    // Escaped ':' and '\' as libpq reads them; the first matching line wins.
    const escaped = PASSWORD.replace(/\\/g, '\\\\').replace(/:/g, '\\:')
    await writeFile(passfile, `# comment\n127.0.0.1:${c.port}:postgres:nobody:wrong\n127.0.0.1:${c.port}:*:u_scram:${escaped}\n*:*:*:*:wrong\n`, {mode: 0o600})
    const viaPgpass = await runRepl(['status', '--json'], {cleanEnv: true, env: {PGHOST: '127.0.0.1', PGPORT: String(c.port), PGUSER: 'u_scram', PGDATABASE: 'postgres', PGPASSFILE: passfile}})
    t.is(viaPgpass.code, 0, viaPgpass.stderr)

    const viaUri = await runRepl(['status', '--json', '-d', `postgresql://u_md5:${encodeURIComponent(PASSWORD)}@127.0.0.1:${c.port}/postgres?application_name=uri_probe`], {cleanEnv: true})
    t.is(viaUri.code, 0, viaUri.stderr)

    const viaConninfo = await runRepl(['status', '--json', '-d', `host=127.0.0.1 port=${c.port} user=u_pass dbname=postgres password='${PASSWORD.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`], {cleanEnv: true})
    t.is(viaConninfo.code, 0, viaConninfo.stderr)

    // libpq ignores a password file others can read, and says so.
    await chmod(passfile, 0o644)
    const loose = await runRepl(['status', '-w'], {cleanEnv: true, env: {PGHOST: '127.0.0.1', PGPORT: String(c.port), PGUSER: 'u_scram', PGDATABASE: 'postgres', PGPASSFILE: passfile}})
    t.is(loose.code, 3)
    t.regex(loose.stderr, /warning: password file ".*" has group or world access/)
    t.regex(loose.stderr, /password authentication required but no password supplied/)
  })

  test(`a wrong password is one line, exit 3, and never echoed (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    for (const user of ['u_scram', 'u_md5', 'u_pass']) {
      const r = await status(c, user, {PGPASSWORD: 'not-the-password-42'})
      assertOneLineError(t, r, 3, `repl: error: connection to server at "127.0.0.1", port ${c.port} failed: password authentication failed for user "${user}"`)
      t.notRegex(r.stdout + r.stderr, /not-the-password-42/)
      t.like(r.json().error, {code: 'AUTH_FAILED', sqlstate: '28P01'})
    }
  })

  test(`sslmode=require encrypts against a self-signed server, and hostssl-only roles need it (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const tls = await status(c, 'u_tlsonly', {PGPASSWORD: PASSWORD, PGSSLMODE: 'require'})
    t.is(tls.code, 0, tls.stderr)
    const plain = await status(c, 'u_tlsonly', {PGPASSWORD: PASSWORD, PGSSLMODE: 'disable'})
    t.is(plain.code, 3)
    t.regex(plain.stderr, /no encryption|rejects connection/)
    // prefer (the default) uses TLS when offered.
    t.is((await status(c, 'u_tlsonly', {PGPASSWORD: PASSWORD})).code, 0)
    // SCRAM over TLS binds the channel (SCRAM-SHA-256-PLUS) when asked to require it.
    const bound = await status(c, 'u_tlsonly', {PGPASSWORD: PASSWORD, PGSSLMODE: 'require', PGCHANNELBINDING: 'require'})
    t.is(bound.code, 0, bound.stderr)
  })

  test(`verify-full accepts the certificate's host name and refuses another (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const conninfo = (host: string) => `host=${host} hostaddr=127.0.0.1 port=${c.port} user=u_scram dbname=postgres sslmode=verify-full sslrootcert=${certs.caCert}`
    const good = await runRepl(['status', '--json', '-d', conninfo(certs.serverName)], {cleanEnv: true, env: {PGPASSWORD: PASSWORD}})
    t.is(good.code, 0, good.stderr)
    const wrong = await runRepl(['status', '-d', conninfo('localhost')], {cleanEnv: true, env: {PGPASSWORD: PASSWORD}})
    assertOneLineError(t, wrong, 3, /^repl: error: connection to server at "localhost" \(127\.0\.0\.1\), port \d+ failed: SSL error: server certificate for this host does not match host name "localhost"$/)
    const noRoot = await runRepl(['status', '-d', `${conninfo(certs.serverName)} sslrootcert=${join(workDir, 'missing.crt')}`], {cleanEnv: true, env: {PGPASSWORD: PASSWORD}})
    t.is(noRoot.code, 3)
    t.regex(noRoot.stderr, /root certificate file ".*missing\.crt" does not exist/)
  })
}

/** Run repl on a pseudo-terminal (util-linux `script`), typing `typed` after a moment. */
function onTerminal(args: string[], typed: string): Promise<{code: number | null; output: string}> {
  return new Promise((resolve) => {
    const command = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')
    const child = spawn('script', ['-qec', command, '/dev/null'], {stdio: ['pipe', 'pipe', 'pipe'], env: {PATH: process.env.PATH, HOME: '/nonexistent'}})
    let output = ''
    child.stdout.on('data', (d: Buffer) => {
      output += d
      if (output.includes('Password: ') && typed) {
        child.stdin.write(`${typed}\r`)
        typed = ''
      }
    })
    child.on('close', (code) => resolve({code, output}))
  })
}

test('on a terminal, -W and a server password request both prompt without echo', async (t) => {
  const c = clusters.get(pgVersions().at(-1)!)!
  const args = ['status', '-h', '127.0.0.1', '-p', String(c.port), '-U', 'u_scram', '-d', 'postgres', '--json']
  for (const extra of [['-W'], []]) {
    const r = await onTerminal([...args, ...extra], PASSWORD)
    t.is(r.code, 0, r.output)
    t.regex(r.output, /^Password: \r?\n\{"role":"primary"/)
    t.false(r.output.includes(PASSWORD), 'the password is not echoed')
  }
  const never = await onTerminal([...args, '-w'], PASSWORD)
  t.is(never.code, 3)
  t.notRegex(never.output, /Password: /)
})

test('a Unix socket directory connects, given as -h or PGHOST', async (t) => {
  const c = clusters.get(pgVersions()[0]!)!
  const viaFlag = await runRepl(['status', '-h', c.socketDir, '-p', String(c.port), '-U', 'postgres', '-d', 'postgres', '--json'], {cleanEnv: true})
  t.is(viaFlag.code, 0, viaFlag.stderr)
  const viaEnv = await runRepl(['status', '--json'], {cleanEnv: true, env: {PGHOST: c.socketDir, PGPORT: String(c.port), PGUSER: 'postgres', PGDATABASE: 'postgres'}})
  t.is(viaEnv.code, 0, viaEnv.stderr)
  const missing = await runRepl(['status', '-h', '/nonexistent', '-p', '5432', '-U', 'postgres'], {cleanEnv: true})
  assertOneLineError(t, missing, 3, 'repl: error: connection to server on socket "/nonexistent/.s.PGSQL.5432" failed: No such file or directory')
})

test('a server that never answers fails within connect_timeout with a clear error', async (t) => {
  // Accepts TCP connections and then says nothing, like a hung host behind a load balancer.
  const sockets: Socket[] = []
  const silent: Server = createServer((s) => sockets.push(s))
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  const port = (silent.address() as {port: number}).port
  const conninfo = `host=127.0.0.1 port=${port} user=x dbname=postgres connect_timeout=2 sslmode=disable`
  try {
    // The timing, measured in-process so CLI start-up on a busy machine does not blur it.
    const started = Date.now()
    const error = await t.throwsAsync(connect(await resolveConnection({dbname: conninfo}, {})))
    const waited = Date.now() - started
    t.is((error as ReplError).code, 'TIMEOUT')
    t.true(waited >= 1900 && waited < 4000, `waited ${waited} ms`)
    // And what a user sees.
    const r = await runRepl(['status', '-d', conninfo], {cleanEnv: true})
    assertOneLineError(t, r, 6, `repl: error: connection to server at "127.0.0.1", port ${port} failed: timeout expired`)
  } finally {
    for (const s of sockets) s.destroy()
    silent.close()
  }
})

test('an unreachable address fails within PGCONNECT_TIMEOUT', async (t) => {
  const started = Date.now()
  // TEST-NET-1 (RFC 5737): never routed. Depending on the network it is refused or unreachable
  // at once, or silent until the timeout; all must end promptly with one line.
  const r = await runRepl(['status', '-h', '192.0.2.1', '-p', '5432', '-U', 'x'], {cleanEnv: true, env: {PGCONNECT_TIMEOUT: '2'}})
  t.true(r.code === 3 || r.code === 6, r.stderr)
  t.regex(r.stderr.split('\n')[0]!, /^repl: error: connection to server at "192\.0\.2\.1", port 5432 failed: (timeout expired|No route to host|Network is unreachable|Connection refused)$/)
  t.true(Date.now() - started < 30_000)
})

test('a refused port names the address and suggests why', async (t) => {
  const port = await freePort()
  const r = await runRepl(['status', '-h', '127.0.0.1', '-p', String(port)], {cleanEnv: true})
  t.is(r.code, 3)
  t.regex(r.stderr, /Connection refused\nhint: Is the server running on that host and accepting TCP\/IP connections\?/)
})
