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
    func plainRound() throws -> [Int] {
        let prefix = targetCache.length
        if prefix + 1 > targetCache.capacity {
            throw ModelError.contextOverflow(needed: prefix + 1, capacity: targetCache.capacity)
        }
        let verifyStart = ContinuousClock.now
        let logits = try target.forward(tokens: [root], cache: targetCache)[0]
        telemetry.targetPassSeconds += Self.seconds(since: verifyStart)
        let p = try process(logits)
        defer { step += 1 }
        // At temperature 0 no round stream is made (an enumeration sees no choice there).
        var uniforms = settings.isGreedy ? random : random.roundStream(step: step)
        let token = try settings.choose(from: p, using: &uniforms)
        draftBacklog.append(root)
        root = token
        history.append(token)
        telemetry.countRound(drafted: 0, accepted: 0, emitted: 1, depths: 0, acceptedDepths: 0)
        return [token]
    }
}
