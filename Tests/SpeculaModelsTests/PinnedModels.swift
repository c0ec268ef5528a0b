import Foundation
import SpeculaModels
import SpeculaTestSupport

/// The pinned model files, fetched by scripts/fetch-models into $SPECULA_MODELS or ~/.cache/specula/models.
/// Tests that need them are skipped when a file is absent; CI fetches them first, so there they run.
enum PinnedModels {
    static let directory = TestModels.directory

    static let files = [
        "target": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "draft": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "qwen2": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "smollm2": "smollm2-135m-instruct-q4_1.gguf",
        "gemma3": "gemma-3-270m-q4_k_m.gguf",
    ]

    static func path(_ name: String) -> String? {
        guard let file = files[name] else { return nil }
        let path = directory + "/" + file
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    static var allPresent: Bool { files.keys.allSatisfy { path($0) != nil } }

    static var required: Bool { TestModels.required }
}
