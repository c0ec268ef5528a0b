import ArgumentParser
import Foundation
import SpeculaEngine
import SpeculaKernels
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// `specula bench kernels`: matrix products of a model's weight matrices alone, in the packed layout and in the stored
/// one, timed alternately in the same run: read bandwidth for one token and the cost of N tokens relative to one.
struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Time of one weight-matrix product per batch size, packed and stored layouts side by side.")

    @Option(name: .long, help: "The GGUF model file.") var model: String
    @Option(name: .long, help: "Timed repetitions (medians are reported).") var runs: Int = 9
    @Option(name: .long, parsing: .upToNextOption, help: "Batch sizes N.") var batch: [Int] = [1, 2, 4, 8, 16]
    @Option(
        name: .long, parsing: .upToNextOption,
        help: "Tensors to time (default: layer 0's q, gate and down projections and the output matrix).")
    var tensors: [String] = []
    @Flag(
        name: .long,
        help:
            "Also time each layer tensor (blk.L.…) streamed: the same tensor of every layer in turn, so that its weights come from memory as in a forward pass, against the one matrix repeated from the caches."
    )
    var streamed = false

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be ≥ 1") }
        if batch.isEmpty || batch.contains(where: { $0 < 1 }) { throw ValidationError("--batch sizes must be ≥ 1") }
    }

    func run() throws {
        let file = try GGUFFile(path: model)
        let names =
            tensors.isEmpty
            ? ["blk.0.attn_q.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_down.weight", "output.weight"].filter {
                file.tensor(named: $0) != nil
            } : tensors
        print("\(file.path): \(WorkerPool.shared.threadCount) threads; median of \(runs) runs, layouts alternated")
        for name in names {
            let (plain, info, bytes) = try Self.storedMatrix(name, in: file)
            let packed = plain.packed()
            print(
                "\(name) \(info.type) [\(plain.rowCount) × \(plain.columnCount)], \(bytes.count / 1024) KiB\(packed.packed == nil ? " (no packed layout)" : "")"
            )
            var singles: [String: Double] = [:]
            let layouts = [("packed", packed), ("stored", plain)].filter { $0.0 == "stored" || packed.packed != nil }
            for n in batch {
                let x = Self.activations(rows: n, columns: plain.columnCount)
                var output = [Float](repeating: 0, count: n * plain.rowCount)
                let times = timeAlternated(layouts.map(\.0)) { label in
                    let matrix = label == "packed" ? packed : plain
                    output.withUnsafeMutableBufferPointer { out in
                        if let base = out.baseAddress { Linear.multiply(matrix, x, into: base) }
                    }
                    return 1
                }
                var line = "  N=\(n):"
                for label in ["packed", "stored"] {
                    guard let values = times[label], !values.isEmpty else { continue }
                    let median = values.sorted()[values.count / 2]
                    let fastest = values.min() ?? median
                    if n == batch.first { singles[label] = median }
                    let bandwidth = Double(bytes.count) / median / 1e9
                    line +=
                        " \(label) \(String(format: "%.2f", median * 1000)) ms (min \(String(format: "%.2f", fastest * 1000)), \(String(format: "%.1f", bandwidth)) GB/s"
                    if let single = singles[label], n != batch.first {
                        line += ", ×\(String(format: "%.2f", median / single))"
                    }
                    line += ")"
                }
                print(line)
            }
            if streamed, let layers = layerMatrices(like: name, in: file) {
                try timeStreamed(layers, name: name)
            }
        }
    }

    /// The tensor `name` as a matrix in its stored layout, with its description and bytes; an error names a tensor
    /// that is missing or not two-dimensional.
    static func storedMatrix(_ name: String, in file: GGUFFile) throws -> (
        QuantizedMatrix, GGUFTensorInfo, UnsafeRawBufferPointer
    ) {
        let (info, bytes) = try file.data(ofTensorNamed: name)
        guard info.dimensions.count == 2, let base = bytes.baseAddress else {
            throw CommandError("\(name): not a matrix")
        }
        let matrix = QuantizedMatrix(
            type: info.type, rowCount: info.dimensions[1], columnCount: info.dimensions[0], data: base)
        return (matrix, info, bytes)
    }

    /// `rows` × `columns` activation rows of a fixed smooth pattern, quantized.
    static func activations(rows: Int, columns: Int) -> QuantizedActivations {
        let input = (0..<(rows * columns)).map { Float(sin(Double($0) * 0.37)) }
        return input.withUnsafeBufferPointer { QuantizedActivations($0, rowCount: rows, columnCount: columns) }
    }

    /// Seconds per product of `run(label)` (which returns how many products it ran) for each label, the labels
    /// alternated within each of `runs` timed rounds after one untimed round.
    func timeAlternated(_ labels: [String], _ run: (String) -> Int) -> [String: [Double]] {
        var times: [String: [Double]] = [:]
        for round in 0..<(runs + 1) {
            for label in labels {
                let start = DispatchTime.now().uptimeNanoseconds
                let products = run(label)
                let time = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(products)
                if round > 0 { times[label, default: []].append(time) }
            }
        }
        return times
    }

    /// The packed matrices of `name`'s tensor in every layer (`blk.0.ffn_gate.weight` → `blk.L.ffn_gate.weight` for
    /// every L), or nil when `name` is not a layer tensor or has no packed layout.
    func layerMatrices(like name: String, in file: GGUFFile) -> [QuantizedMatrix]? {
        let parts = name.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "blk", Int(parts[1]) != nil else { return nil }
        var matrices: [QuantizedMatrix] = []
        var layer = 0
        while let (stored, _, _) = try? Self.storedMatrix("blk.\(layer).\(parts[2])", in: file) {
            let matrix = stored.packed()
            guard matrix.packed != nil else { return nil }
            matrices.append(matrix)
            layer += 1
        }
        return matrices.count > 1 ? matrices : nil
    }

    /// Per-product time of one pass over `layers` in turn (streamed from memory) against the first one repeated as
    /// often (from the caches), alternated, for each batch size.
    func timeStreamed(_ layers: [QuantizedMatrix], name: String) throws {
        let first = layers[0]
        let bytes = layers.reduce(0) { $0 + ($1.packed?.byteCount ?? 0) }
        print(
            "  \(name) in \(layers.count) layers (\(bytes / 1_048_576) MiB packed), per product: streamed vs cached")
        var single: Double?
        for n in batch {
            let x = Self.activations(rows: n, columns: first.columnCount)
            var output = [Float](repeating: 0, count: n * first.rowCount)
            let times = timeAlternated(["streamed", "cached"]) { label in
                output.withUnsafeMutableBufferPointer { out in
                    guard let base = out.baseAddress else { return }
                    for matrix in layers { Linear.multiply(label == "streamed" ? matrix : first, x, into: base) }
                }
                return layers.count
            }
            var line = "    N=\(n):"
            for label in ["streamed", "cached"] {
                let values = (times[label] ?? []).sorted()
                guard !values.isEmpty else { continue }
                let median = values[values.count / 2]
                line += " \(label) \(String(format: "%.3f", median * 1000)) ms"
                if label == "streamed" {
                    if n == batch.first { single = median }
                    line += " (\(String(format: "%.1f", Double(bytes / layers.count) / median / 1e9)) GB/s"
                    if let single, n != batch.first { line += ", ×\(String(format: "%.2f", median / single))" }
                    line += ")"
                }
            }
            print(line)
        }
    }
}
