import Foundation
import SpeculaVerify

/// The verification rule of a speculative round, by the name every front end spells it with.
public enum VerifierKind: String, Sendable, Codable, CaseIterable {
    /// Token-level verification (Leviathan et al.); at one-child tree nodes too.
    case token
    /// Block verification of a chain (Sun et al.).
    case block
    case rrs
    case rrsw
    case kseq
    case spechub
    case greedy

    /// Parses a spelling; the error lists the accepted ones.
    public init(spelling: String) throws {
        guard let kind = VerifierKind(rawValue: spelling) else {
            throw EngineError.badInput(
                field: "verifier",
                reason:
                    "unknown verifier '\(spelling)' (\(VerifierKind.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        self = kind
    }

    /// The rule a chain runs with: block verification, or token verification — which every multi-draft rule is at
    /// a node with one draft.
    public var chainRule: SpeculativeDecoder.ChainVerifier { self == .block ? .block : .token }

    /// The rule at tree nodes (nil for block verification, which verifies whole chains).
    public var nodeVerifier: (any NodeVerifier)? {
        switch self {
        case .token: return TokenVerifier()
        case .block: return nil
        case .rrs: return RRSVerifier()
        case .rrsw: return RRSWithoutReplacementVerifier()
        case .kseq: return KSEQVerifier()
        case .spechub: return SpecHubVerifier()
        case .greedy: return GreedyVerifier()
        }
    }

    /// Whether this rule serves every branching node of `tree`.
    public func serves(_ tree: TreeTopology) -> Bool {
        guard let rule = nodeVerifier else { return tree.children.allSatisfy { $0.count <= 1 } }
        return tree.children.allSatisfy { $0.count <= 1 || rule.supports(draftCount: $0.count) }
    }
}

/// The shape of what a drafter proposes each round.
public enum DraftShape: Sendable, Equatable {
    /// A chain of at most this many drafts.
    case chain(Int)
    /// A tree with branching nodes, with the spelling it was given.
    case tree(TreeTopology, spelling: String)
    /// `auto`: the fastest tree for this machine's measured costs and the acceptance seen so far, re-planned as it
    /// decodes (``AutoPlanner``).
    case auto
    /// `adaptive`, the default: every round chooses a plain step, a prompt-lookup round or a draft-model chain of
    /// some length, whichever the costs and acceptance of the rounds before make fastest (``AdaptivePolicy``).
    case adaptive

    /// The longest chain (and lookup proposal) the adaptive mode drafts.
    public static let adaptiveLongest = 8

    /// The largest chain or tree a plan may ask for: every draft is a row of the target's pass and of both caches.
    public static let maxNodes = TreeTopology.nodeLimit

    /// Parses `chain:γ`, `nary:N:D`, `drafts:N:D`, `binary:K`, `sequoia:B[:a1,a2,…]`, `eagle`, `auto`, or a JSON file of
    /// child-rank paths. A chain-shaped tree is a chain however it is spelled. `readingFiles` false refuses file
    /// paths: the server takes spellings from clients, who must not make it open files on its host. `maxNodes` bounds
    /// the tree (root included), and a Sequoia budget before it is planned: planning costs O(B²) time in the budget B
    /// (about 4 s for B = 630 in the fuzz build), which a client must not be able to ask for.
    public init(spelling: String, readingFiles: Bool = true, maxNodes: Int = DraftShape.maxNodes) throws {
        if spelling == "auto" {
            self = .auto
            return
        }
        if spelling == "adaptive" {
            self = .adaptive
            return
        }
        let topology = try DraftShape.topology(spelling, readingFiles: readingFiles, maxNodes: maxNodes)
        if topology.nodeCount > maxNodes {
            throw EngineError.badInput(
                field: "tree", reason: "tree '\(spelling)' has \(topology.nodeCount) nodes; at most \(maxNodes) here")
        }
        if topology.children.allSatisfy({ $0.count <= 1 }) {
            self = .chain(topology.depth)
        } else {
            self = .tree(topology, spelling: spelling)
        }
    }

    /// The spelling (`chain:5`, the tree's own, `auto`).
    public var spelling: String {
        switch self {
        case .chain(let length): return "chain:\(length)"
        case .tree(_, let spelling): return spelling
        case .auto: return "auto"
        case .adaptive: return "adaptive"
        }
    }

    /// Rows this shape adds to a target pass at most (the root included).
    public var nodeCount: Int {
        switch self {
        case .chain(let length): return length + 1
        case .tree(let topology, _): return topology.nodeCount
        case .auto: return AutoPlanner.defaultMaxNodes
        case .adaptive: return Self.adaptiveLongest + 1
        }
    }

    static func topology(_ spec: String, readingFiles: Bool, maxNodes: Int) throws -> TreeTopology {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let expected =
            "expected chain:γ, nary:N:D, drafts:N:D, binary:K, sequoia:B[:a1,a2,…], eagle, auto or a JSON file"
        func number(_ index: Int) throws -> Int {
            guard index < parts.count, let value = Int(parts[index]) else {
                throw EngineError.badInput(field: "tree", reason: "bad tree '\(spec)': \(expected)")
            }
            return value
        }
        func arity(_ count: Int) throws {
            if parts.count != count {
                throw EngineError.badInput(field: "tree", reason: "bad tree '\(spec)': \(expected)")
            }
        }
        // A named shape's size is known from its numbers: refuse one past `maxNodes` before building it (building
        // costs about nodes × depth, so `nary:1:3665` took over 10 s in the fuzz build only to be refused after).
        func bounded(_ nodes: (branching: Int, depth: Int)) throws {
            let (branching, depth) = nodes
            guard branching >= 1, depth >= 1 else { return }  // the builders name what is wrong
            var total = 1
            var level = 1
            for _ in 0..<depth {
                let (next, overflow) = level.multipliedReportingOverflow(by: branching)
                if overflow || total > maxNodes - next {
                    throw EngineError.badInput(
                        field: "tree",
                        reason: "tree '\(spec)' has more than \(maxNodes) nodes; at most \(maxNodes) here")
                }
                level = next
                total += level
            }
        }
        do {
            switch parts.first {
            case "chain":
                try arity(2)
                try bounded((1, try number(1)))
                return try TreeTopology.chain(try number(1))
            case "drafts":
                try arity(3)
                let (count, depth) = (try number(1), try number(2))
                if count >= 1 && depth >= 1 {
                    let (drafts, overflow) = count.multipliedReportingOverflow(by: depth)
                    if overflow || drafts >= maxNodes {
                        throw EngineError.badInput(
                            field: "tree",
                            reason: "tree '\(spec)' has more than \(maxNodes) nodes; at most \(maxNodes) here")
                    }
                }
                return try TreeTopology.sequences(count: count, depth: depth)
            case "nary":
                try arity(3)
                try bounded((try number(1), try number(2)))
                return try TreeTopology.complete(branching: try number(1), depth: try number(2))
            case "binary":
                try arity(2)
                let levels = try number(1)
                if levels >= 2 { try bounded((2, levels - 1)) }
                return try TreeTopology.binary(levels: levels)
            case "eagle":
                try arity(1)
                return try TreeTopology.eagle()
            case "sequoia":
                if parts.count > 3 { try arity(3) }
                let budget = try number(1)
                if budget > maxNodes {
                    throw EngineError.badInput(
                        field: "tree", reason: "bad tree '\(spec)': a Sequoia budget of at most \(maxNodes) nodes here")
                }
                var acceptance = SequoiaDefaults.acceptance
                if parts.count == 3 {
                    let values = parts[2].split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
                    guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
                        throw EngineError.badInput(
                            field: "tree",
                            reason: "bad tree '\(spec)': sequoia:BUDGET[:a1,a2,…] takes a comma-separated vector")
                    }
                    acceptance = values.compactMap { $0 }
                    if acceptance.count > SequoiaDefaults.maxRanks {
                        throw EngineError.badInput(
                            field: "tree",
                            reason:
                                "bad tree '\(spec)': at most \(SequoiaDefaults.maxRanks) acceptance values (child ranks)"
                        )
                    }
                }
                let planner = try SequoiaPlanner(acceptance: acceptance, maxNodes: budget, maxLevels: min(budget, 12))
                return try planner.tree(nodes: budget, levels: min(budget, 12))
            default:
                guard readingFiles, spec.hasSuffix(".json") || FileManager.default.fileExists(atPath: spec) else {
                    let shapes =
                        readingFiles ? expected : expected.replacingOccurrences(of: " or a JSON file", with: "")
                    throw EngineError.badInput(field: "tree", reason: "bad tree '\(spec)': \(shapes)")
                }
                return try TreeTopology.json(try treeFile(spec))
            }
        } catch let error as VerifyError {
            throw EngineError.badInput(field: "tree", reason: "bad tree '\(spec)': \(error)")
        }
    }
}

extension DraftShape {
    /// The largest tree file read: 4,096 paths of a few dozen ranks fit many times over.
    static let treeFileLimit = 4 << 20

