import Foundation
import SpeculaEngine
import SpeculaModels

/// What the worker sends a waiting request, in order: `started` once, `tokens` per round, then `finished`.
enum WorkerEvent: Sendable {
    /// The prompt pass is done: the prompt's tokens, how many of them came from the kept cache, seconds queued.
    case started(promptTokens: Int, cachedTokens: Int, queuedSeconds: Double)
    case tokens(GenerationEvent)
    /// `timedOut`: the generation was ended by the server's `--timeout`.
    case finished(GenerationStats, timedOut: Bool)
    /// An audit's result (``AuditReport``), its only event.
    case audit(AuditReport)
}

/// One request's generation: its prompt and plan, the stream its events go to, and its cancellation.
final class GenerationJob: @unchecked Sendable {
    /// A generation, or an audit of the plan against plain decoding with `samples` samples (at T > 0).
    enum Work: Sendable {
        case generate
        case audit(samples: Int)
    }

    let prompt: [Int]
    let plan: DecodingPlan
    let logprobs: Int?
    var work = Work.generate
    let continuation: AsyncThrowingStream<WorkerEvent, any Error>.Continuation
    let enqueued = ContinuousClock.now
    private let lock = NSLock()
    private var cancelled = false
    private var session: GenerationSession?

    init(
        prompt: [Int], plan: DecodingPlan, logprobs: Int?,
        continuation: AsyncThrowingStream<WorkerEvent, any Error>.Continuation
    ) {
        self.prompt = prompt
        self.plan = plan
        self.logprobs = logprobs
        self.continuation = continuation
    }

    /// Ends the generation before its next round (the client left, or the server is stopping); a job still queued
    /// is dropped when its turn comes.
    func cancel() {
        lock.lock()
        cancelled = true
        let session = session
        lock.unlock()
        session?.cancel()
    }

    var isCancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return cancelled
    }

    /// Attaches the running session (nil when it ends); false if the job was cancelled before.
    func attach(_ session: GenerationSession?) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        self.session = session
        return !cancelled
    }
}

/// Runs generations on `parallel` slots, each a thread of its own (a decoding round keeps both cores busy for tens
/// of milliseconds: it must not run on the event loops or Swift's cooperative pool). With more than one slot the
/// slots' generations run their passes together (``ForwardBatcher``: continuous batching; each output is the same
/// token for token as alone). Requests wait in a bounded FIFO queue. Each slot's caches are kept for the next
/// request (``PrefixCache``); a request takes the free slot whose kept conversation shares the longest beginning
/// with its prompt.
final class GenerationWorker: @unchecked Sendable {
    let models: ServedModels
    let context: Int
    let queueLimit: Int
    let timeout: Double?
    let metrics: ServerMetrics
    let parallel: Int
    /// The slots' shared passes (nil with one slot: its passes run alone).
    let batcher: ForwardBatcher?

    private let condition = NSCondition()
    private var waiting: [GenerationJob] = []
    private var running: [GenerationJob] = []
    private var stopping = false
    /// Kept caches, one set per slot, free ones here (taken by a starting generation, given back when it ends).
    private var freeCaches: [PrefixCache]
    /// The last adaptive generation's policy: the next one starts from its measured costs (``ServerOptions/rememberCosts``).
    private var lastPolicy: AdaptivePolicy?
    /// Priors measured at start (``measureAlone()``), the costs a first generation starts from.
    private var measuredAlone: AdaptivePolicy?
    var rememberCosts = true

    init(
        models: ServedModels, context: Int, queueLimit: Int, timeout: Double?, metrics: ServerMetrics,
        parallel: Int = 1, prefillPassSeconds: Double? = nil
    ) {
        self.models = models
        self.context = context
        self.queueLimit = queueLimit
        self.timeout = timeout
        self.metrics = metrics
        self.parallel = max(1, parallel)
        batcher =
            parallel > 1
            ? ForwardBatcher(
                priority: [models.usableDraft?.transformer, models.target.transformer].compactMap { $0 },
                prefillBound: prefillPassSeconds)
            : nil
        freeCaches = (0..<max(1, parallel)).map { _ in PrefixCache() }
    }

