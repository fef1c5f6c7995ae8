import type {Hook} from '@oclif/core/hooks'

import {EXIT_CODES} from '../../core/errors.js'

/**
 * `repl foo`: the same one-line error as every other usage mistake (oclif's own message has
 * another shape), naming the closest command when the name looks like a typo of one.
 */
const hook: Hook.CommandNotFound = async function (options) {
  const ids = options.config.commandIDs
  const guess = closest(options.id, ids)
  const hint = `${guess ? `Did you mean "${guess}"? ` : ''}See ${options.config.bin} --help for the commands.`
  process.stderr.write(`${options.config.bin}: error: Unknown command "${options.id}"\nhint: ${hint}\n`)
  this.exit(EXIT_CODES.USAGE)
}

export default hook

/** The command within two edits of `id` (or starting with it), if exactly one is nearest. */
function closest(id: string, ids: string[]): string | undefined {
  const scored = ids.map((c) => ({c, d: c.startsWith(id) ? 0 : distance(id, c)})).filter((s) => s.d <= 2)
  scored.sort((a, b) => a.d - b.d)
  if (scored.length === 0 || (scored.length > 1 && scored[1]!.d === scored[0]!.d)) return undefined
  return scored[0]!.c
}

function distance(a: string, b: string): number {
  let prev = Array.from({length: b.length + 1}, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = row
  }
  return prev[b.length]!
}