    /// A tree file's bytes: a regular file (not a device or a pipe, which may never end) of at most
    /// ``treeFileLimit`` bytes.
    static func treeFile(_ path: String) throws -> Data {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let attributes, let size = (attributes[.size] as? NSNumber)?.intValue,
            attributes[.type] as? FileAttributeType == .typeRegular
        else {
            throw EngineError.badInput(field: "tree", reason: "cannot read the tree file '\(path)': not a regular file")
        }
        if size > treeFileLimit {
            throw EngineError.badInput(
                field: "tree", reason: "the tree file '\(path)' has \(size) bytes; at most \(treeFileLimit)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EngineError.badInput(field: "tree", reason: "cannot read the tree file '\(path)'")
        }
        return data
    }
}

/// Where the drafts come from.
public enum Drafter: Sendable, Equatable {
    /// No drafts: plain decoding, one target pass per token.
    case none
    /// The draft model given to the session.
    case model
    /// Prompt lookup: the tokens that followed the latest earlier occurrence of the text's last n-gram (longest
    /// first, down to one token); no model.
    case ngram(longest: Int)
    /// Suffix drafting: a tree of at most `nodes` nodes, the continuations after every earlier occurrence of the
    /// text's longest repeated suffix (up to `longest` tokens), ranked by how often each occurred
    /// (``SuffixDrafter``), verified with ``CandidateVerifier``; no model.
    case suffix(longest: Int, nodes: Int)
}

/// When a generation ends.
public struct StopConditions: Sendable, Equatable {
    /// Tokens generated at most (an end-of-generation token counts).
    public var maxTokens: Int
    /// Texts that end the generation where they first appear in the output (matched across token boundaries; the
    /// matched text and what follows it are not emitted).
    public var sequences: [String]
    /// Stop at the model's end-of-generation tokens (not emitted as text).
    public var atEndOfGeneration: Bool

