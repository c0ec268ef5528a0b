import SpeculaKernels
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

extension SpeculativeDecoder {
    /// A chain round of at most `length` drafts (the decoder's depth, or a chain-shaped tree's).
    func chainRound(draft: Transformer, draftCache: KVCache, length: Int) throws -> [Int] {
        let roundStart = ContinuousClock.now
        defer { telemetry.roundSeconds += Self.seconds(since: roundStart) }
        let prefix = targetCache.length
        // The root and at least one draft must fit; with room for the root alone the round is a plain step (the
        // choice depends on the position only, so the round keeps the target's law).
        let room = targetCache.capacity - prefix - 1
        if room < 1 { return try plainRound() }
        let gamma = min(length, room)
        // 1. Draft a chain: feed the backlog and the root, then each draft but the last. With a lookahead, a pass also
        // feeds the n-gram proposal for the next positions: each draft is still sampled from the draft's own
        // distribution, and while it equals the proposed token the next distribution is already computed.
        var drafts: [Int] = []
        var draftVectors: [[Double]] = []
        var feed = draftBacklog + [root]
        draftBacklog = []
        var ready: [[Float]] = []  // logits already computed for the next positions
        var assumed: [Int] = []  // the proposed tokens they assume, fed to the draft cache
        let draftStart = ContinuousClock.now
        // The adaptive mode: a chain verified token by token stops where the next draft is not worth its cost
        // (``AdaptivePolicy/extends(reach:confidence:drafted:rate:lookaheadReady:otherRows:)``), from the draft's
        // confidence at each draft; `reach` is the chance that the verification keeps every draft so far.
        let stopping = adaptive != nil && chainRate > 0 && verifier != .block
        chainConfidences = []
        var reach = 1.0
        for position in 0..<gamma {
            if stopping, position > 0, let policy = adaptive, let confidence = chainConfidences.last,
                !policy.extends(
                    reach: reach, confidence: confidence, drafted: position, rate: chainRate,
                    lookaheadReady: !ready.isEmpty, otherRows: chainOtherRows)
            {
                // The last draft is not fed (as at a chain's natural end): the commit puts it in the backlog.
                telemetry.stoppedEarly += 1
                break
            }
            let logits: [Float]
            if ready.isEmpty {
                let look =
                    lookahead > 0 && position < gamma - 1
                    ? NGramDrafter.propose(
                        history: history + drafts, longest: ngramLongest, count: min(lookahead, gamma - position - 1))
                    : []
                let rows = try draft.forward(
                    tokens: feed + look, cache: draftCache,
                    logitRows: Array((feed.count - 1)..<(feed.count + look.count)))
                telemetry.draftPasses += 1
                logits = rows[0]
                ready = Array(rows.dropFirst())
                assumed = look
            } else {
                logits = ready.removeFirst()
                telemetry.lookaheadDrafts += 1
            }
            // A draft unsure of its next token (after the first) ends the chain: that token would rarely be kept.
            if position > 0 && draftStop > 0 && verifier != .block
                && Double(Ops.maximumProbability(logits)) < draftStop
            {
                telemetry.stoppedEarly += 1
                // The last draft was fed: its row stays in the draft cache like an unfed one would not.
                break
            }
            if stopping, let policy = adaptive {
                let confidence = Double(Ops.maximumProbability(logits))
                chainConfidences.append(confidence)
                reach *= policy.acceptance(confidence: confidence)
            }
            // Temperature 0 with no penalty: the argmax, with no distribution built (the walk needs none).
            let q = fastGreedy ? [] : try process(logits, path: drafts)
            let token =
                fastGreedy ? try SamplingSettings.greedyToken(logits) : try settings.choose(from: q, using: &random)
            drafts.append(token)
            draftVectors.append(q)
            if let proposed = assumed.first, proposed == token {
                assumed.removeFirst()  // its row is in the cache, and the next logits are ready
                feed = []
            } else {
                _ = draftCache.trim(to: draftCache.length - assumed.count)
                assumed = []
                ready = []
                feed = [token]
            }
            if position == gamma - 1 { break }
        }
        // Rows of proposed tokens past the last draft are dropped; the cache holds the root and the drafts fed.
        _ = draftCache.trim(to: draftCache.length - assumed.count)
        telemetry.draftSeconds += Self.seconds(since: draftStart)
        let fed = draftCache.length - prefix - 1
        let drafted = drafts.count
        // 2. One target pass over the root and the drafts.
        let nodes = [root] + drafts
        let verifyStart = ContinuousClock.now
        let logits = try target.forward(tokens: nodes, cache: targetCache, logitRows: Array(nodes.indices))
        telemetry.targetPassSeconds += Self.seconds(since: verifyStart)
        passLogits = logits
        // 3. Verify.
        var tree = DraftTree(rootToken: root)
        for (index, token) in drafts.enumerated() {
            tree.expand(index, draft: draftVectors[index], law: .withoutReplacement, childTokens: [token])
        }
        let result: TreeWalkResult
        if fastGreedy {
            result = try greedyChainWalk(drafts: drafts, logits: logits)
        } else {
            let targetVectors = try logits.indices.map { try process(logits[$0], path: Array(drafts.prefix($0))) }
            if pairedBlock && !settings.isGreedy && !drafts.isEmpty {
                try comparePaired(targetVectors, draftVectors, drafts)
            }
            result = try walkChain(tree, targetVectors, verifier: verifier)
            if verifier == .token || settings.isGreedy {
                recordOptimal(targetVectors, draftVectors, accepted: result.acceptedNodes.count)
            }
        }
        telemetry.countRanks(tree: tree, accepted: result.acceptedNodes)
        // 4. Commit the accepted path in both caches; the last emitted token is the next root. The draft holds rows
        // for the root and the drafts it was fed (all but the last of a full chain, unless a lookahead fed it; all of
        // a chain cut short: the stopping step fed the last one), at the target's positions.
        let accepted = result.acceptedNodes.count
        draftCache.commit(prefix: prefix, kept: Array(0...min(accepted, fed)))
        if accepted > fed { draftBacklog = [drafts[drafted - 1]] }
        return finishRound(prefix: prefix, path: Array(0...accepted), result: result, drafted: drafted, depths: drafted)
    }

    /// Temperature 0 with no penalty: the greedy walk of a chain from the target's logits directly — each row's
    /// argmax (``SamplingSettings/greedyToken(_:)``, what processing the row and walking would give), drafts kept
    /// while they equal it, then the first argmax that differs (or the bonus). α* at a reached node is 1 when the
    /// draft's choice is the target's, else 0 (both laws are point masses). Advances the round counter.
    func greedyChainWalk(drafts: [Int], logits: [[Float]]) throws -> TreeWalkResult {
        defer { step += 1 }
        var accepted = 0
        var emitted: [Int] = []
        while true {
            let best = try SamplingSettings.greedyToken(logits[accepted])
            emitted.append(best)
            if accepted < drafts.count && drafts[accepted] == best {
                accepted += 1
                continue
            }
            break
        }
        let reached = min(accepted + 1, drafts.count)
        telemetry.countOptimal((0..<reached).map { $0 < accepted ? 1 : 0 }, accepted: accepted)
        return TreeWalkResult(
            acceptedNodes: Array(0..<accepted).map { $0 + 1 }, emittedTokens: emitted,
            endedWithBonus: accepted == drafts.count)
    }
}
