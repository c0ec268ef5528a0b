import SpeculaKernels
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

extension SpeculativeDecoder {
    /// The longest n-gram looked up with a draft model (the lookahead's proposals; lookup rounds, where
    /// ``lookupMatch`` may ask for more).
    static let ngramLongestDefault = 3

    var ngramLongest: Int { ngram > 0 ? ngram : Self.ngramLongestDefault }

    /// An n-gram round: propose a continuation from the text so far (or take `proposal`), one target pass over the
    /// root and the proposal, verify (point-mass draft vectors), commit. With no earlier occurrence the round is
    /// one plain step. With a draft model (a lookup round) the draft is not run: the root and the accepted tokens
    /// join the rows it will be fed next.
    func ngramRound(proposal given: [Int]? = nil) throws -> [Int] {
        let roundStart = ContinuousClock.now
        defer { telemetry.roundSeconds += Self.seconds(since: roundStart) }
        let prefix = targetCache.length
        let room = targetCache.capacity - prefix - 1
        if room < 0 { throw ModelError.contextOverflow(needed: prefix + 1, capacity: targetCache.capacity) }
        let draftStart = ContinuousClock.now
        let proposal = given ?? NGramDrafter.propose(history: history, longest: ngram, count: min(depth, room))
        telemetry.draftSeconds += Self.seconds(since: draftStart)
        let nodes = [root] + proposal
        let verifyStart = ContinuousClock.now
        let logits = try target.forward(tokens: nodes, cache: targetCache, logitRows: Array(nodes.indices))
        telemetry.targetPassSeconds += Self.seconds(since: verifyStart)
        passLogits = logits
        if adaptive != nil { adaptive?.observeConfidence(Double(Ops.maximumProbability(logits[0]))) }
        if fastGreedy {
            let result = try greedyChainWalk(drafts: proposal, logits: logits)
            return finishLookup(prefix: prefix, proposal: proposal, result: result)
        }
        let targetVectors = try logits.indices.map { try process(logits[$0], path: Array(proposal.prefix($0))) }
        var tree = DraftTree(rootToken: root)
        for (index, token) in proposal.enumerated() {
            var pointMass = [Double](repeating: 0, count: target.vocabularySize)
            pointMass[token] = 1
            tree.expand(index, draft: pointMass, law: .withoutReplacement, childTokens: [token])
        }
        // With nothing proposed the walk just samples the root's target distribution (block verification needs a
        // draft, token verification of an empty chain is that sample).
        let result = try walkChain(tree, targetVectors, verifier: proposal.isEmpty ? .token : verifier)
        if verifier == .token || settings.isGreedy {
            // α* against a point mass on x is p(x).
            let reached = min(result.acceptedNodes.count + 1, proposal.count)
            telemetry.countOptimal(
                (0..<reached).map { targetVectors[$0][proposal[$0]] }, accepted: result.acceptedNodes.count)
        }
        return finishLookup(prefix: prefix, proposal: proposal, result: result)
    }

    /// The end of an n-gram round: the draft model (if any) is owed the root and the accepted tokens.
    private func finishLookup(prefix: Int, proposal: [Int], result: TreeWalkResult) -> [Int] {
        let accepted = result.acceptedNodes.count
        if draft != nil {
            draftBacklog += [root] + proposal.prefix(accepted)
            telemetry.lookupRounds += 1
            telemetry.lookupAccepted += accepted
        }
        return finishRound(
            prefix: prefix, path: Array(0...accepted), result: result, drafted: proposal.count, depths: proposal.count)
    }

