import {spawn, type ChildProcess} from 'node:child_process'

import parsePrometheusTextFormat, {type ParsedFamily} from 'parse-prometheus-text-format'

import {BIN} from '../helpers/cli.js'

/** Parse with a maintained Prometheus text-format parser; look samples up by name and labels. */
export class Scrape {
  readonly families: ParsedFamily[]
  constructor(readonly text: string) {
    this.families = parsePrometheusTextFormat(text)
  }

  family(name: string): ParsedFamily | undefined {
    return this.families.find((f) => f.name === name)
  }

  /** The one sample of `name` whose labels include `labels`; undefined when none. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const matches = (this.family(name)?.metrics ?? []).filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
    if (matches.length > 1) throw new Error(`${matches.length} samples of ${name} match ${JSON.stringify(labels)}`)
    return matches[0] ? Number(matches[0].value) : undefined
  }
}

/** `repl metrics --listen` as a child process, resolved once it says where it serves. */
export async function serveMetrics(args: string[]): Promise<{child: ChildProcess; url: string; stderr: () => string; exit: Promise<number | null>}> {
  const child = spawn(process.execPath, [BIN, 'metrics', ...args], {stdio: ['ignore', 'pipe', 'pipe']})
  let err = ''
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`metrics did not start: ${err}`)), 30_000)
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString()
      const m = /serving metrics at (\S+)/.exec(err)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    child.on('close', () => reject(new Error(`metrics exited: ${err}`)))
  })
  return {child, url, stderr: () => err, exit}
}
