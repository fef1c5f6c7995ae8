/**
 * What a user sees when a connection cannot even begin, with no PostgreSQL server involved:
 * passwords in a bad -d are not printed back, a server that never answers is a timeout
 * whatever the sslmode, and Ctrl-C while connecting is an interruption (exit 130).
 */
import {spawn} from 'node:child_process'
import {createServer, type Server, type Socket} from 'node:net'

import test from 'ava'

import {assertOneLineError, BIN, runRepl} from '../helpers/cli.js'

test('a bad percent-encoding in a URI password is reported without the password (exit 2)', async (t) => {
  const r = await runRepl(['status', '-d', 'postgresql://u:s3cret%2@127.0.0.1/db'], {cleanEnv: true})
  assertOneLineError(t, r, 2, 'repl: error: invalid percent-encoded token in the password of the URI')
  t.false(r.stderr.includes('s3cret'), r.stderr)
  const json = await runRepl(['status', '-d', 'host=127.0.0.1 password=s3cret zebra', '--json'], {cleanEnv: true})
  t.is(json.code, 2)
  t.false(json.stderr.includes('zebra') || json.stdout.includes('zebra'), json.stderr + json.stdout)
})

/** A TCP listener that accepts connections and never says anything, like a hung host. */
async function silentServer(): Promise<{port: number; close: () => void}> {
  const sockets: Socket[] = []
  const server: Server = createServer((s) => sockets.push(s))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as {port: number}).port,
    close: () => {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }
}

for (const sslmode of ['prefer', 'require', 'allow', 'disable']) {
  test(`a silent server is "timeout expired", exit 6, with sslmode=${sslmode}`, async (t) => {
    const silent = await silentServer()
    try {
      const started = Date.now()
      const env: Record<string, string> = {PGCONNECT_TIMEOUT: '3'}
      // prefer is the default: leave it unset, as a new user does.
      if (sslmode !== 'prefer') env.PGSSLMODE = sslmode
      const r = await runRepl(['status', '-h', '127.0.0.1', '-p', String(silent.port), '-U', 'x', '-d', 'postgres'], {cleanEnv: true, env})
      assertOneLineError(t, r, 6, `repl: error: connection to server at "127.0.0.1", port ${silent.port} failed: timeout expired`)
      t.true(Date.now() - started < 15_000)
    } finally {
      silent.close()
    }
  })
}

test('Ctrl-C while repl status connects exits 130 (interrupted)', async (t) => {
  const silent = await silentServer()
  try {
    for (const sslmode of ['prefer', 'disable']) {
      const child = spawn(process.execPath, [BIN, 'status', '-h', '127.0.0.1', '-p', String(silent.port), '-U', 'x', '-d', 'postgres'], {
        env: {PATH: process.env.PATH, HOME: process.env.HOME, PGSSLMODE: sslmode, PGCONNECT_TIMEOUT: '60'},
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
      // Long enough for the CLI to start and the connection attempt to be under way.
      await new Promise((r) => setTimeout(r, 2500))
      child.kill('SIGINT')
      t.is(await exited, 130, `sslmode=${sslmode}: ${stderr}`)
      t.regex(stderr.split('\n')[0]!, /^repl: error: .*[Ii]nterrupted/, stderr)
    }
  } finally {
    silent.close()
  }
})
