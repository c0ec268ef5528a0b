import Foundation
import SpeculaKernels
import SpeculaModels
import SpeculaTestSupport
import Testing

/// The weight cache: a model loaded from it is the model packed at load, bit for bit, and a cache that is broken,
/// stale, incomplete or cannot be written costs a packing, never a wrong or failed load.
@Suite("Weight cache", .enabled(if: Models.present || Models.required))
struct WeightCacheTests {
    static func path(_ name: String) -> String { Models.directory + "/" + (Models.files[name] ?? "") }

    /// A fresh directory for one test's cache files, removed after `body`.
    static func withDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "specula-weights-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try body(directory)
    }

    /// Logits of every position of a short prompt, and the next-token rows of a 5-token batch after it (a
    /// batched pass reads the packed matrices with several rows).
    static func logits(_ model: LoadedModel) throws -> [[Float]] {
        let transformer = model.transformer
        let cache = transformer.makeCache(capacity: 64)
        let prompt = model.tokenizer.encode("def fibonacci(n):\n    if n < 2:")
        var rows = try transformer.forward(tokens: prompt, cache: cache, logitRows: Array(prompt.indices))
        rows += try transformer.forward(tokens: [13, 220, 470, 11, 308], cache: cache, logitRows: Array(0..<5))
        return rows
    }

    /// Every packed matrix's bytes and every re-quantized matrix's rows, by name.
    static func bytes(_ model: LoadedModel) -> [String: UnsafeRawBufferPointer] {
        var result: [String: UnsafeRawBufferPointer] = [:]
        for product in model.transformer.packedProducts {
            guard let packed = product.matrix.packed else { continue }
            result[product.name] = packed.bytes
            if product.matrix.type != product.storedType {
                let rows = product.matrix
                result[product.name + " rows"] = UnsafeRawBufferPointer(
                    start: rows.data, count: rows.rowBytes * rows.rowCount)
            }
        }
        return result
    }

    /// Whether two sets of logits are equal bit for bit (a Bool, so that a failure does not print them).
    static func same(_ a: [[Float]], _ b: [[Float]]) -> Bool {
        a.count == b.count
            && zip(a, b).allSatisfy {
                $0.count == $1.count && zip($0, $1).allSatisfy { $0.bitPattern == $1.bitPattern }
            }
    }

    /// The draft loaded into an empty cache directory, with the file it wrote and that file's key (nil, with the
    /// issue recorded, when it wrote none).
    static func writtenDraftCache(in directory: String) throws -> (LoadedModel, String, String)? {
        let path = Self.path("draft")
        let model = try LoadedModel(path: path, weightCache: .directory(directory))
        guard case .written(let file) = model.weightCacheStatus,
            let key = WeightCache.key(modelPath: path, requantization: nil)
        else {
            Issue.record("\(model.weightCacheStatus)")
            return nil
        }
        return (model, file, key)
    }

    /// The names whose bytes differ between two models' matrices (or that one of them lacks).
    static func differences(_ a: LoadedModel, _ b: LoadedModel) -> [String] {
        let (x, y) = (bytes(a), bytes(b))
        return Set(x.keys).union(y.keys).sorted().filter { name in
            guard let p = x[name], let q = y[name], p.count == q.count, let pb = p.baseAddress, let qb = q.baseAddress
            else { return true }
            return memcmp(pb, qb, p.count) != 0
        }
    }

    @Test(
        arguments: [
            ("draft", nil), ("draft", Requantization(type: .q4_0, output: true)), ("target", nil), ("gemma3", nil),
        ] as [(String, Requantization?)])
    func aCachedLoadIsTheModelPackedAtLoad(name: String, requantization: Requantization?) throws {
        guard FastDot.kernelName == "avx512-vnni" else { return }  // no packed layouts, nothing to cache
        try Self.withDirectory { directory in
            let path = Self.path(name)
            let packedNow = try LoadedModel(path: path, requantization: requantization, weightCache: .off)
            #expect(packedNow.weightCacheStatus == .off)
            let first = try LoadedModel(path: path, requantization: requantization, weightCache: .directory(directory))
            guard case .written(let file) = first.weightCacheStatus else {
                Issue.record("first load: \(first.weightCacheStatus)")
                return
            }
            #expect(file.hasPrefix(directory + "/") && FileManager.default.fileExists(atPath: file))
            let second = try LoadedModel(path: path, requantization: requantization, weightCache: .directory(directory))
            #expect(second.weightCacheStatus == .read(path: file))
            // The same bytes, matrix for matrix, and the same logits, bit for bit.
            #expect(!Self.bytes(packedNow).isEmpty)
            #expect(Self.differences(second, packedNow) == [])
            #expect(Self.differences(first, packedNow) == [])
            let logits = try Self.logits(packedNow)
            let sameLogits1 = try Self.same(Self.logits(second), logits)
            #expect(sameLogits1, "logits differ")
            #expect(second.stepBytes == packedNow.stepBytes && second.outputBytes == packedNow.outputBytes)
            #expect(second.transformer.requantizedBytes == packedNow.transformer.requantizedBytes)
            // A reduced head (a view of the output matrix, and rows gathered from it) works on the mapped bytes.
            let tokens = Array(0..<4096) + [151_643, 151_645]
            for model in [packedNow, second] { try model.transformer.restrictOutput(toTokens: tokens) }
            let sameLogits2 = try Self.same(Self.logits(second), try Self.logits(packedNow))
            #expect(sameLogits2, "logits differ")
        }
    }

    @Test func theOtherFilesOfAModelDoNotServeIt() throws {
        guard FastDot.kernelName == "avx512-vnni" else { return }
        try Self.withDirectory { directory in
            let path = Self.path("draft")
            let plain = try LoadedModel(path: path, weightCache: .directory(directory))
            let requantized = try LoadedModel(
                path: path, requantization: Requantization(type: .q4_0, output: false),
                weightCache: .directory(directory))
            guard case .written(let plainFile) = plain.weightCacheStatus,
                case .written(let requantizedFile) = requantized.weightCacheStatus
            else {
                Issue.record("\(plain.weightCacheStatus); \(requantized.weightCacheStatus)")
                return
            }
            #expect(plainFile != requantizedFile)
            // Another model's file under this model's name: made for another key, so rebuilt.
            try FileManager.default.removeItem(atPath: plainFile)
            try FileManager.default.copyItem(atPath: requantizedFile, toPath: plainFile)
            let again = try LoadedModel(path: path, weightCache: .directory(directory))
            #expect(
                again.weightCacheStatus == .rewritten(path: plainFile, reason: "made for another model file or build"))
            let sameLogits3 = try Self.same(Self.logits(again), try Self.logits(plain))
            #expect(sameLogits3, "logits differ")
            #expect(
                try LoadedModel(path: path, weightCache: .directory(directory)).weightCacheStatus
                    == .read(path: plainFile))
        }
    }

    @Test func aBrokenOrIncompleteCacheIsRebuilt() throws {
        guard FastDot.kernelName == "avx512-vnni" else { return }
        try Self.withDirectory { directory in
            let path = Self.path("draft")
            guard let (model, file, key) = try Self.writtenDraftCache(in: directory) else { return }
            let logits = try Self.logits(model)
            // Cut short: a blob past the end.
            let size = try #require(FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
            #expect(truncate(file, off_t(size / 2)) == 0)
            let cut = try LoadedModel(path: path, weightCache: .directory(directory))
            guard case .rewritten(file, let reason) = cut.weightCacheStatus else {
                Issue.record("after truncation: \(cut.weightCacheStatus)")
                return
            }
            #expect(reason.contains("past the end of the file"))
            let sameLogits4 = try Self.same(Self.logits(cut), logits)
            #expect(sameLogits4, "logits differ")
            // Not a cache file at all.
            try Data("GGUF and more".utf8).write(to: URL(fileURLWithPath: file))
            let foreign = try LoadedModel(path: path, weightCache: .directory(directory))
            #expect(foreign.weightCacheStatus == .rewritten(path: file, reason: "not a weight cache file"))
            // A file with one matrix left out: the others are read, that one packed, and the file written again.
            let products = model.transformer.packedProducts
            try WeightCache.write(Array(products.dropFirst()), key: key, to: file)
            let partial = try LoadedModel(path: path, weightCache: .directory(directory))
            #expect(
                partial.weightCacheStatus
                    == .rewritten(
                        path: file,
                        reason: "1 of \(products.count) matrices missing or not as this load makes them"))
            let sameLogits5 = try Self.same(Self.logits(partial), logits)
            #expect(sameLogits5, "logits differ")
            let whole = try LoadedModel(path: path, weightCache: .directory(directory))
            #expect(whole.weightCacheStatus == .read(path: file))
            let sameLogits6 = try Self.same(Self.logits(whole), logits)
            #expect(sameLogits6, "logits differ")
        }
    }

    @Test func aCacheThatCannotBeWrittenLosesNothing() throws {
        guard FastDot.kernelName == "avx512-vnni" else { return }
        try Self.withDirectory { directory in
            // A directory that cannot be made: its parent is a regular file.
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let blocker = directory + "/file"
            try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
            let model = try LoadedModel(path: Self.path("draft"), weightCache: .directory(blocker + "/weights"))
            guard case .notWritten(let reason) = model.weightCacheStatus else {
                Issue.record("\(model.weightCacheStatus)")
                return
            }
            #expect(reason.contains("cannot create \(blocker)/weights"))
            let packed = try LoadedModel(path: Self.path("draft"), weightCache: .off)
            let sameLogits7 = try Self.same(Self.logits(model), try Self.logits(packed))
            #expect(sameLogits7, "logits differ")
            // Nothing left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["file"])
        }
    }

    /// Every mutation of a real cache file's header either fails to parse or parses to entries that stay inside
    /// the file and fit their types and shapes; none crashes.
    @Test func mutatedHeadersAreRejectedOrConsistent() throws {
        guard FastDot.kernelName == "avx512-vnni" else { return }
        try Self.withDirectory { directory in
            guard let (model, file, key) = try Self.writtenDraftCache(in: directory) else { return }
            let mapped = try WeightCacheFile(path: file, key: key)
            let size = mapped.mapping.bytes.count
            let headerEnd = try #require(
                mapped.entries.values.map { min($0.packed.lowerBound, $0.rows.isEmpty ? Int.max : $0.rows.lowerBound) }
                    .min())
            let header = Array(mapped.mapping.bytes[0..<headerEnd])
            #expect(mapped.entries.count == model.transformer.packedProducts.count)
            var random = MutationRandom(state: 7)
            var rejected = 0
            for trial in 0..<3000 {
                var bytes = header
                for _ in 0..<(1 + trial % 3) {
                    let at = Int(random.next() % UInt64(bytes.count))
                    bytes[at] = trial % 2 == 0 ? UInt8(truncatingIfNeeded: random.next()) : bytes[at] ^ 0xff
                }
                if trial % 50 == 0 { bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count)))) }
                do {
                    let entries = try bytes.withUnsafeBytes {
                        try WeightCacheFile.parse($0, fileSize: size, key: key)
                    }
                    for entry in entries.values {
                        #expect(entry.packed.upperBound <= size && entry.rows.upperBound <= size)
                        #expect(
                            entry.packed.count
                                == PackedMatrix.byteCount(
                                    type: entry.type, rowCount: entry.rowCount, columnCount: entry.columnCount))
                    }
                } catch is WeightCacheFile.Invalid {
                    rejected += 1
                }
            }
            // Most single-byte changes hit names, counts, types or offsets, which are checked.
            #expect(rejected > 1000)
        }
    }

    /// A cache file stays while its model file is unchanged; when the model file changes or goes, the next cache
    /// file written removes it (and `prune` does on demand), and a file of another model that is still current is
    /// kept. Files that are not cache files, or not yet renamed into place, are left alone.
    @Test func filesOfChangedOrRemovedModelsArePruned() throws {
        guard FastDot.kernelName == "avx512-vnni" else { return }
        try Self.withDirectory { directory in
            let cacheDirectory = directory + "/cache"
            let models = directory + "/models"
            try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
            let first = models + "/first.gguf"
            let second = models + "/second.gguf"
            try FileManager.default.copyItem(atPath: Self.path("smollm2"), toPath: first)
            try FileManager.default.copyItem(atPath: Self.path("smollm2"), toPath: second)
            let firstLoad = try LoadedModel(path: first, weightCache: .directory(cacheDirectory))
            let secondLoad = try LoadedModel(path: second, weightCache: .directory(cacheDirectory))
            guard case .written(let firstFile) = firstLoad.weightCacheStatus,
                case .written(let secondFile) = secondLoad.weightCacheStatus
            else {
                Issue.record("\(firstLoad.weightCacheStatus); \(secondLoad.weightCacheStatus)")
                return
            }
            // Not cache files, or not in place yet: never touched.
            try Data("notes".utf8).write(to: URL(fileURLWithPath: cacheDirectory + "/notes.txt"))
            try Data("partial".utf8).write(to: URL(fileURLWithPath: cacheDirectory + "/.tmp-1-2.weights"))
            var listed = WeightCache.files(in: cacheDirectory)
            #expect(listed.map(\.path) == [firstFile, secondFile])
            #expect(listed.allSatisfy { $0.state == .current })
            #expect(listed.map(\.source) == [first, second])
            #expect(WeightCache.prune(directory: cacheDirectory).isEmpty)

            // The first model file changes (its modification time is enough): its file is stale, and loading the
            // changed file writes a new one and removes the old.
            var times = [timespec(tv_sec: 1_000_000, tv_nsec: 7), timespec(tv_sec: 1_000_000, tv_nsec: 7)]
            #expect(utimensat(AT_FDCWD, first, &times, 0) == 0)
            listed = WeightCache.files(in: cacheDirectory)
            #expect(listed.first { $0.path == firstFile }?.state == .stale(reason: "its model file has changed"))
            let reloaded = try LoadedModel(path: first, weightCache: .directory(cacheDirectory))
            guard case .written(let newFile) = reloaded.weightCacheStatus else {
                Issue.record("\(reloaded.weightCacheStatus)")
                return
            }
            #expect(newFile != firstFile)
            #expect(!FileManager.default.fileExists(atPath: firstFile))
            #expect(FileManager.default.fileExists(atPath: secondFile))
            // The old mapping still serves the load made from it.
            let sameLogits = try Self.same(Self.logits(firstLoad), try Self.logits(reloaded))
            #expect(sameLogits, "logits differ")

            // The second model file goes: `prune` removes its file, keeps the first's, and leaves the rest.
            try FileManager.default.removeItem(atPath: second)
            let removed = WeightCache.prune(directory: cacheDirectory)
            #expect(removed.map(\.path) == [secondFile])
            #expect(removed.first?.state == .stale(reason: "its model file is gone"))
            #expect(WeightCache.files(in: cacheDirectory).map(\.path) == [newFile])
            #expect(FileManager.default.fileExists(atPath: cacheDirectory + "/notes.txt"))
            #expect(FileManager.default.fileExists(atPath: cacheDirectory + "/.tmp-1-2.weights"))

            // A file that does not parse is stale; a directory that does not exist lists nothing.
            let garbage = cacheDirectory + "/garbage-0000000000000000.weights"
            try Data("not a cache".utf8).write(to: URL(fileURLWithPath: garbage))
            #expect(
                WeightCache.files(in: cacheDirectory).first { $0.path == garbage }?.state
                    == .stale(reason: "not a weight cache file"))
            #expect(WeightCache.prune(directory: cacheDirectory).map(\.path) == [garbage])
            #expect(WeightCache.files(in: directory + "/none").isEmpty)
        }
    }

    @Test func theKeyFollowsTheFileAndTheConversion() throws {
        try Self.withDirectory { directory in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let file = directory + "/model.gguf"
            try Data("model".utf8).write(to: URL(fileURLWithPath: file))
            let key = try #require(WeightCache.key(modelPath: file, requantization: nil))
            let requantized = try #require(
                WeightCache.key(modelPath: file, requantization: Requantization(type: .q4_0, output: true)))
            #expect(key != requantized)
            #expect(WeightCache.key(modelPath: file, requantization: nil) == key)
            // Modified (even to the same size): another key, another file name.
            var times = [timespec(tv_sec: 1_000_000, tv_nsec: 5), timespec(tv_sec: 1_000_000, tv_nsec: 5)]
            #expect(utimensat(AT_FDCWD, file, &times, 0) == 0)
            let touched = try #require(WeightCache.key(modelPath: file, requantization: nil))
            #expect(touched != key)
            #expect(
                WeightCache.filePath(directory: "/c", modelPath: file, key: key)
                    != WeightCache.filePath(directory: "/c", modelPath: file, key: touched))
            #expect(WeightCache.filePath(directory: "/c", modelPath: file, key: key).hasPrefix("/c/model-"))
            #expect(WeightCache.key(modelPath: directory + "/missing.gguf", requantization: nil) == nil)
            // The key names the model file by its absolute path, last.
            #expect(key.hasSuffix("; source " + (directory as NSString).resolvingSymlinksInPath + "/model.gguf"))
            #expect(WeightCache.off.resolvedDirectory == nil)
            #expect(WeightCache.directory("/x/y").resolvedDirectory == "/x/y")
        }
    }
}

