/**
 * Slot names are checked before connecting, with the server's own rule and wording
 * (ReplicationSlotValidateName), by every command that takes one: a bad name is a usage error,
 * not a slot that "does not exist". Nothing listens on the port used: reaching the network
 * would fail differently.
 */
import test from 'ava'

import {assertOneLineError, runRepl} from '../helpers/cli.js'
import {freePort} from '../helpers/cluster.js'

const HINT = 'hint: Replication slot names may only contain lower case letters, numbers, and the underscore character.'
/** receivewal speaks as pg_receivewal; create-slot and drop-slot as repl. */
const lines = (command: string, message: string): string[] =>
  command === 'receivewal' ? [`pg_receivewal: error: ${message[0]!.toLowerCase()}${message.slice(1)}`, `pg_receivewal: ${HINT}`] : [`repl: error: ${message}`, HINT]

test('a slot name with invalid characters is refused before connecting, in PostgreSQL\'s words (exit 2)', async (t) => {
  const port = String(await freePort())
  const conn = ['-h', '127.0.0.1', '-p', port, '-U', 'x']
  const cases: string[][] = [
    ['receivewal', '-D', '/tmp', '-S', 'bad name', ...conn],
    ['receivewal', '-S', 'bad name', '--create-slot', ...conn],
    ['receivewal', '-S', 'bad name', '--drop-slot', ...conn],
    ['create-slot', 'bad name', ...conn],
    ['drop-slot', 'bad name', ...conn],
  ]
  for (const args of cases) {
    const r = await runRepl(args, {cleanEnv: true})
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    t.deepEqual(r.stderr.trim().split('\n'), lines(args[0]!, 'Replication slot name "bad name" contains invalid character'), args.join(' '))
  }
  const long = await runRepl(['receivewal', '-D', '/tmp', '-S', 'x'.repeat(64), ...conn], {cleanEnv: true})
  assertOneLineError(t, long, 2, `pg_receivewal: error: replication slot name "${'x'.repeat(64)}" is too long`)
})