    public init(maxTokens: Int, sequences: [String] = [], atEndOfGeneration: Bool = true) {
        self.maxTokens = maxTokens
        self.sequences = sequences
        self.atEndOfGeneration = atEndOfGeneration
    }
}

/// One decoding, described whole: plain, or speculative with a drafter, a draft shape and a verifier; the sampling
/// settings; the stop conditions. What the CLI's flags, a benchmark's method spelling and a server request all
/// become, validated in one place (``validate(hasDraftModel:)``).
public struct DecodingPlan: Sendable, Equatable {
    public var drafter: Drafter
    public var shape: DraftShape
    /// The rule at temperature > 0 (at temperature 0 every verifier is the greedy walk, whose output is plain
    /// greedy decoding's).
    public var verifier: VerifierKind
    public var sampling: SamplingSettings
    public var stop: StopConditions
    public var seed: UInt64
    /// Chains with a draft model: prompt-lookup proposals fed with each draft pass (0: off).
    public var lookahead: Int
    /// With a draft model: rounds drafted by prompt lookup alone when the text ends with a repeated n-gram of at
    /// least this many tokens (0: off).
    public var lookup: Int
    /// Chains: stop drafting when the draft's top probability falls below this (0: always the full chain).
    public var draftStop: Double
    /// A reduced draft head: the first N token ids, the control tokens and the prompt's tokens (0: all).
    public var draftVocabulary: Int
    /// Trees: compute α* at every reached node (chains always do).
    public var treeOptimum: Bool
    /// Chains at T > 0: the paired token-vs-block comparison of every round's drafts.
    public var pairedBlock: Bool
    /// Plain decoding: each event also carries the target's processed distribution at each emitted token (what the
    /// token was drawn from), for acceptance measurements and log-probabilities.
    public var recordDistributions = false
    /// The adaptive mode: the most nodes of a suffix tree it may verify where the text continued several ways
    /// (``AdaptivePolicy/maxTree``; 0: lookup chains only).
    public var suffixTrees = DecodingPlan.suffixTreesDefault