@Suite("A draft loaded beside its target", .enabled(if: Models.present || Models.required))
struct SharedTokenizerTests {
    @Test func aDraftWithTheSameTokenizerEntriesSharesTheTargetsTokenizer() throws {
        let target = try LoadedModel(path: WeightCacheTests.path("target"))
        let draft = try LoadedModel(path: WeightCacheTests.path("draft"), sharingTokenizerWith: target)
        #expect(draft.tokenizer === target.tokenizer)
        // Its tokenizer entries were compared as bytes and never decoded.
        #expect(draft.file.deferredKeys.contains("tokenizer.ggml.tokens"))
        #expect(draft.file["tokenizer.ggml.merges"] == nil && draft.file["tokenizer.chat_template"] != nil)
        // Built on its own, the draft's tokenizer is the same one.
        let own = try LoadedModel(path: WeightCacheTests.path("draft"))
        #expect(own.tokenizer !== target.tokenizer)
        try own.tokenizer.requireSameVocabulary(as: target.tokenizer)
        let text = "Übersetze: Die Katze schläft. def f(x):\n\treturn x ** 2  # 平方 🙂"
        #expect(own.tokenizer.encode(text) == draft.tokenizer.encode(text))
        // The chat template stays the draft's own (the two files' templates differ in their text).
        #expect(draft.template != nil)
        // Another vocabulary: its own tokenizer, and the pair is refused as before.
        let gemma = try LoadedModel(path: WeightCacheTests.path("gemma3"), sharingTokenizerWith: target)
        #expect(gemma.tokenizer !== target.tokenizer && gemma.file.deferredKeys.isEmpty)
        #expect(throws: (any Error).self) { try target.tokenizer.requireSameVocabulary(as: gemma.tokenizer) }
    }
}
