import Foundation
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

    /// Guided loops cover every index exactly once, in ranges no shorter than the minimum (but the last), whatever
    /// the thread count; with one thread, or no more than the minimum, one range; the first take is a long run.
    @Test func guidedLoopsCoverEveryIndexOnce() {
        for threads in [1, 2, 3] {
            let pool = WorkerPool(threadCount: threads)
            for (count, minimum) in [(0, 4), (3, 4), (4, 4), (5, 4), (97, 4), (560, 4), (9496, 4), (1000, 1), (50, 64)]
            {
                let ranges = Mutex<[Range<Int>]>([])
                pool.parallelForGuided(count: count, minimumChunk: minimum) { range in
                    ranges.withLock { $0.append(range) }
                }
                let sorted = ranges.withLock { $0 }.sorted { $0.lowerBound < $1.lowerBound }
                let label = "\(threads) threads, \(count) by \(minimum)"
                #expect(sorted.reduce(0) { $0 + $1.count } == count, "\(label)")
                #expect(zip(sorted, sorted.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }, "\(label)")
                #expect(sorted.first?.lowerBound ?? 0 == 0 && sorted.last?.upperBound ?? count == count, "\(label)")
                #expect(sorted.dropLast().allSatisfy { $0.count >= min(minimum, count) }, "\(label)")
                if threads == 1 || count <= minimum { #expect(sorted.count == (count == 0 ? 0 : 1), "\(label)") }
                if threads > 1 && count >= 8 * threads * minimum {
                    #expect(sorted[0].count == count / (2 * threads), "\(label)")
                }
            }
        }
    }

    /// Callers of a shared pool take turns in the order they asked. A caller that leaves and asks again at once
    /// (a generation runs hundreds of parallel loops a step) goes behind the ones already waiting, instead of
    /// taking the pool back before they wake (a server's generation once waited out another's whole run that way).
    @Test func callersTakeTurnsInTheOrderTheyAsked() throws {
        let turns = TurnQueue()
        let order = Mutex<[String]>([])
        func waitUntil(_ count: Int) throws {
            // Bounded: a thread that never reaches `enter` fails the test rather than hanging it.
            for _ in 0..<20_000 where turns.waiting < count { usleep(500) }
            try #require(turns.waiting == count)
        }
        turns.enter()
        order.withLock { $0.append("first") }
        let done = DispatchGroup()
        for name in ["second", "third"] {
            let thread = Thread {
                turns.enter()
                order.withLock { $0.append(name) }
                turns.leave()
                done.leave()
            }
            done.enter()
            try waitUntil(name == "second" ? 0 : 1)
            thread.start()
            try waitUntil(name == "second" ? 1 : 2)
        }
        turns.leave()
        turns.enter()
        order.withLock { $0.append("first again") }
        turns.leave()
        done.wait()
        #expect(order.withLock { $0 } == ["first", "second", "third", "first again"])
    }
}
