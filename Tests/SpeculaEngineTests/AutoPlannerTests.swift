import SpeculaEngine
import SpeculaVerify
import Testing

/// The planner behind `--verifier auto`, on hand-made costs (no model).
@Suite("Auto planner")
struct AutoPlannerTests {
    static let cost = CostModel(
        draftStep: 0.010, verify: [(nodes: 1, seconds: 0.030), (nodes: 2, seconds: 0.036), (nodes: 4, seconds: 0.044)])

    @Test func verifyTimeInterpolatesAndExtrapolates() {
        #expect(Self.cost.verifyTime(1) == 0.030)
        #expect(abs(Self.cost.verifyTime(3) - 0.040) < 1e-12)
        // Beyond the last size: the slope of the last two (4 ms per node).
        #expect(abs(Self.cost.verifyTime(6) - 0.052) < 1e-12)
    }

    @Test func acceptanceBlendsThePriorWithObservations() {
        let planner = AutoPlanner(cost: Self.cost, prior: [0.8, 0.1])
        let a = planner.acceptance(reached: [10], accepted: [5])
        // (0.8 · 8 + 5) / (8 + 10) and, unobserved, the prior.
        #expect(abs(a[0] - 11.4 / 18) < 1e-12)
        #expect(a[1] == 0.1)
    }

    @Test func cheapAccurateDraftsGiveChainsAndCostlyOnesPlainSteps() throws {
        let planner = AutoPlanner(cost: Self.cost, prior: [0.9])
        let chain = try planner.plan(acceptance: [0.9])
        #expect(chain.nodeCount > 2 && chain.children.allSatisfy { $0.count <= 1 })
        let slow = AutoPlanner(
            cost: CostModel(draftStep: 0.030, verify: [(nodes: 1, seconds: 0.030), (nodes: 2, seconds: 0.060)]),
            prior: [0.3])
        #expect(try slow.plan(acceptance: [0.3]).nodeCount == 1)
    }

    /// After falling back to plain steps the planner probes a short chain now and then, or it would never observe
    /// acceptance again.
    @Test func plainPlansAreProbedAgain() throws {
        var planner = AutoPlanner(
            cost: CostModel(draftStep: 0.030, verify: [(nodes: 1, seconds: 0.030), (nodes: 2, seconds: 0.060)]),
            prior: [0.3])
        planner.probeAfter = 2
        var periods = 0
        var sizes: [Int] = []
        for _ in 0..<6 { sizes.append(try planner.next(acceptance: [0.3], plainPeriods: &periods).nodeCount) }
        #expect(sizes == [1, 1, 3, 1, 1, 3])
        // A plan that drafts resets the count.
        var fast = AutoPlanner(cost: Self.cost, prior: [0.9])
        fast.probeAfter = 0
        periods = 5
        #expect(try fast.next(acceptance: [0.9], plainPeriods: &periods).nodeCount > 1)
        #expect(periods == 0)
    }
}
