import {parentPort, workerData} from 'node:worker_threads'

import {TaskReader, type TaskRequest, type WorkerConfig} from './task-reader.js'

/** A worker thread of dumpWal: reads the segments it is given, one task at a time. */
const reader = new TaskReader(workerData as WorkerConfig)
let queue: Promise<void> = Promise.resolve()

parentPort!.on('message', (task: TaskRequest) => {
  queue = queue.then(async () => {
    const result = await reader.run(task)
    const transfer: ArrayBuffer[] = [...result.output]
    if (result.stats) transfer.push(...result.stats.arrays.map((a) => a.buffer as ArrayBuffer))
    parentPort!.postMessage(result, transfer)
  })
})
