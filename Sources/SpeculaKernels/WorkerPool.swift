import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A persistent pool of worker threads for data-parallel loops: no thread is created per token. The calling thread
/// takes part, so a pool of `threadCount` runs `threadCount` chunks at once.
///
/// `parallelFor(count:)` splits `0..<count` into `threadCount` contiguous chunks, a fixed function of `count` and
/// the thread count, so every element is computed by the same code whatever the batch; results never depend on
/// which thread ran them.
public final class WorkerPool: @unchecked Sendable {
    public let threadCount: Int
    private var threads: [pthread_t] = []
    /// What the workers share with the callers. The workers hold only this, not the pool, so that a pool no one
    /// holds is freed: its `deinit` stops and joins its threads.
    private let state = State()
    /// Serialises callers in arrival order: two threads may share a pool (two generations in one process, tests
    /// running in parallel), and each parallel loop needs every worker to itself. A plain mutex would not do: a
    /// caller that releases it and asks again a microsecond later (a decoding step runs hundreds of loops) can take
    /// it back before a sleeping waiter wakes, and keep the other caller out for as long as it runs.
    private let turns = TurnQueue()
    /// Spin iterations before a worker sleeps on the condition variable.
    static let spinLimit = 200_000

    /// A shared pool with one thread per core (at most 2 by default on this project's machines; override with
    /// `SPECULA_THREADS`).
    public static let shared: WorkerPool = {
        var count = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if let text = getenv("SPECULA_THREADS"), let value = Int(String(cString: text)), value >= 1 { count = value }
        return WorkerPool(threadCount: max(1, count))
    }()

    public init(threadCount: Int) {
        precondition(threadCount >= 1)
        self.threadCount = threadCount
        for worker in 1..<threadCount {
            var thread = pthread_t()
            let box = Unmanaged.passRetained(WorkerContext(state: state, index: worker))
            pthread_create(
                &thread, nil,
                { raw in
                    guard let raw else { return nil }
                    let context = Unmanaged<WorkerContext>.fromOpaque(raw).takeRetainedValue()
                    context.state.workerLoop(context.index)
                    return nil
                }, box.toOpaque())
            threads.append(thread)
        }
    }

    final class WorkerContext {
        let state: State
        let index: Int
        init(state: State, index: Int) {
            self.state = state
            self.index = index
        }
    }

    /// The job, its generation counter and the workers' wake-up.
    final class State: @unchecked Sendable {
        var mutex = pthread_mutex_t()
        var start = pthread_cond_t()
        /// Bumped for each job; workers spin on it for a while before sleeping, because a decoding step runs a few
        /// hundred short parallel loops and waking a sleeping thread costs more than most of them.
        let generation = Atomic<Int>(0)
        let pending = Atomic<Int>(0)
        var stopping = false
        var job: ((Int) -> Void)? = nil

        init() {
            pthread_mutex_init(&mutex, nil)
            pthread_cond_init(&start, nil)
        }

        func workerLoop(_ index: Int) {
            var seen = 0
            while true {
                var spins = 0
                while generation.load(ordering: .acquiring) == seen && spins < WorkerPool.spinLimit { spins += 1 }
                pthread_mutex_lock(&mutex)
                while generation.load(ordering: .acquiring) == seen && !stopping { pthread_cond_wait(&start, &mutex) }
                if stopping {
                    pthread_mutex_unlock(&mutex)
                    return
                }
                seen = generation.load(ordering: .acquiring)
                let body = job
                pthread_mutex_unlock(&mutex)
                body?(index)
                pending.subtract(1, ordering: .releasing)
            }
        }
    }

    deinit {
        pthread_mutex_lock(&state.mutex)
        state.stopping = true
        pthread_cond_broadcast(&state.start)
        pthread_mutex_unlock(&state.mutex)
        for thread in threads { pthread_join(thread, nil) }
    }

    /// Runs `body(worker)` once on each of the `threadCount` workers (the caller is worker 0) and waits for all.
    /// Concurrent callers take turns; a call from inside `body` would deadlock and is a programmer error.
    public func runOnEachWorker(_ body: @escaping (Int) -> Void) {
        if threadCount == 1 {
            body(0)
            return
        }
        turns.enter()
        defer { turns.leave() }
        pthread_mutex_lock(&state.mutex)
        state.job = body
        state.pending.store(threadCount - 1, ordering: .relaxed)
        state.generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(&state.start)
        pthread_mutex_unlock(&state.mutex)
        body(0)
        // The workers' share is as short as the caller's: spin until they are done.
        while state.pending.load(ordering: .acquiring) > 0 {}
        pthread_mutex_lock(&state.mutex)
        state.job = nil
        pthread_mutex_unlock(&state.mutex)
    }

