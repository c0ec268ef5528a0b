import SpeculaKernels
import Synchronization
import Testing

@Suite("Worker pool")
struct WorkerPoolTests {
    @Test func everyWorkerRunsOnceAndAFreedPoolEndsItsThreads() {
        weak var freed: WorkerPool?
        do {
            let pool = WorkerPool(threadCount: 3)
            freed = pool
            let seen = Mutex<[Int]>([])
            pool.runOnEachWorker { worker in seen.withLock { $0.append(worker) } }
            #expect(seen.withLock { $0.sorted() } == [0, 1, 2])
            let total = Mutex(0)
            pool.parallelFor(count: 1000, granularity: 16) { range in
                #expect(range.lowerBound % 16 == 0)
                total.withLock { $0 += range.count }
            }
            #expect(total.withLock { $0 } == 1000)
        }
        // The workers do not keep the pool: it is freed (its deinit joins the threads) once no one holds it.
        #expect(freed == nil)
    }
}
