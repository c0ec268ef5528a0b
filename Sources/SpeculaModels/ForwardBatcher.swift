#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs the forward passes of several sequences together: each generation (a ``Member``) asks for its passes as if
/// alone — its caches hand them here (``KVCache/batchMember``) — and a pass runs once every member that is
/// generating waits for one. The passes then asked of one model go into one ``Transformer/forward(batch:)``: the
/// weights are read once for all of them. Members join and leave at any time (continuous batching).
///
/// Exactness: each member's rows are computed as in a pass of its own (the forward pass is batch-invariant), so a
/// member's logits — and its output, whatever it samples from them with its own random stream — do not depend on
/// who else is served, or when.
///
/// Scheduling:
/// - A member counts from its first pass until ``Member/leave()``. Between passes it is busy (verifying, sampling,
///   sending); a pass waits for every counted member to ask for one, so the members' passes line up.
/// - When members wait on different models, the one listed first in `priority` runs first (the draft before the
///   target: the drafting members then join the next target pass).
/// - A prompt pass (consecutive positions, causal) is fed in pieces while another member is generating, so a long
///   prompt delays the others' next tokens by a bounded time; alone it runs whole. With a ``prefillBound`` the
///   pieces are sized in time: each model's budget of prompt rows per pass starts at ``prefillChunk`` and is steered
///   by every pass that carried a piece toward the rows that make such a pass take the bound on this host
///   (``PromptBudget``), and only the rows before a segment's first logit row are cut (a chain or tree to verify
///   never is); without one every piece is ``prefillChunk`` rows.
/// - No thread of its own: the member whose request completes the line-up runs the pass on its thread.
public final class ForwardBatcher: @unchecked Sendable {
    /// One generation's access to the batcher, shared by its caches (target and draft).
    public final class Member: @unchecked Sendable {
        let batcher: ForwardBatcher
        var counted = false
        var left = false

        init(batcher: ForwardBatcher) { self.batcher = batcher }

        /// Runs `segment` through `model` in the next batched pass of that model; returns its logit rows. After
        /// ``leave()`` the pass runs alone.
        public func submit(_ segment: ForwardSegment, to model: Transformer) throws -> [[Float]] {
            try batcher.submit(segment, model: model, member: self)
        }

        /// Stops counting this member: the others' passes no longer wait for it. Call when its generation ends
        /// (however it ends); its caches then run their passes alone.
        public func leave() { batcher.leave(self) }
    }

    /// A pass as one member saw it: all its rows, the member's own, how many sequences it carried, and the seconds
    /// the pass itself took (its forward call, not the member's wait for the others to line up). `otherPieceRows`:
    /// the rows of other members' prompts fed in pieces in it — rows that pass once, not a member's steady share
    /// of the passes to come.
    public struct PassShare: Sendable, Equatable {
        public var rows = 0
        public var ownRows = 0
        public var segments = 0
        public var seconds = 0.0
        public var otherPieceRows = 0

        public init(rows: Int = 0, ownRows: Int = 0, segments: Int = 0, seconds: Double = 0, otherPieceRows: Int = 0) {
            self.rows = rows
            self.ownRows = ownRows
            self.segments = segments
            self.seconds = seconds
            self.otherPieceRows = otherPieceRows
        }

        /// The other members' rows that decode (their chains, trees and steps), without their prompt pieces: what
        /// the passes to come are expected to carry beside this member.
        public var otherDecodingRows: Int { max(0, rows - ownRows - otherPieceRows) }
    }

    /// Counters since the batcher was made.
    public struct Statistics: Sendable, Equatable {
        /// Passes run, rows and segments in them (segments over passes: the mean batch of sequences).
        public var passes = 0
        public var rows = 0
        public var segments = 0
        /// Passes that carried more than one sequence.
        public var sharedPasses = 0
        /// Prompt passes fed in pieces.
        public var splitPrompts = 0
        /// Seconds spent inside the passes.
        public var passSeconds = 0.0
        /// Passes that carried a piece of a prompt beside another member's rows, and the longest of them (seconds):
        /// the longest stall a prompt caused the others.
        public var piecePasses = 0
        public var longestPiecePass = 0.0
        /// Passes that carried only prompt pieces while other members were generating: every other member was
        /// waiting on another model then (the draft's pass runs first), or a decoding step was held back behind
        /// a prompt — with one model, always the latter.
        public var pieceOnlyPasses = 0
    }