    /// A round without drafts (a one-node tree, which ``AutoPlanner`` picks when speculation does not pay): one
    /// target step. The draft model is not run; the root joins the rows it will be fed when drafting resumes.
    ///
    /// `fed`: the root's logits when the root was already fed (the prompt pass's last row): no pass is run.
    func plainRound(fed: [Float]? = nil) throws -> [Int] {
        let logits: [Float]
        if let fed {
            logits = fed
        } else {
            let prefix = targetCache.length
            if prefix + 1 > targetCache.capacity {
                throw ModelError.contextOverflow(needed: prefix + 1, capacity: targetCache.capacity)
            }
            let verifyStart = ContinuousClock.now
            logits = try target.forward(tokens: [root], cache: targetCache)[0]
            telemetry.targetPassSeconds += Self.seconds(since: verifyStart)
        }
        if adaptive != nil { adaptive?.observeConfidence(Double(Ops.maximumProbability(logits))) }
        defer { step += 1 }
        let token: Int
        if fastGreedy {
            token = try SamplingSettings.greedyToken(logits)
        } else {
            let p = try process(logits)
            // At temperature 0 no round stream is made (an enumeration sees no choice there).
            var uniforms = settings.isGreedy ? random : random.roundStream(step: step)
            token = try settings.choose(from: p, using: &uniforms)
        }
        if draft != nil { draftBacklog.append(root) }
        root = token
        history.append(token)
        if recordEmittedLogits { emittedLogits = [logits] }
        telemetry.countRound(drafted: 0, accepted: 0, emitted: 1, depths: 0, acceptedDepths: 0)
        telemetry.plainRounds += 1
        return [token]
    }

