/**
 * A phase shown on a terminal says how long it has been running, so a wait of minutes (a
 * spread checkpoint on a busy server) does not look like a hang; a live line that changes on
 * every update does not get a counter.
 */
import {Writable} from 'node:stream'

import test from 'ava'

import {ProgressReporter} from '../../src/cli/progress.js'

function terminal(): {stream: NodeJS.WriteStream; text: () => string} {
  let out = ''
  const stream = new Writable({write(chunk, _enc, done) {
    out += chunk.toString()
    done()
  }}) as unknown as NodeJS.WriteStream
  Object.assign(stream, {isTTY: true, columns: 120, rows: 40, cursorTo: () => true, clearLine: () => true, moveCursor: () => true})
  return {stream, text: () => out}
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Waits until the output matches: timers run late on a loaded CI machine, so a fixed sleep is not enough. */
async function eventually(text: () => string, pattern: RegExp, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms
  while (!pattern.test(text()) && Date.now() < deadline) await sleep(100)
  return text()
}

test.serial('a running phase shows its elapsed time on a terminal, and starts again with a new phase', async (t) => {
  const {stream, text} = terminal()
  const p = new ProgressReporter('tty', 5000, stream)
  p.phase('Waiting for a spread checkpoint on the server')
  t.regex(await eventually(text, /Waiting for a spread checkpoint on the server \(2s\)/), /Waiting for a spread checkpoint on the server \(2s\)/)
  p.phase('Streaming WAL')
  await sleep(1200)
  t.notRegex(text(), /Streaming WAL \(\d/)
  p.stop()
})

test.serial('a live line (receivewal) gets no elapsed time', async (t) => {
  const {stream, text} = terminal()
  const p = new ProgressReporter('tty', 5000, stream)
  p.phase('Receiving WAL: 0/3000000', {live: true})
  await sleep(2300)
  p.stop()
  t.regex(text(), /Receiving WAL: 0\/3000000/)
  t.notRegex(text(), /Receiving WAL: 0\/3000000 \(\d/)
})