    public init(
        drafter: Drafter = .none, shape: DraftShape = .chain(4), verifier: VerifierKind = .token,
        sampling: SamplingSettings = .greedy, stop: StopConditions = StopConditions(maxTokens: 128), seed: UInt64 = 0,
        lookahead: Int = 0, lookup: Int = 0, draftStop: Double = 0, draftVocabulary: Int = 0,
        treeOptimum: Bool = false, pairedBlock: Bool = false
    ) {
        self.drafter = drafter
        self.shape = shape
        self.verifier = verifier
        self.sampling = sampling
        self.stop = stop
        self.seed = seed
        self.lookahead = lookahead
        self.lookup = lookup
        self.draftStop = draftStop
        self.draftVocabulary = draftVocabulary
        self.treeOptimum = treeOptimum
        self.pairedBlock = pairedBlock
    }

    /// Plain decoding with these settings.
    public static func plain(
        sampling: SamplingSettings = .greedy, stop: StopConditions = StopConditions(maxTokens: 128), seed: UInt64 = 0
    ) -> DecodingPlan {
        DecodingPlan(drafter: .none, sampling: sampling, stop: stop, seed: seed)
    }

    public var isPlain: Bool { drafter == .none }

    /// The same plan without drafts (for side-by-side runs).
    public var plainCounterpart: DecodingPlan { .plain(sampling: sampling, stop: stop, seed: seed) }

    /// Upper bounds of the numeric settings (each a row of the target's pass or a table the size of the text).
    public static let maxLookahead = 64
    public static let maxNGram = 64
    /// The suffix drafter's node budget when `suffix` is spelled without one.
    public static let suffixNodesDefault = 8
    /// The adaptive mode's suffix-tree budget (``suffixTrees``) when not given.
    public static let suffixTreesDefault = 8

