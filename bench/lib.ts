/** What every benchmark in bench/ shares: timing a command and summarizing runs. */
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'

const run = promisify(execFile)

export interface Measure {
  seconds: number
  /** user + system */
  cpuSeconds: number
  userSeconds: number
  sysSeconds: number
  maxRssKb: number
}

/** Run a command to completion under /usr/bin/time: wall and CPU time, peak RSS. */
export async function timed(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Measure> {
  const {stderr} = await run('/usr/bin/time', ['-f', 'TIME %e %U %S %M', file, ...args], {maxBuffer: 16 * 1024 * 1024, env})
  const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)\s*$/.exec(stderr)
  if (!m) throw new Error(`no timing in: ${stderr}`)
  const [userSeconds, sysSeconds] = [Number(m[2]), Number(m[3])]
  return {seconds: Number(m[1]), cpuSeconds: userSeconds + sysSeconds, userSeconds, sysSeconds, maxRssKb: Number(m[4])}
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