    func start() {
        if batcher != nil && rememberCosts { measureAlone() }
        for index in 0..<parallel {
            let thread = Thread { [self] in loop() }
            thread.name = "specula-slot-\(index)"
            thread.stackSize = 16 << 20
            thread.start()
        }
    }

    /// Requests waiting (not the ones running).
    var queueDepth: Int {
        condition.lock()
        defer { condition.unlock() }
        return waiting.count
    }

    var isBusy: Bool {
        condition.lock()
        defer { condition.unlock() }
        return !running.isEmpty
    }

    /// Queues a generation; a full queue or a stopping server is a 503 with `Retry-After`.
    func submit(prompt: [Int], plan: DecodingPlan, logprobs: Int?, work: GenerationJob.Work = .generate) throws -> (
        GenerationJob, AsyncThrowingStream<WorkerEvent, any Error>
    ) {
        let (stream, continuation) = AsyncThrowingStream<WorkerEvent, any Error>.makeStream()
        let job = GenerationJob(prompt: prompt, plan: plan, logprobs: logprobs, continuation: continuation)
        job.work = work
        condition.lock()
        defer { condition.unlock() }
        if stopping {
            throw APIError(
                status: .serviceUnavailable, message: "the server is shutting down", type: "unavailable_error",
                code: "shutting_down")
        }
        // A free slot takes the request at once; beyond the slots, at most `queueLimit` wait.
        if waiting.count + running.count >= queueLimit + parallel {
            metrics.countRejected()
            throw APIError(
                status: .serviceUnavailable,
                message: "the generation queue is full (\(queueLimit) waiting, --queue); retry later",
                type: "unavailable_error", code: "queue_full", retryAfter: 1)
        }
        waiting.append(job)
        metrics.setQueue(depth: waiting.count)
        condition.signal()
        return (job, stream)
    }

    /// Stops taking requests and cancels every generation (queued ones end with an error, the running ones at their
    /// next round, their streams ending normally).
    func shutdown() {
        condition.lock()
        stopping = true
        let jobs = waiting + running
        condition.broadcast()
        condition.unlock()
        for job in jobs { job.cancel() }
    }

    private func loop() {
        while true {
            condition.lock()
            while waiting.isEmpty { condition.wait() }
            let job = waiting.removeFirst()
            running.append(job)
            // The free cache set whose conversation shares the longest beginning with this prompt.
            let best =
                freeCaches.indices.max { a, b in
                    SpeculativeDecoder.commonPrefix(freeCaches[a].targetTokens, job.prompt)
                        < SpeculativeDecoder.commonPrefix(freeCaches[b].targetTokens, job.prompt)
                } ?? 0
            let caches = freeCaches.isEmpty ? PrefixCache() : freeCaches.remove(at: best)
            metrics.setQueue(depth: waiting.count)
            metrics.setRunning(running.count)
            condition.unlock()
            run(job, caches: caches)
            condition.lock()
            running.removeAll { $0 === job }
            freeCaches.append(caches)
            metrics.setRunning(running.count)
            condition.unlock()
        }
    }

    /// Marks `job` as no longer running (a queued request may start).
    private func release(_ job: GenerationJob) {
        condition.lock()
        running.removeAll { $0 === job }
        metrics.setRunning(running.count)
        condition.unlock()
    }

