import test from 'ava'

import {parseCompressOption} from '../../src/core/compress/index.js'
import {parseWalCompression} from '../../src/core/walstream/segment-compression.js'

// PostgreSQL 15's own cases (pg_basebackup/t/010_pg_basebackup.pl and 020_pg_receivewal.pl),
// with the message PostgreSQL gives for each.
const refused: Array<[string, string]> = [
  ['extrasquishy', 'Unrecognized compression algorithm: "extrasquishy"'],
  ['none+', 'Unrecognized compression algorithm: "none+"'],
  ['GZIP', 'Unrecognized compression algorithm: "GZIP"'],
  ['none:1', 'Invalid compression specification: compression algorithm "none" does not accept a compression level'],
  ['gzip:', 'Invalid compression specification: found empty string where a compression option was expected'],
  ['gzip:thunk', 'Invalid compression specification: unrecognized compression option: "thunk"'],
  ['gzip:level', 'Invalid compression specification: compression option "level" requires a value'],
  ['gzip:level=', 'Invalid compression specification: value for compression option "level" must be an integer'],
  ['gzip:level=high', 'Invalid compression specification: value for compression option "level" must be an integer'],
  ['gzip:level=236', 'Invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9 (default at -1)'],
  ['gzip:level=9,', 'Invalid compression specification: found empty string where a compression option was expected'],
  ['gzip:,level=9', 'Invalid compression specification: found empty string where a compression option was expected'],
  ['gzip:workers=3', 'Invalid compression specification: compression algorithm "gzip" does not accept a worker count'],
  ['lz4:13', 'Invalid compression specification: compression algorithm "lz4" expects a compression level between 1 and 12 (default at 0)'],
  ['zstd:level=23', 'Invalid compression specification: compression algorithm "zstd" expects a compression level between -131072 and 22 (default at 3)'],
  ['gzip:long', 'Invalid compression specification: compression algorithm "gzip" does not support long-distance mode'],
  ['12', 'Invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9 (default at -1)'],
]

for (const [spec, message] of refused) {
  // A bare number is a gzip level and takes no client-/server- prefix.
  for (const prefix of /^\d+$/.test(spec) ? [''] : ['', 'client-', 'server-']) {
    test(`basebackup -Z ${prefix}${spec} is refused: ${message}`, (t) => {
      const err = t.throws(() => parseCompressOption(`${prefix}${spec}`))
      t.is(err?.message, message)
      t.is((err as {code?: string}).code, 'INVALID_ARGUMENT')
    })
  }
}

test('basebackup -Z specifications PostgreSQL accepts', (t) => {
  t.deepEqual(parseCompressOption('gzip'), {location: undefined, spec: {algorithm: 'gzip'}})
  t.deepEqual(parseCompressOption('5'), {spec: {algorithm: 'gzip', level: 5}})
  t.deepEqual(parseCompressOption('0'), {})
  t.deepEqual(parseCompressOption('none'), {location: undefined, spec: undefined})
  t.deepEqual(parseCompressOption('none:0'), {location: undefined, spec: undefined})
  t.deepEqual(parseCompressOption('server-gzip:-1'), {location: 'server', spec: {algorithm: 'gzip', level: -1}})
  t.deepEqual(parseCompressOption('client-lz4:level=0'), {location: 'client', spec: {algorithm: 'lz4', level: 0}})
  t.deepEqual(parseCompressOption('server-zstd:level=-5,workers=2,long'), {location: 'server', spec: {algorithm: 'zstd', level: -5, workers: 2, long: true}})
  t.deepEqual(parseCompressOption('zstd:long=off'), {location: undefined, spec: {algorithm: 'zstd', long: false}})
})

test('with serverJudges, a server-side specification goes to the server as typed; client-side ones are still checked', (t) => {
  t.deepEqual(parseCompressOption('server-gzip:', {serverJudges: true}), {location: 'server', spec: {algorithm: 'gzip'}, asTyped: {algorithm: 'gzip', detail: ''}})
  t.deepEqual(parseCompressOption('server-extrasquishy', {serverJudges: true}).asTyped, {algorithm: 'extrasquishy', detail: undefined})
  t.throws(() => parseCompressOption('gzip:', {serverJudges: true}), {message: /found empty string/})
})

test('receivewal -Z: pg_receivewal\'s forms and messages', (t) => {
  t.deepEqual(parseWalCompression('0'), {algorithm: 'none'})
  t.deepEqual(parseWalCompression('5'), {algorithm: 'gzip', level: 5})
  t.deepEqual(parseWalCompression('gzip:1'), {algorithm: 'gzip', level: 1})
  t.deepEqual(parseWalCompression('lz4'), {algorithm: 'lz4'})
  t.deepEqual(parseWalCompression('none'), {algorithm: 'none'})
  t.throws(() => parseWalCompression('none:1'), {message: 'Invalid compression specification: compression algorithm "none" does not accept a compression level'})
  t.throws(() => parseWalCompression('gzip:level=9,'), {message: 'Invalid compression specification: found empty string where a compression option was expected'})
  t.throws(() => parseWalCompression('brotli'), {message: 'Unrecognized compression algorithm: "brotli"'})
  t.throws(() => parseWalCompression('zstd'), {message: /zstd is not yet supported/})
  t.throws(() => parseWalCompression('server-gzip'), {message: 'Unrecognized compression algorithm: "server-gzip"'})
})