    /// Prompt rows one pass may carry while others generate, steered toward a time bound. After a pass whose pieces
    /// filled the budget, or that took longer than the bound, the budget becomes rows × bound ÷ seconds (at most
    /// twice or half the last budget, within ``minimum``…``maximum``). A pass costs about a + b · rows (a: reading
    /// the weights and the other members' rows; b: a prompt row), and the step's fixed point is a + b · rows =
    /// bound: the most rows whose pass takes the bound. Where one pass costs more than the bound, the budget stays
    /// at ``minimum``.
    public struct PromptBudget: Sendable, Equatable {
        public static let minimum = 8
        public static let maximum = 1024
        public private(set) var rows: Int

        public init(rows: Int) { self.rows = min(max(rows, Self.minimum), Self.maximum) }

        /// After a pass that carried `pieceRows` prompt rows and took `seconds`.
        public mutating func update(pieceRows: Int, seconds: Double, bound: Double) {
            guard pieceRows > 0, seconds > 0, bound > 0, pieceRows >= rows || seconds > bound else { return }
            let target = Double(pieceRows) * bound / seconds
            let steered = min(max(target, Double(rows) / 2), Double(rows) * 2)
            rows = min(max(Int(steered), Self.minimum), Self.maximum)
        }
    }

    final class Request {
        let member: Member
        let model: Transformer
        let segment: ForwardSegment
        /// The logit rows asked for, in the segment's batch indices.
        let rows: [Int]
        /// Tokens already fed (pieces of a prompt pass).
        var fed = 0
        var logits: [[Float]] = []
        var done = false
        var error: (any Error)?

        init(member: Member, model: Transformer, segment: ForwardSegment) {
            self.member = member
            self.model = model
            self.segment = segment
            rows = segment.logitRows ?? [segment.tokens.count - 1]
        }
    }

    /// Models whose passes run first when members wait on several (earlier first).
    public let priority: [ObjectIdentifier]
    /// The rows of prompt pieces in one pass while other members generate: fixed without a ``prefillBound``, the
    /// first budget with one.
    public let prefillChunk: Int
    /// The seconds a pass that carries prompt pieces should take while other members generate (nil: pieces of
    /// ``prefillChunk`` rows whatever they cost).
    public let prefillBound: Double?
    /// Per model: its budget of prompt rows per pass (with a ``prefillBound``).
    private var budgets: [ObjectIdentifier: PromptBudget] = [:]

    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var active = 0
    private var pending: [Request] = []
    private var running = false
    private var counters = Statistics()