    /// Calls `body(range)` on contiguous chunks covering `0..<count`, one chunk per worker, in parallel. Chunk
    /// boundaries are multiples of `granularity`.
    public func parallelFor(count: Int, granularity: Int = 1, _ body: @escaping (Range<Int>) -> Void) {
        if count <= 0 { return }
        let units = (count + granularity - 1) / granularity
        let workers = min(threadCount, units)
        if workers <= 1 {
            body(0..<count)
            return
        }
        runOnEachWorker { worker in
            guard worker < workers else { return }
            let lower = units * worker / workers * granularity
            let upper = min(units * (worker + 1) / workers * granularity, count)
            if lower < upper { body(lower..<upper) }
        }
    }

    /// Like ``parallelFor(count:granularity:_:)`` but balanced at run time: workers take chunks of `chunk`
    /// elements from a shared counter until none are left, so a worker that started late or runs on a busier core
    /// does less. Which worker runs a chunk varies; what each element computes must not depend on it.
    public func parallelForBalanced(count: Int, chunk: Int, _ body: @escaping (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunk = max(1, chunk)
        if threadCount == 1 || count <= chunk {
            body(0..<count)
            return
        }
        let cursor = Cursor()
        runOnEachWorker { _ in
            while true {
                let lower = cursor.next.add(chunk, ordering: .relaxed).oldValue
                if lower >= count { return }
                body(lower..<min(lower + chunk, count))
            }
        }
    }
}

extension WorkerPool {
    /// Like ``parallelForBalanced(count:chunk:_:)``, but each take is a share of what is left (a `1 / (2 ·
    /// threadCount)` share, at least `minimumChunk`): the first takes are long contiguous runs, the last ones short
    /// enough to even out two cores that run at different speeds. A product streams its weights fastest in long runs
    /// (the hardware prefetchers and the kernels' prefetch hints follow one run; fixed small chunks taken in turn
    /// break each core's stream at every chunk). Which worker runs a range varies; what each element computes must
    /// not depend on it.
    public func parallelForGuided(count: Int, minimumChunk: Int, _ body: @escaping (Range<Int>) -> Void) {
        if count <= 0 { return }
        let minimum = max(1, minimumChunk)
        if threadCount == 1 || count <= minimum {
            body(0..<count)
            return
        }
        let cursor = Cursor()
        let share = 2 * threadCount
        runOnEachWorker { _ in
            var lower = cursor.next.load(ordering: .relaxed)
            while lower < count {
                let take = min(count - lower, max(minimum, (count - lower) / share))
                let (exchanged, original) = cursor.next.compareExchange(
                    expected: lower, desired: lower + take, ordering: .relaxed)
                if exchanged {
                    body(lower..<(lower + take))
                    lower = cursor.next.load(ordering: .relaxed)
                } else {
                    lower = original
                }
            }
        }
    }
}

/// A fair lock: callers enter in the order they asked (a ticket each), each waiter asleep on a condition variable.
/// Uncontended, `enter` and `leave` are one mutex round each. Public for the kernel tests, which the portable
/// package links from outside this one.
public final class TurnQueue: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let turn = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var nextTicket = 0
    private var serving = 0
    private var sleepers = 0

    public init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(turn, nil)
    }

    deinit {
        pthread_cond_destroy(turn)
        pthread_mutex_destroy(mutex)
        turn.deallocate()
        mutex.deallocate()
    }

    /// Callers that asked and have not entered yet.
    public var waiting: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return max(0, nextTicket - serving - 1)
    }

    public func enter() {
        pthread_mutex_lock(mutex)
        let ticket = nextTicket
        nextTicket += 1
        while serving != ticket {
            sleepers += 1
            pthread_cond_wait(turn, mutex)
            sleepers -= 1
        }
        pthread_mutex_unlock(mutex)
    }

    public func leave() {
        pthread_mutex_lock(mutex)
        serving += 1
        // Every sleeper wakes and checks its ticket: there are rarely more than one or two.
        if sleepers > 0 { pthread_cond_broadcast(turn) }
        pthread_mutex_unlock(mutex)
    }
}

/// The shared position of a balanced loop.
final class Cursor: Sendable {
    let next = Atomic<Int>(0)
}