    private func run(_ job: GenerationJob, caches prefixCache: PrefixCache) {
        let queued = secondsSince(job.enqueued)
        if job.isCancelled {
            job.continuation.finish(throwing: CancellationError())
            return
        }
        if let timeout, queued > timeout {
            job.continuation.finish(
                throwing: APIError(
                    status: .serviceUnavailable,
                    message:
                        "the request waited \(Int(queued)) s in the queue, longer than --timeout \(Int(timeout)) s",
                    type: "unavailable_error", code: "timeout", retryAfter: 1))
            return
        }
        if case .audit(let samples) = job.work {
            do {
                let report = try audit(job, samples: samples)
                release(job)
                job.continuation.yield(.audit(report))
                job.continuation.finish()
            } catch {
                job.continuation.finish(throwing: error)
            }
            return
        }
        do {
            let session = try GenerationSession(
                target: models.target, draft: models.usableDraft, plan: job.plan, context: context)
            session.prefixCache = prefixCache
            session.batcher = batcher
            session.logprobs = job.logprobs
            if rememberCosts { session.adaptiveCosts = inheritedCosts() }
            guard job.attach(session) else {
                job.continuation.finish(throwing: CancellationError())
                return
            }
            defer {
                _ = job.attach(nil)
                session.leaveBatch()
            }
            try session.start(prompt: job.prompt)
            job.continuation.yield(
                .started(
                    promptTokens: session.promptTokens.count, cachedTokens: session.cachedPromptTokens,
                    queuedSeconds: queued))
            var timedOut = false
            while let event = try session.next() {
                job.continuation.yield(.tokens(event))
                if let timeout, !timedOut, secondsSince(job.enqueued) > timeout {
                    timedOut = true
                    session.cancel()
                }
            }
            if let policy = session.decoder?.adaptive, policy.targetStep != nil { remember(policy) }
            let stats = session.stats
            // The slot is free before the client hears the end: its next request must not find it busy.
            release(job)
            // Counted here, not by the request's handler: a handler whose client left may be gone already.
            metrics.observe(stats: stats, seconds: secondsSince(job.enqueued))
            if stats.finishReason == .cancelled && !timedOut { metrics.countCancelled() }
            job.continuation.yield(.finished(stats, timedOut: timedOut))
            job.continuation.finish()
        } catch {
            // A failed generation may leave its caches mid-round: the next one starts from empty caches.
            prefixCache.clear()
            job.continuation.finish(throwing: error)
        }
    }
}

extension GenerationWorker {
    func inheritedCosts() -> AdaptivePolicy? {
        condition.lock()
        defer { condition.unlock() }
        return lastPolicy ?? measuredAlone
    }

    /// With several slots, a generation runs its passes beside the others' and never times one alone: the models'
    /// one-row steps are measured here once, before the first request (five passes each, a few hundred
    /// milliseconds, after as many again to warm up), as the default mode's priors (``AdaptivePolicy/targetStepPrior``).
    func measureAlone() {
        let policy = AdaptivePolicy.measuredAlone(
            target: models.target.transformer, draft: models.usableDraft?.transformer)
        condition.lock()
        measuredAlone = policy
        condition.unlock()
    }

    func remember(_ policy: AdaptivePolicy) {
        condition.lock()
        lastPolicy = policy
        condition.unlock()
    }
}

/// The models a server serves: the target, and the draft model if one was given and can draft for the target.
public final class ServedModels: @unchecked Sendable {
    public let target: LoadedModel
    public let draft: LoadedModel?
    /// Why a loaded draft cannot be used (nil when it can, or when none was given).
    public let draftProblem: String?
    /// The name clients see in `/v1/models` and in responses.
    public let id: String

    public init(target: LoadedModel, draft: LoadedModel?, id: String? = nil) {
        self.target = target
        self.draft = draft
        var problem: String?
        if let draft {
            do { try GenerationSession.requireDraft(draft, for: target) } catch { problem = "\(error)" }
        }
        draftProblem = problem
        self.id = id ?? URL(fileURLWithPath: target.path).deletingPathExtension().lastPathComponent
    }

    /// The draft model when it can draft for the target.
    public var usableDraft: LoadedModel? { draftProblem == nil ? draft : nil }
}

func secondsSince(_ start: ContinuousClock.Instant) -> Double { seconds(from: start, to: .now) }

func seconds(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) -> Double {
    let elapsed = end - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}