    /// The cross-setting rules; throws ``EngineError/badInput(field:reason:)`` naming the setting.
    public func validate(hasDraftModel: Bool) throws {
        func bad(_ field: String, _ reason: String) -> EngineError { .badInput(field: field, reason: reason) }
        do { try sampling.validate() } catch { throw bad("sampling", "\(error)") }
        if stop.maxTokens < 1 { throw bad("max-tokens", "must be ≥ 1 (got \(stop.maxTokens))") }
        if stop.sequences.contains(where: \.isEmpty) { throw bad("stop", "a stop sequence must not be empty") }
        if lookahead < 0 || lookahead > Self.maxLookahead {
            throw bad("lookahead", "must be in 0…\(Self.maxLookahead) (got \(lookahead))")
        }
        if lookup < 0 || lookup > Self.maxNGram { throw bad("lookup", "must be in 0…\(Self.maxNGram) (got \(lookup))") }
        if draftVocabulary < 0 { throw bad("draft-vocabulary", "must be ≥ 0 (got \(draftVocabulary))") }
        if !(0...1).contains(draftStop) { throw bad("draft-stop", "must be in [0, 1] (got \(draftStop))") }
        if suffixTrees < 0 || suffixTrees >= DraftShape.maxNodes {
            throw bad("suffix-trees", "must be in 0…\(DraftShape.maxNodes - 1) (got \(suffixTrees))")
        }
        if suffixTrees != Self.suffixTreesDefault && (shape != .adaptive || drafter == .none) {
            throw bad("suffix-trees", "only the adaptive mode verifies suffix trees beside its other rounds")
        }
        switch drafter {
        case .none:
            return
        case .ngram(let longest):
            if longest < 1 || longest > Self.maxNGram { throw bad("ngram", "must be in 1…\(Self.maxNGram)") }
            if lookahead > 0 || lookup > 0 || draftVocabulary > 0 || draftStop > 0 {
                throw bad("drafter", "lookahead, lookup, draft-stop and draft-vocabulary need a draft model")
            }
            switch shape {
            case .chain, .adaptive: break
            default: throw bad("tree", "the n-gram drafter drafts chains")
            }
        case .suffix(let longest, let nodes):
            if longest < 1 || longest > Self.maxNGram { throw bad("ngram", "must be in 1…\(Self.maxNGram)") }
            if nodes < 1 || nodes >= DraftShape.maxNodes {
                throw bad("drafter", "suffix:N takes 1…\(DraftShape.maxNodes - 1) nodes (got \(nodes))")
            }
            if lookahead > 0 || lookup > 0 || draftVocabulary > 0 || draftStop > 0 {
                throw bad("drafter", "lookahead, lookup, draft-stop and draft-vocabulary need a draft model")
            }
            guard case .chain = shape else { throw bad("tree", "the suffix drafter builds its own trees") }
            if !sampling.isGreedy && verifier != .token {
                throw bad("verifier", "the suffix drafter's trees are verified by the candidate rule: give no verifier")
            }
        case .model:
            if !hasDraftModel { throw bad("draft", "the plan drafts with a model: give a draft model") }
        }
        switch shape {
        case .chain(let length):
            if length < 1 || length >= DraftShape.maxNodes {
                throw bad("depth", "must be in 1…\(DraftShape.maxNodes - 1) (got \(length))")
            }
        case .tree(let topology, _):
            if verifier == .block { throw bad("verifier", "block verifies chains, not trees") }
            if verifier == .token || !verifier.serves(topology) {
                throw bad("verifier", "\(verifier) does not verify every node of tree '\(shape.spelling)'")
            }
        case .auto:
            if drafter != .model { throw bad("tree", "auto plans draft-model trees: it needs a draft model") }
        case .adaptive:
            if !sampling.isGreedy && ![.token, .block].contains(verifier) {
                throw bad("verifier", "the adaptive mode drafts chains: token or block verification")
            }
        }
    }

    /// The method's spelling: `plain`, `ngram`, `SHAPE[+lookahead:N][+lookup:N][+stop:P]/VERIFIER`.
    public var spelling: String { drafter == .model ? variant + "/" + verifier.rawValue : variant }

    /// The spelling without the verifier: `plain`, `ngram`, `SHAPE[+lookahead:N][+lookup:N][+stop:P]`.
    public var variant: String {
        switch drafter {
        case .none: return "plain"
        case .ngram: return shape == .adaptive ? "ngram-adaptive" + treesModifier : "ngram"
        case .suffix(_, let nodes): return nodes == Self.suffixNodesDefault ? "suffix" : "suffix:\(nodes)"
        case .model:
            return shape.spelling + (lookahead > 0 ? "+lookahead:\(lookahead)" : "")
                + (lookup > 0 ? "+lookup:\(lookup)" : "") + (draftStop > 0 ? "+stop:\(draftStop)" : "")
                + (shape == .adaptive ? treesModifier : "")
        }
    }

    private var treesModifier: String { suffixTrees == Self.suffixTreesDefault ? "" : "+trees:\(suffixTrees)" }

