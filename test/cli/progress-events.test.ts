/**
 * How each of core's progress events shows off a terminal, through the one renderer every
 * command uses: a line each in plain mode (with the tool's prefix on notes and warnings, and
 * -v's details only with verbose), lines alone when a command's progress display is off, and
 * nothing at all in silent mode (--json).
 */
import {Writable} from 'node:stream'

import test from 'ava'

import {lineOutput, progressRenderer, ProgressReporter, type ProgressOutput} from '../../src/cli/progress.js'
import type {ProgressEvent} from '../../src/core/events.js'

function capture(): {stream: NodeJS.WriteStream; lines: () => string[]} {
  let out = ''
  const stream = new Writable({write(chunk, _enc, done) {
    out += chunk.toString()
    done()
  }}) as unknown as NodeJS.WriteStream
  return {stream, lines: () => out.split('\n').slice(0, -1)}
}

function rendered(make: (stream: NodeJS.WriteStream) => ProgressOutput, events: ProgressEvent[], options: {prefix?: string; verbose?: boolean} = {}): string[] {
  const {stream, lines} = capture()
  const output = make(stream)
  const render = progressRenderer(output, options)
  for (const event of events) render(event)
  output.stop()
  return lines()
}

const plain = (stream: NodeJS.WriteStream) => new ProgressReporter('plain', 5000, stream)
const prefix = 'repl basebackup: '

const every: ProgressEvent[] = [
  {type: 'phase', text: 'Waiting for a fast checkpoint on the server', detail: 'initiating base backup, waiting for checkpoint to complete'},
  {type: 'phase-done', text: 'Checkpoint completed', detail: 'write-ahead log start point: 0/2000028 on timeline 1'},
  {type: 'phase-done'},
  {type: 'note', text: 'removed data directory "/tmp/b"'},
  {type: 'note', text: 'base backup completed', verbose: true},
  {type: 'warning', text: '"/tmp/b" not removed at user\'s request (--no-clean)'},
  {type: 'bytes', done: 1024, total: 2048, label: 'base.tar'},
  {type: 'bytes', done: 1536, total: 2048, label: 'base.tar'},
  {type: 'bytes', done: 2048, total: 2048, label: 'base.tar', final: true},
  {type: 'live', text: 'Receiving WAL: 0/3000000 (timeline 1)'},
]

test('plain mode: a line per phase, note, warning and live line; bytes now and then and at the end; details only with verbose', (t) => {
  const quiet = rendered(plain, every, {prefix})
  t.deepEqual(quiet.slice(0, 4), [
    'Waiting for a fast checkpoint on the server',
    'Checkpoint completed',
    'repl basebackup: removed data directory "/tmp/b"',
    'repl basebackup: warning: "/tmp/b" not removed at user\'s request (--no-clean)',
  ])
  // The second count falls inside the 5 s between plain lines; the final one is always shown.
  t.is(quiet.length, 7)
  t.regex(quiet[4]!, /^1\.0 kB\/2\.0 kB \(50%\), [\d.]+ [kMG]?B\/s, base\.tar$/)
  t.regex(quiet[5]!, /^2\.0 kB\/2\.0 kB \(100%\), [\d.]+ [kMG]?B\/s, base\.tar$/)
  t.is(quiet[6], 'Receiving WAL: 0/3000000 (timeline 1)')

  const verbose = rendered(plain, every, {prefix, verbose: true})
  t.deepEqual(verbose.slice(0, 7), [
    'Waiting for a fast checkpoint on the server',
    'repl basebackup: initiating base backup, waiting for checkpoint to complete',
    'Checkpoint completed',
    'repl basebackup: write-ahead log start point: 0/2000028 on timeline 1',
    'repl basebackup: removed data directory "/tmp/b"',
    'repl basebackup: base backup completed',
    'repl basebackup: warning: "/tmp/b" not removed at user\'s request (--no-clean)',
  ])
})

test('without a prefix, notes and warnings are the text alone (cluster set-up, receivewal)', (t) => {
  t.deepEqual(rendered(plain, [{type: 'note', text: 'Using PostgreSQL 18.4'}, {type: 'warning', text: 'slot has no restart_lsn'}]), ['Using PostgreSQL 18.4', 'warning: slot has no restart_lsn'])
})

test('lines alone (basebackup without -P, receivewal off a terminal): no phases, bars or live lines; repeats all shown', (t) => {
  const lines = rendered((stream) => lineOutput(stream), [...every, {type: 'note', text: 'lost; reconnecting in 30 s'}, {type: 'note', text: 'lost; reconnecting in 30 s'}], {prefix, verbose: true})
  t.deepEqual(lines, [
    'repl basebackup: initiating base backup, waiting for checkpoint to complete',
    'repl basebackup: write-ahead log start point: 0/2000028 on timeline 1',
    'repl basebackup: removed data directory "/tmp/b"',
    'repl basebackup: base backup completed',
    'repl basebackup: warning: "/tmp/b" not removed at user\'s request (--no-clean)',
    'repl basebackup: lost; reconnecting in 30 s',
    'repl basebackup: lost; reconnecting in 30 s',
  ])
})

test('silent mode (--json) renders nothing, not even warnings or verbose notes', (t) => {
  t.deepEqual(rendered((stream) => new ProgressReporter('silent', 5000, stream), every, {prefix, verbose: true}), [])
})
