import {fileURLToPath} from 'node:url'

import {execute} from '@oclif/core/execute'

import {commandArgs} from './invocation.js'

/**
 * The CLI's entry (bin/run.js): oclif with repl's arguments, a drop-in's tool name mapped to
 * its command. repl has no plugins to look for, so oclif is told not to (each lookup reads
 * files at every start-up).
 */
export async function main(binUrl: string): Promise<void> {
  const root = fileURLToPath(new URL('..', binUrl))
  await execute({args: commandArgs(), loadOptions: {root, userPlugins: false, devPlugins: false}})
}
