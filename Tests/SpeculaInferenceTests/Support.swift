import Foundation
import SpeculaModels
import SpeculaTestSupport

enum Models {
    static let directory = TestModels.directory
    static let files = [
        "smollm2": "smollm2-135m-instruct-q4_1.gguf",
        "draft": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "target": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "gemma3": "gemma-3-270m-q4_k_m.gguf",
    ]
    static var present: Bool {
        files.values.allSatisfy { FileManager.default.fileExists(atPath: directory + "/" + $0) }
    }
    static var required: Bool { TestModels.required }

    nonisolated(unsafe) static var loaded: [String: Transformer] = [:]
    static let lock = NSLock()

    static func transformer(_ name: String) throws -> Transformer {
        lock.lock()
        defer { lock.unlock() }
        if let model = loaded[name] { return model }
        guard let file = files[name] else { throw ModelError.invalid(path: name, reason: "unknown test model") }
        let model = try Transformer(file: try GGUFFile(path: directory + "/" + file))
        loaded[name] = model
        return model
    }
}

func logSumExp(_ row: [Float]) -> Double {
    let m = Double(row.max() ?? 0)
    return m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
}