    /// Parses a method as the benchmarks spell it — `plain`, `ngram[:N]` (prompt lookup of n-grams up to N = 3
    /// tokens long, chains of at most 5), `ngram-adaptive` (lookup rounds or plain steps, whichever is faster),
    /// `adaptive[+lookahead[:N]]` (the default mode; `+trees:N` on it or on `ngram-adaptive` caps its suffix trees at N
    /// nodes, 0 for none),
    /// `SHAPE[+lookahead[:N]][+lookup[:N]][+stop:P][/VERIFIER]` (`chain:4/block`, `chain:5+lookahead+lookup/token`,
    /// `binary:3/spechub`) — on top of `base` (sampling, stop conditions, seed).
    public init(method text: String, base: DecodingPlan = DecodingPlan()) throws {
        self = base
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.count > 2 { throw EngineError.badInput(field: "method", reason: "method '\(text)': one '/' at most") }
        let pieces = parts[0].split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        let head = pieces[0]
        verifier = try parts.count > 1 ? VerifierKind(spelling: parts[1]) : .token
        lookahead = 0
        lookup = 0
        draftStop = 0
        suffixTrees = Self.suffixTreesDefault
        var others = 0
        for extra in pieces.dropFirst() {
            let fields = extra.split(separator: ":", maxSplits: 1).map(String.init)
            if fields.first == "stop", fields.count == 2, let p = Double(fields[1]), p > 0, p <= 1 {
                draftStop = p
                others += 1
                continue
            }
            if fields.first == "trees" {
                guard fields.count == 2, let nodes = Int(fields[1]), (0..<DraftShape.maxNodes).contains(nodes),
                    head == "adaptive" || head == "ngram-adaptive"
                else {
                    throw EngineError.badInput(
                        field: "method",
                        reason:
                            "method '\(text)': +trees:N (0…\(DraftShape.maxNodes - 1) nodes) goes on adaptive or ngram-adaptive"
                    )
                }
                suffixTrees = nodes
                continue
            }
            others += 1
            let value = fields.count > 1 ? Int(fields[1]) : 2
            guard let value, (1...Self.maxNGram).contains(value),
                fields.first == "lookahead" || fields.first == "lookup"
            else {
                throw EngineError.badInput(
                    field: "method",
                    reason: "method '\(text)': unknown modifier '+\(extra)' (+lookahead[:N], +lookup[:N], +stop:P)")
            }
            if fields[0] == "lookahead" { lookahead = value } else { lookup = value }
        }
        if head == "plain" {
            drafter = .none
            if pieces.count > 1 || parts.count > 1 {
                throw EngineError.badInput(field: "method", reason: "method '\(text)': plain takes no modifier")
            }
            return
        }
        if head == "ngram-adaptive" {
            if others > 0 || parts.count > 1 {
                throw EngineError.badInput(
                    field: "method", reason: "method '\(text)': ngram-adaptive takes no modifier but +trees:N")
            }
            drafter = .ngram(longest: 3)
            shape = .adaptive
            return
        }
        if head == "ngram" || head.hasPrefix("ngram:") {
            let longest = head == "ngram" ? 3 : Int(head.dropFirst("ngram:".count))
            guard let longest else {
                throw EngineError.badInput(field: "method", reason: "method '\(text)': ngram[:N] takes a number")
            }
            drafter = .ngram(longest: longest)
            if pieces.count > 1 {
                throw EngineError.badInput(
                    field: "method", reason: "method '\(text)': +lookahead, +lookup and +stop need the draft model")
            }
            // The benchmarks' n-gram method: chains of at most 5 proposed tokens.
            shape = .chain(5)
            return
        }
        if head == "suffix" || head.hasPrefix("suffix:") {
            let nodes = head == "suffix" ? Self.suffixNodesDefault : Int(head.dropFirst("suffix:".count))
            guard let nodes, pieces.count == 1, parts.count == 1 else {
                throw EngineError.badInput(
                    field: "method", reason: "method '\(text)': suffix[:NODES] takes a number and no modifier")
            }
            // Prompt lookup's n-grams (up to 3 tokens) and depth (5), as a tree of NODES nodes.
            drafter = .suffix(longest: 3, nodes: nodes)
            shape = .chain(5)
            return
        }
        drafter = .model
        shape = try DraftShape(spelling: head)
    }