    /// A round of the default mode: ``adaptive`` chooses a plain step, a lookup round (the proposal cut to the
    /// length it picks), a suffix tree (cut to the nodes it picks) or a draft-model chain from what earlier rounds
    /// cost and accepted, and learns from this one.
    ///
    /// The lookup proposal and the suffix tree follow the same match (the text's longest earlier-seen suffix of
    /// up to ``ngramLongest`` tokens); the tree is looked for only when that suffix occurred more than once, and
    /// both are priced by the shares of those occurrences each continuation covers.
    func adaptiveRound() throws -> [Int] {
        guard let policy = adaptive else { throw ModelError.invalid(path: "adaptive", reason: "no policy") }
        let room = targetCache.capacity - targetCache.length - 1
        let draftStart = ContinuousClock.now
        let match = NGramDrafter.match(
            history: history, longest: ngramLongest, count: min(policy.maxLookup, max(0, room)))
        // With suffix trees off, lookup chains are priced as geometric chains (no shares), as before trees existed.
        let trees = policy.maxTree > 1
        let agreement =
            trees ? SuffixDrafter.agreement(history: history, length: match.length, chain: match.proposal) : [0]
        let lookupShares =
            trees
            ? agreement.indices.dropFirst().map { Double(agreement[$0]) / Double(max(1, agreement[$0 - 1])) } : nil
        let tree =
            trees && agreement[0] > 1 && room > 1
            ? SuffixDrafter.propose(
                history: history, longest: ngramLongest, nodes: min(policy.maxTree, room), depth: policy.maxLookup)
            : nil
        let proposeSeconds = Self.seconds(since: draftStart)
        let backlog = draftBacklog.count
        // In a batch: the rows and generations that shared this generation's last target pass (a policy with fixed
        // costs plans from acceptance alone). Another member's prompt fed in pieces passes once: priced as if it
        // stayed, it made the next pass look so long that a chain's draft passes, which every member waits
        // through, looked nearly free.
        let shared = policy.fixedCosts ? nil : targetCache.lastPass
        let otherRows = shared?.otherDecodingRows ?? 0
        // The first round after a prompt pass that fed the root is a plain step from that pass's last row.
        let fed = promptRootLogits
        let (choice, rate) =
            fed != nil
            ? (AdaptivePolicy.Choice.plain, 0)
            : policy.plan(
                proposal: match.proposal.count, matchLength: match.length, backlog: backlog,
                generated: history.count - promptLength, remaining: tokensLeft, room: room,
                otherRows: otherRows, otherMembers: shared.map { $0.segments - 1 } ?? 0, lookupShares: lookupShares,
                tree: tree)
        targetCache.lastPass = nil
        // The proposals' scan counts as drafting time, but not as the round's (which prices a chain's draft steps).
        telemetry.draftSeconds += proposeSeconds
        let before = telemetry
        let emitted: [Int]
        // What the copied proposal covered on the levels the walk reached (lookup and suffix rounds).
        var offered: Double?
        switch choice {
        case .plain:
            let start = ContinuousClock.now
            emitted = try plainRound(fed: fed)
            telemetry.roundSeconds += Self.seconds(since: start)
        case .lookup(let k):
            emitted = try ngramRound(proposal: Array(match.proposal.prefix(k)))
            let accepted = telemetry.acceptedTokens - before.acceptedTokens
            offered = lookupShares?.prefix(min(accepted + 1, k)).reduce(0, +)
        case .suffix(let k):
            guard let tree else { throw ModelError.invalid(path: "adaptive", reason: "a suffix tree without a match") }
            let cut = tree.pruned(to: k)
            var acceptedNodes: [Int] = []
            emitted = try suffixRound(proposal: cut, acceptedNodes: &acceptedNodes)
            offered = AdaptivePolicy.offered(tree: cut, acceptedNodes: acceptedNodes)
        case .chain(let gamma):
            guard let draft, let draftCache else {
                throw ModelError.invalid(path: "adaptive", reason: "a chain was chosen without a draft model")
            }
            if let tokens = lazyDraftVocabulary {
                let start = ContinuousClock.now
                draftOutputHead = try draft.makeOutputHead(tokens: tokens)
                lazyDraftVocabulary = nil
                telemetry.draftSeconds += Self.seconds(since: start)
            }
            chainRate = rate
            chainOtherRows = otherRows
            defer { chainRate = 0 }
            emitted = try chainRound(draft: draft, draftCache: draftCache, length: gamma)
        }
        let drafted = telemetry.draftedTokens - before.draftedTokens
        // The round may have updated the policy (the target's confidence): learn on top of that.
        // The pass's cost is that of all its rows (this generation's and, in a batch, the others').
        // In a batch, the pass's own seconds: this generation's wait for the others to line up (their drafting
        // included) is not what a pass of these rows costs.
        let passRows = targetCache.lastPass?.rows ?? (drafted + 1)
        let passSeconds = targetCache.lastPass?.seconds ?? (telemetry.targetPassSeconds - before.targetPassSeconds)
        adaptive?.observe(
            choice, rows: passRows, targetSeconds: passSeconds,
            draftSeconds: telemetry.draftSeconds - before.draftSeconds, backlog: backlog, drafted: drafted,
            accepted: telemetry.acceptedTokens - before.acceptedTokens, matchLength: match.length,
            confidences: chainConfidences, offered: offered)
        if let observer = roundObserver, let policy = adaptive {
            observer(
                AdaptiveRound(
                    choice: choice.description, targetSeconds: telemetry.targetPassSeconds - before.targetPassSeconds,
                    draftSeconds: telemetry.draftSeconds - before.draftSeconds,
                    verifySeconds: telemetry.verificationSeconds - before.verificationSeconds, backlog: backlog,
                    drafted: drafted,
                    accepted: telemetry.acceptedTokens - before.acceptedTokens,
                    targetConfidence: policy.targetConfidence ?? 0, targetStep: policy.targetStep ?? 0,
                    targetPerRow: policy.targetPerRow ?? 0, modelAcceptance: policy.model.value))
        }
        return emitted
    }
}

/// One round of the adaptive mode as ``SpeculativeDecoder/roundObserver`` sees it: the kind chosen, what it cost
/// and kept, and the policy's estimates after learning from it (`specula generate --trace`).
public struct AdaptiveRound: Sendable, Codable, Equatable {
    public var choice: String
    public var targetSeconds: Double
    public var draftSeconds: Double
    /// The processing of the round's rows after the target's pass (distributions, verification, commit).
    public var verifySeconds: Double = 0
    /// Rows the draft caught up on before the round (the prompt's, at the first chain).
    public var backlog: Int
    public var drafted: Int
    public var accepted: Int
    public var targetConfidence: Double
    public var targetStep: Double
    public var targetPerRow: Double
    public var modelAcceptance: Double
}
