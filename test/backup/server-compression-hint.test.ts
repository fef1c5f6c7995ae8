import test from 'ava'

import {serverCompressionHint} from '../../src/core/backup/server-compression-hint.js'

// The messages PostgreSQL 18's embedded build (zlib only) sends for --compress=server-zstd and
// server-lz4, as repl prints them today.
const ZSTD = 'invalid compression specification: this build does not support compression with ZSTD'
const LZ4 = 'invalid compression specification: this build does not support compression with LZ4'

test('a server built without zstd or lz4 is said plainly, with what works instead', (t) => {
  t.deepEqual(serverCompressionHint(ZSTD), {
    message: 'This server was built without zstd support, so it cannot compress the backup with zstd',
    hint: 'Use --compress=server-gzip, or compress on the client with --compress=client-zstd (tar format).',
  })
  t.regex(serverCompressionHint(`Could not initiate base backup: ${LZ4}`)!.hint, /--compress=server-gzip, or .*--compress=client-lz4/)
  t.regex(serverCompressionHint('this build does not support compression with gzip')!.hint, /client-gzip/)
})

test('other server errors get no compression hint', (t) => {
  t.is(serverCompressionHint('invalid compression specification: compression algorithm "zstd" does not accept a compression level'), undefined)
  t.is(serverCompressionHint('replication slot "x" does not exist'), undefined)
})
