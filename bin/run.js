#!/usr/bin/env node
// Production entry: the bundled CLI in dist/ (scripts/bundle.mjs) and oclif.manifest.json, so a
// command loads its own bundle and nothing else. Run through a link named pg_basebackup,
// pg_receivewal or pg_waldump, it is that tool's drop-in (src/cli/invocation.ts).
import module from 'node:module'

// Node 22+ keeps compiled code between runs (a faster start); Node 20 lacks it and skips this.
module.enableCompileCache?.()

const {main} = await import('../dist/main.js')
await main(import.meta.url)
