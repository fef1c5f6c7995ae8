/**
 * repl check's whole-process time on a local primary with 3 standbys (the issue's target:
 * 0.3 s), next to repl's bare start-up (`check --version`), and repl status --watch=1's CPU
 * use on a terminal (tmux) over 30 s (target: under 2 % of a core).
 *
 *   npm run build && npx tsx bench/check.ts
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'

import {Tmux, TMUX} from '../test/check/watch-helpers.js'
import {BIN} from '../test/helpers/cli.js'
import {startCluster, startStandby} from '../test/helpers/cluster.js'

const primary = await startCluster({version: 18})
const standbys = []
try {
  for (const name of ['s1', 's2', 's3']) standbys.push(await startStandby(primary, {slot: name, applicationName: name}))
  // The copies brought the primary's slots along; a standby made by basebackup has none.
  for (const s of standbys) await s.sql('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots')
  const all = ['-d', primary.conninfo(), ...standbys.flatMap((s) => ['-d', s.conninfo()])]
  const measure = (args: string[]) => {
    const walls: number[] = []
    const cpus: number[] = []
    for (let i = 0; i < 11; i++) {
      const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', process.execPath, BIN, ...args], {encoding: 'utf8'})
      const [e, u, s] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number)
      walls.push(e! * 1000)
      cpus.push((u! + s!) * 1000)
    }
    const median = (a: number[]) => [...a].sort((x, y) => x - y)[5]!.toFixed(0)
    return `wall median ${median(walls)} ms (min ${Math.min(...walls).toFixed(0)}), user+sys median ${median(cpus)} ms`
  }
  console.log(`load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`)
  console.log(`repl check --version            ${measure(['check', '--version'])}`)
  console.log(`repl check primary (3 standbys) ${measure(['check', '-d', primary.conninfo()])}`)
  console.log(`repl check primary + 3 standbys ${measure(['check', ...all])}`)
  if (TMUX) {
    const tmux = new Tmux()
    try {
      tmux.start(`exec ${process.execPath} ${BIN} status --watch=1 -d '${primary.conninfo()}'`, 80, 30)
      const pid = Number(tmux.tmux('display', '-p', '-t', 'w', '#{pane_pid}').trim())
      const ticks = () => {
        const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
        return Number(f[11]) + Number(f[12])
      }
      await new Promise((r) => setTimeout(r, 3000))
      const t0 = ticks()
      await new Promise((r) => setTimeout(r, 30_000))
      const seconds = (ticks() - t0) / Number(execFileSync('getconf', ['CLK_TCK']).toString())
      console.log(`repl status --watch=1 (tmux)    ${((seconds / 30) * 100).toFixed(2)} % of a core over 30 s`)
    } finally {
      tmux.kill()
    }
  }
} finally {
  for (const s of standbys) await s.destroy()
  await primary.destroy()
}
