import Foundation
import SpeculaEngine
import SpeculaModels

/// The server's counters, gauges and histograms, written in Prometheus's text format at `GET /metrics`. Names follow
/// vLLM's and llama-server's where they have one (`specula:` prefix); the speculation counters are labelled by
/// verifier and drafter, with the sum of α* over the positions the verifier reached, so that a dashboard can compute
/// the verifier's efficiency (accepted at reached positions / Σα*) over any window.
final class ServerMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [String: Int] = [:]
    private var promptTokens = 0
    private var cachedTokens = 0
    private var generatedTokens = 0
    private var rejected = 0
    private var cancelled = 0
    private var queueDepth = 0
    private var running = 0
    private var firstToken = Histogram(bounds: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60])
    private var interToken = Histogram(bounds: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5])
    private var requestSeconds = Histogram(bounds: [0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300, 600])
    private var speculation: [SpecKey: SpecCounts] = [:]

    struct SpecKey: Hashable {
        var verifier: String
        var drafter: String
    }

    struct SpecCounts {
        var drafts = 0
        var draftTokens = 0
        var acceptedTokens = 0
        var acceptedPerPosition: [Int] = []
        var reached = 0
        var reachedAccepted = 0
        var alphaSum = 0.0
    }

    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var count = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            counts = [Int](repeating: 0, count: bounds.count)
        }

        mutating func observe(_ value: Double) {
            for (index, bound) in bounds.enumerated() where value <= bound { counts[index] += 1 }
            sum += value
            count += 1
        }
    }

    func countRequest(route: String, status: Int) {
        lock.withLock { requests["route=\"\(route)\",code=\"\(status)\"", default: 0] += 1 }
    }

    func countRejected() { lock.withLock { rejected += 1 } }
    func countCancelled() { lock.withLock { cancelled += 1 } }
    func setQueue(depth: Int) { lock.withLock { queueDepth = depth } }
    func setRunning(_ value: Int) { lock.withLock { running = value } }
    func observeFirstToken(_ seconds: Double) { lock.withLock { firstToken.observe(seconds) } }

    /// A round's tokens reached the client `seconds` after the previous ones: the first token of the round waited
    /// that long, the rest of the round came with it.
    func observeRound(tokens: Int, seconds: Double) {
        guard tokens > 0 else { return }
        lock.withLock {
            interToken.observe(seconds)
            for _ in 1..<tokens { interToken.observe(0) }
        }
    }

    /// A finished generation's tokens, time and speculation counters.
    func observe(stats: GenerationStats, seconds: Double) {
        lock.withLock {
            promptTokens += stats.promptTokens
            cachedTokens += stats.cachedPromptTokens
            generatedTokens += stats.generatedTokens
            requestSeconds.observe(seconds)
            guard let t = stats.telemetry else { return }
            let key = SpecKey(verifier: stats.verifier, drafter: stats.drafter)
            var counts = speculation[key, default: SpecCounts()]
            counts.drafts += t.rounds - t.plainRounds
            counts.draftTokens += t.draftedTokens
            counts.acceptedTokens += t.acceptedTokens
            while counts.acceptedPerPosition.count < t.acceptedAtDepth.count { counts.acceptedPerPosition.append(0) }
            for (position, accepted) in t.acceptedAtDepth.enumerated() {
                counts.acceptedPerPosition[position] += accepted
            }
            counts.reached += t.reachedNodes
            counts.reachedAccepted += t.reachedAccepted
            counts.alphaSum += t.optimalSum
            speculation[key] = counts
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    func render(batch: ForwardBatcher.Statistics? = nil) -> String {
        lock.lock()
        defer { lock.unlock() }
        var out = ""
        func header(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func number(_ value: Double) -> String {
            value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        }
        header("specula:requests_total", "counter", "HTTP requests answered, by route and status code.")
        for (labels, count) in requests.sorted(by: { $0.key < $1.key }) {
            out += "specula:requests_total{\(labels)} \(count)\n"
        }
        header("specula:requests_rejected_total", "counter", "Requests refused because the queue was full.")
        out += "specula:requests_rejected_total \(rejected)\n"
        header(
            "specula:requests_cancelled_total", "counter",
            "Generations cancelled: the client left, or the server was stopping.")
        out += "specula:requests_cancelled_total \(cancelled)\n"
        header("specula:num_requests_waiting", "gauge", "Requests in the queue.")
        out += "specula:num_requests_waiting \(queueDepth)\n"
        header("specula:num_requests_running", "gauge", "Generations running (at most --parallel).")
        out += "specula:num_requests_running \(running)\n"
        if let batch {
            header("specula:batch_passes_total", "counter", "Forward passes run for the slots (both models).")
            out += "specula:batch_passes_total \(batch.passes)\n"
            header("specula:batch_shared_passes_total", "counter", "Passes that carried more than one generation.")
            out += "specula:batch_shared_passes_total \(batch.sharedPasses)\n"
            header("specula:batch_segments_total", "counter", "Generations carried, summed over passes.")
            out += "specula:batch_segments_total \(batch.segments)\n"
            header("specula:batch_rows_total", "counter", "Token rows computed, summed over passes.")
            out += "specula:batch_rows_total \(batch.rows)\n"
            header("specula:batch_split_prompts_total", "counter", "Prompt passes fed in pieces beside others.")
            out += "specula:batch_split_prompts_total \(batch.splitPrompts)\n"
            header(
                "specula:batch_piece_passes_total", "counter",
                "Passes that carried a piece of a prompt beside another generation's rows.")
            out += "specula:batch_piece_passes_total \(batch.piecePasses)\n"
            header(
                "specula:batch_piece_pass_seconds_max", "gauge",
                "The longest of those passes: the longest a prompt held up the others (see --prefill-pass-ms).")
            out += "specula:batch_piece_pass_seconds_max \(batch.longestPiecePass)\n"
            header(
                "specula:batch_pass_seconds_total", "counter",
                "Seconds inside the passes (the rest of the wall time the slots spend sampling, verifying, sending).")
            out += "specula:batch_pass_seconds_total \(batch.passSeconds)\n"
        }
        header("specula:prompt_tokens_total", "counter", "Prompt tokens of finished generations.")
        out += "specula:prompt_tokens_total \(promptTokens)\n"
        header("specula:prompt_tokens_cached_total", "counter", "Prompt tokens whose cache rows were reused.")
        out += "specula:prompt_tokens_cached_total \(cachedTokens)\n"
        header("specula:generation_tokens_total", "counter", "Generated tokens of finished generations.")
        out += "specula:generation_tokens_total \(generatedTokens)\n"
        func histogram(_ name: String, _ help: String, _ h: Histogram) {
            header(name, "histogram", help)
            for (bound, count) in zip(h.bounds, h.counts) {
                out += "\(name)_bucket{le=\"\(number(bound))\"} \(count)\n"
            }
            out += "\(name)_bucket{le=\"+Inf\"} \(h.count)\n\(name)_sum \(h.sum)\n\(name)_count \(h.count)\n"
        }
        histogram(
            "specula:time_to_first_token_seconds", "From the request's arrival to its first token.", firstToken)
        histogram(
            "specula:inter_token_latency_seconds",
            "Between consecutive tokens as the client receives them (a round's later tokens count 0).", interToken)
        histogram("specula:e2e_request_latency_seconds", "From arrival to the last token.", requestSeconds)
        let entries = speculation.sorted { ($0.key.verifier, $0.key.drafter) < ($1.key.verifier, $1.key.drafter) }
        func labels(_ key: SpecKey) -> String { "verifier=\"\(key.verifier)\",drafter=\"\(key.drafter)\"" }
        header("specula:spec_decode_num_drafts_total", "counter", "Rounds that verified drafted tokens.")
        for (key, counts) in entries {
            out += "specula:spec_decode_num_drafts_total{\(labels(key))} \(counts.drafts)\n"
        }
        header("specula:spec_decode_num_draft_tokens_total", "counter", "Drafted tokens verified.")
        for (key, counts) in entries {
            out += "specula:spec_decode_num_draft_tokens_total{\(labels(key))} \(counts.draftTokens)\n"
        }
        header("specula:spec_decode_num_accepted_tokens_total", "counter", "Drafted tokens accepted.")
        for (key, counts) in entries {
            out += "specula:spec_decode_num_accepted_tokens_total{\(labels(key))} \(counts.acceptedTokens)\n"
        }
        header(
            "specula:spec_decode_num_accepted_tokens_per_pos_total", "counter",
            "Rounds that accepted a draft at this position (0-based).")
        for (key, counts) in entries {
            for (position, count) in counts.acceptedPerPosition.enumerated() {
                out +=
                    "specula:spec_decode_num_accepted_tokens_per_pos_total{\(labels(key)),position=\"\(position)\"} \(count)\n"
            }
        }
        header(
            "specula:spec_decode_reached_positions_total", "counter",
            "Chain positions the verifier reached (accepted ones and the first rejected one).")
        for (key, counts) in entries {
            out += "specula:spec_decode_reached_positions_total{\(labels(key))} \(counts.reached)\n"
        }
        header(
            "specula:spec_decode_reached_accepted_total", "counter", "Accepted drafts among the reached positions.")
        for (key, counts) in entries {
            out += "specula:spec_decode_reached_accepted_total{\(labels(key))} \(counts.reachedAccepted)\n"
        }
        header(
            "specula:spec_decode_alpha_star_sum", "counter",
            "Sum of the optimal acceptance α* over the reached positions (efficiency = reached_accepted / this).")
        for (key, counts) in entries {
            out += "specula:spec_decode_alpha_star_sum{\(labels(key))} \(counts.alphaSum)\n"
        }
        return out
    }
}