    /// The plan the flags of `specula generate` and `specula audit` describe: a draft model (`hasDraftModel`), or
    /// `drafter: "ngram"`; a shape from `tree` (or `drafts` chains of `depth`, or a chain of `depth`; with none of
    /// them, the adaptive mode); a verifier. Validated (``validate(hasDraftModel:)``).
    public init(
        hasDraftModel: Bool, drafter drafterName: String?, ngram: Int, depth givenDepth: Int?, drafts: Int,
        tree: String?, verifier verifierName: String, base: DecodingPlan
    ) throws {
        let depth = givenDepth ?? 4
        self = base
        verifier = verifierName == "auto" ? .greedy : try VerifierKind(spelling: verifierName)
        switch drafterName {
        case nil: drafter = hasDraftModel ? .model : .none
        case "model": drafter = .model
        case "ngram":
            if hasDraftModel { throw EngineError.badInput(field: "drafter", reason: "--drafter ngram takes no draft") }
            drafter = .ngram(longest: ngram)
        case let name? where name == "suffix" || name.hasPrefix("suffix:"):
            if hasDraftModel { throw EngineError.badInput(field: "drafter", reason: "--drafter suffix takes no draft") }
            let nodes = name == "suffix" ? Self.suffixNodesDefault : Int(name.dropFirst("suffix:".count))
            guard let nodes else {
                throw EngineError.badInput(field: "drafter", reason: "'\(name)': suffix:N takes a number of nodes")
            }
            drafter = .suffix(longest: ngram, nodes: nodes)
        case let other?:
            throw EngineError.badInput(
                field: "drafter", reason: "unknown drafter '\(other)' (model, ngram, suffix[:NODES])")
        }
        if depth < 1 || depth >= DraftShape.maxNodes {
            throw EngineError.badInput(field: "depth", reason: "must be in 1…\(DraftShape.maxNodes - 1) (got \(depth))")
        }
        if drafts < 1 || drafts >= DraftShape.maxNodes {
            throw EngineError.badInput(
                field: "drafts", reason: "must be in 1…\(DraftShape.maxNodes - 1) (got \(drafts))")
        }
        if verifierName == "auto" {
            if tree != nil || drafts > 1 {
                throw EngineError.badInput(field: "verifier", reason: "auto chooses the tree: drop the tree and drafts")
            }
            shape = .auto
        } else if let tree {
            if drafts > 1 { throw EngineError.badInput(field: "drafts", reason: "give drafts or a tree, not both") }
            shape = try DraftShape(spelling: tree)
        } else if drafts > 1 {
            shape = try DraftShape(spelling: "drafts:\(drafts):\(depth)")
        } else if givenDepth != nil || base.lookahead > 0 || base.lookup > 0 || base.draftStop > 0 {
            shape = .chain(depth)
        } else {
            shape = .adaptive
        }
        // The suffix drafter's trees are its own: `depth` bounds their levels (5, as prompt lookup's chains, when
        // not given).
        if case .suffix = drafter, case .chain = shape {
            shape = .chain(givenDepth ?? 5)
        } else if case .suffix = drafter, shape == .adaptive {
            shape = .chain(givenDepth ?? 5)
        }
        try validate(hasDraftModel: hasDraftModel)
    }
}

/// The per-child acceptance vector `sequoia:BUDGET` plans with when none is given.
public enum SequoiaDefaults {
    /// Measured on the pinned pair: a_r, the fraction of rounds in which the walk accepted the draft of child rank
    /// r at a root with 8 drafts drawn without replacement (`--tree nary:8:1 --verifier rrsw --temperature 0.6`,
    /// `childAcceptance` in `--stats`; 3 chat prompts, 138 rounds; ranks 5–8 pooled, being rare).
    public static let acceptance: [Double] = [0.83, 0.08, 0.03, 0.015, 0.004, 0.004, 0.004, 0.004]
    /// The longest acceptance vector a `sequoia:BUDGET:a1,…` spelling takes: planning is linear in the ranks, and
    /// ranks past the first few are accepted too rarely to shape a tree.
    public static let maxRanks = 32
}
