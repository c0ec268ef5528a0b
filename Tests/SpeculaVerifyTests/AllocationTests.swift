import CAllocationCounter
import SpeculaVerify
import Testing

#if DEBUG
    /// Unoptimised builds box values in unspecialised generic code, so allocation counts mean something only in
    /// release builds (the README's test command runs those).
    let allocationCountsAreMeaningful = false
#else
    let allocationCountsAreMeaningful = specula_thread_allocation_count() >= 0
#endif

/// Verification on the hot path allocates nothing once its decision buffers exist (issue: "no heap allocation per
/// call after warm-up"). Counted by interposing malloc in the test executable, per thread.
@Suite("Allocation-free verification after warm-up")
struct AllocationTests {
    static let verifiers: [(any NodeVerifier, Int)] = [
        (TokenVerifier(), 1), (RRSVerifier(), 3), (RRSWithoutReplacementVerifier(), 3), (KSEQVerifier(), 3),
        (SpecHubVerifier(), 2), (GreedyVerifier(), 3),
    ]

    @Test(.enabled(if: allocationCountsAreMeaningful), arguments: 0..<6)
    func verifyAllocatesNothing(index: Int) throws {
        let (verifier, count) = Self.verifiers[index]
        let target = Fixture.peaked(size: 4096, seed: 1)
        let draft = Fixture.peaked(size: 4096, seed: 2)
        var drafting = SplitMix64(seed: 3)
        let tuples = try (0..<16).map { _ in try verifier.draftLaw.sample(draft: draft, count: count, using: &drafting)
        }
        var decision = NodeDecision()
        var generator = SplitMix64(seed: 4)
        var emitted = 0
        for tuple in tuples {  // warm-up: buffers sized
            if case .accepted = try verifier.verify(
                target: target, draft: draft, drafts: tuple, decision: &decision, using: &generator)
            {
                emitted += 1
            }
        }
        let before = specula_thread_allocation_count()
        for round in 0..<200 {
            let outcome = try verifier.verify(
                target: target, draft: draft, drafts: tuples[round % tuples.count], decision: &decision,
                using: &generator)
            if case .accepted = outcome { emitted += 1 }
        }
        let allocations = specula_thread_allocation_count() - before
        #expect(allocations == 0, "\(verifier.name): \(allocations) allocations in 200 calls")
        #expect(emitted > 0)
    }

    /// The counter does count: a fresh array allocates.
    @Test(.enabled(if: specula_thread_allocation_count() >= 0))
    func counterSeesAllocations() {
        let before = specula_thread_allocation_count()
        let array = [Double](repeating: 1, count: Int.random(in: 100...200))
        #expect(array.count >= 100)
        #expect(specula_thread_allocation_count() > before)
    }
}