    public init(priority: [Transformer] = [], prefillChunk: Int = 64, prefillBound: Double? = nil) {
        self.priority = priority.map { ObjectIdentifier($0) }
        self.prefillChunk = max(2, prefillChunk)
        self.prefillBound = prefillBound.flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    func lock() { pthread_mutex_lock(&mutex) }
    func unlock() { pthread_mutex_unlock(&mutex) }

    /// A new member (counted from its first pass).
    public func join() -> Member { Member(batcher: self) }

    /// Members generating now (counted), and the counters.
    public var members: Int {
        lock()
        defer { unlock() }
        return active
    }

    /// The budget of prompt rows per pass that `model`'s pieces get now (nil without a ``prefillBound``).
    public func promptBudget(of model: Transformer) -> Int? {
        lock()
        defer { unlock() }
        guard prefillBound != nil else { return nil }
        return budgets[ObjectIdentifier(model), default: PromptBudget(rows: prefillChunk)].rows
    }

    public var statistics: Statistics {
        lock()
        defer { unlock() }
        return counters
    }

    func leave(_ member: Member) {
        lock()
        if member.counted {
            member.counted = false
            active -= 1
        }
        member.left = true
        // The others may all be waiting now: one of them runs the pass.
        pthread_cond_broadcast(&condition)
        unlock()
    }

    func submit(_ segment: ForwardSegment, model: Transformer, member: Member) throws -> [[Float]] {
        if segment.tokens.isEmpty { return [] }
        lock()
        if member.left {
            unlock()
            return try model.forward(batch: [segment])[0]
        }
        if !member.counted {
            member.counted = true
            active += 1
        }
        let request = Request(member: member, model: model, segment: segment)
        pending.append(request)
        while !request.done {
            if !running && pending.count >= active {
                runPass()
            } else {
                pthread_cond_wait(&condition, &mutex)
            }
        }
        unlock()
        if let error = request.error { throw error }
        return request.logits
    }

    /// Runs one pass of the first model in ``priority`` that anyone waits on (called with the lock held; unlocks
    /// while the pass runs).
    private func runPass() {
        running = true
        func rank(_ model: Transformer) -> Int { priority.firstIndex(of: ObjectIdentifier(model)) ?? priority.count }
        guard let first = pending.min(by: { rank($0.model) < rank($1.model) }) else {
            running = false
            return
        }
        let model = first.model
        let group = pending.filter { $0.model === model }
        let shared = group.count > 1 || active > 1
        let key = ObjectIdentifier(model)
        // With a bound, the prompt pieces of this pass share one budget (first come, first fed); without, each
        // prompt gets `prefillChunk` rows.
        var budget = prefillBound.map { _ in budgets[key, default: PromptBudget(rows: prefillChunk)].rows }
        var pieces: [ForwardSegment] = []
        var taken: [Int] = []
        var included: [Request] = []
        var pieceRows = 0
        // Per included request, its rows counted as prompt pieces.
        var pieceTaken: [Int] = []
        for request in group {
            let segment = request.segment
            let remaining = segment.tokens.count - request.fed
            var take = remaining
            var asPiece = 0
            // The rows fed before the first row whose logits are asked for: a prompt's (all of them, or all but
            // the last), a draft's catch-up before its chain; none of a chain or tree to verify.
            let feedable = (request.rows.min() ?? segment.tokens.count) - request.fed
            if let left = budget, shared && segment.isSplittable && feedable > PromptBudget.minimum {
                // Fed in pieces; a segment with at most the smallest piece before its logit rows — a decoding step,
                // a chain to verify, a prompt's last rows — always runs whole.
                take = left >= feedable ? remaining : left
                if take == 0 { continue }  // the budget is spent: this prompt waits for the next pass
                budget = max(0, left - take)
                asPiece = take
            } else if budget == nil && shared && segment.isSplittable {
                take = min(remaining, prefillChunk)
                if take < remaining || request.fed > 0 { asPiece = take }
            }
            var piece = segment
            if take < segment.tokens.count {
                let range = request.fed..<(request.fed + take)
                piece.tokens = Array(segment.tokens[range])
                piece.logitRows = request.rows.filter { range.contains($0) }.map { $0 - range.lowerBound }
                if request.fed == 0 { counters.splitPrompts += 1 }
            }
            do {
                try model.validate(piece)
                pieces.append(piece)
                taken.append(take)
                included.append(request)
                pieceRows += asPiece
                pieceTaken.append(asPiece)
            } catch {
                request.error = error
                request.done = true
            }
        }
        unlock()
        var results: [[[Float]]] = []
        var failure: (any Error)?
        let start = ContinuousClock.now
        do { results = try model.forward(batch: pieces) } catch { failure = error }
        let seconds = (ContinuousClock.now - start).inSeconds
        lock()
        let rows = taken.reduce(0, +)
        if !pieces.isEmpty {
            counters.passes += 1
            counters.rows += rows
            counters.segments += pieces.count
            counters.passSeconds += seconds
            if pieces.count > 1 { counters.sharedPasses += 1 }
            if shared && pieceRows > 0 {
                counters.piecePasses += 1
                counters.longestPiecePass = max(counters.longestPiecePass, seconds)
                if pieceRows == rows { counters.pieceOnlyPasses += 1 }
                if let prefillBound, failure == nil {
                    budgets[key, default: PromptBudget(rows: prefillChunk)].update(
                        pieceRows: pieceRows, seconds: seconds, bound: prefillBound)
                }
            }
        }
        for (index, request) in included.enumerated() {
            if let failure {
                request.error = failure
                request.done = true
                continue
            }
            request.logits += results[index]
            request.fed += taken[index]
            request.segment.cache.lastPass = PassShare(
                rows: rows, ownRows: taken[index], segments: pieces.count, seconds: seconds,
                otherPieceRows: pieceRows - pieceTaken[index])
            if request.fed == request.segment.tokens.count { request.done = true }
        }
        pending.removeAll { $0.done }
        running = false
        pthread_cond_broadcast(&condition)
    }
}
