import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'

export const TMUX = ['/usr/bin/tmux', '/usr/local/bin/tmux'].find((p) => existsSync(p))

/** A private tmux server (its own socket name) holding one window of the given size. */
export class Tmux {
  private readonly socket = `repl-watch-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

  tmux(...args: string[]): string {
    return execFileSync(TMUX!, ['-L', this.socket, ...args], {encoding: 'utf8'})
  }

  start(command: string, width: number, height: number): void {
    this.tmux('new-session', '-d', '-s', 'w', '-x', String(width), '-y', String(height), command)
  }

  /** What the pane shows, as plain text lines. */
  capture(): string[] {
    return this.tmux('capture-pane', '-p', '-t', 'w').split('\n')
  }

  kill(): void {
    try {
      this.tmux('kill-server')
    } catch {}
  }
}
