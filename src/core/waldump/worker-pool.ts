import {Worker} from 'node:worker_threads'

import type {TaskRequest, TaskResult, WorkerConfig} from './task-reader.js'

/** The worker threads of a parallel dump, each running TaskReaders (dump-worker.ts). */
export class WorkerPool {
  private readonly workers: Worker[] = []
  private readonly waiting = new Map<number, {resolve: (r: TaskResult) => void; reject: (e: Error) => void}>()
  private failed: Error | undefined

  constructor(count: number, config: WorkerConfig) {
    const here = import.meta.url
    // Under tsx (tests, bin/dev.js) the worker is the TypeScript source; workers inherit --import tsx.
    const script = new URL(here.endsWith('.ts') ? './dump-worker.ts' : './dump-worker.js', here)
    for (let i = 0; i < count; i++) {
      const w = new Worker(script, {workerData: config})
      w.on('message', (r: TaskResult) => {
        const p = this.waiting.get(r.id)
        this.waiting.delete(r.id)
        p?.resolve(r)
      })
      w.on('error', (err) => this.fail(err))
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`WAL reading worker exited with code ${code}`))
      })
      this.workers.push(w)
    }
  }

  private fail(err: Error): void {
    this.failed ??= err
    for (const p of this.waiting.values()) p.reject(err)
    this.waiting.clear()
  }

  run(task: TaskRequest, worker: number): Promise<TaskResult> {
    if (this.failed) return Promise.reject(this.failed)
    return new Promise((resolve, reject) => {
      this.waiting.set(task.id, {resolve, reject})
      this.workers[worker]!.postMessage(task)
    })
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}
