import Foundation

/// One benchmark prompt: a stable id (for resuming), its category, and the user turn.
public struct BenchmarkPrompt: Sendable, Equatable, Codable {
    public var id: String
    public var category: String
    public var text: String

    public init(id: String, category: String, text: String) {
        self.id = id
        self.category = category
        self.text = text
    }
}

/// A problem with a dataset: what and where.
public struct DatasetError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Prompt sets by name or file.
///
/// A FILE is JSON lines in the Spec-Bench format (`question_id`, `category`, `turns`; the first turn is the prompt)
/// or HumanEval's (`task_id`, `prompt`). A NAME picks a built-in set installed by `scripts/fetch-models` into the
/// data directory (the models directory): the Spec-Bench categories, HumanEval and AlpacaEval.
public enum Dataset {
    /// A built-in set: the file in the data directory, the categories kept (all when empty), what it is.
    public struct Named: Sendable {
        public var file: String
        public var categories: [String]
        public var about: String
    }

    public static let specBenchFile = "spec-bench.jsonl"
    /// Spec-Bench's six tasks (multi-turn conversation, translation, summarization, question answering,
    /// mathematical reasoning, retrieval-augmented generation) as the named sets ``expand(_:)`` gives for
    /// `spec-bench-tasks`.
    public static let taskSets = ["mt-bench", "translation", "summarization", "qa", "math", "rag"]

    /// Names as a benchmark runs them: `spec-bench-tasks` is its six task sets, each with its own table.
    public static func expand(_ names: [String]) -> [String] {
        names.flatMap { $0 == "spec-bench-tasks" ? taskSets : [$0] }
    }
    public static let humanEvalFile = "HumanEval.jsonl"
    public static let alpacaFile = "alpaca.jsonl"

    public static let named: [(name: String, set: Named)] = [
        ("spec-bench", Named(file: specBenchFile, categories: [], about: "all 480 Spec-Bench prompts, 13 categories")),
        (
            "mt-bench",
            Named(
                file: specBenchFile,
                categories: ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"],
                about: "the 80 MT-Bench first turns (instructions)")
        ),
        ("translation", Named(file: specBenchFile, categories: ["translation"], about: "WMT14 De→En (Spec-Bench)")),
        ("summarization", Named(file: specBenchFile, categories: ["summarization"], about: "CNN/DM (Spec-Bench)")),
        ("qa", Named(file: specBenchFile, categories: ["qa"], about: "Natural Questions (Spec-Bench)")),
        ("math", Named(file: specBenchFile, categories: ["math_reasoning"], about: "GSM8K (Spec-Bench)")),
        ("rag", Named(file: specBenchFile, categories: ["rag"], about: "retrieval-augmented QA (Spec-Bench)")),
        ("humaneval", Named(file: humanEvalFile, categories: [], about: "HumanEval, 164 code prompts")),
        ("alpaca", Named(file: alpacaFile, categories: [], about: "AlpacaEval, 805 instructions")),
        (
            "spec-bench-tasks",
            Named(
                file: specBenchFile, categories: [],
                about: "Spec-Bench's six tasks, each a set: "
                    + taskSets.joined(separator: ", "))
        ),
        ("code", Named(file: humanEvalFile, categories: [], about: "HumanEval, 164 code prompts")),
    ]

    /// The default data directory: `$SPECULA_MODELS`, else `~/.cache/specula/models`.
    public static var defaultDirectory: String {
        if let path = ProcessInfo.processInfo.environment["SPECULA_MODELS"], !path.isEmpty { return path }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/specula/models").path
    }

    /// The prompts of a named set or file, `count` of them spread evenly over it (all when nil), and one warning
    /// per malformed record (with its line number; the record is skipped).
    public static func load(_ nameOrPath: String, directory: String = defaultDirectory, count: Int? = nil) throws
        -> (prompts: [BenchmarkPrompt], warnings: [String])
    {
        let path: String
        var categories: [String] = []
        if let entry = named.first(where: { $0.name == nameOrPath }) {
            path = (directory as NSString).appendingPathComponent(entry.set.file)
            categories = entry.set.categories
            if !FileManager.default.fileExists(atPath: path) {
                throw DatasetError(
                    "dataset '\(nameOrPath)' needs \(path): run scripts/fetch-models "
                        + (entry.set.file == humanEvalFile
                            ? "humaneval" : entry.set.file == alpacaFile ? "alpaca" : "spec-bench"))
            }
        } else if FileManager.default.fileExists(atPath: nameOrPath) {
            path = nameOrPath
        } else {
            throw DatasetError(
                "unknown dataset '\(nameOrPath)': not a file, nor one of "
                    + named.map(\.name).joined(separator: ", "))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError("cannot read the dataset file '\(path)'")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DatasetError("\(path): not UTF-8 text")
        }
        var (prompts, warnings) = parse(text, path: path)
        if !categories.isEmpty { prompts = prompts.filter { categories.contains($0.category) } }
        if prompts.isEmpty {
            throw DatasetError(
                "\(path): no usable prompts"
                    + (warnings.first.map { " (\(warnings.count) bad lines; first: \($0))" } ?? ""))
        }
        if let count {
            let n = min(max(count, 0), prompts.count)
            prompts = (0..<n).map { prompts[$0 * prompts.count / n] }
        }
        return (prompts, warnings)
    }

    /// Parses JSON lines: Spec-Bench questions or HumanEval tasks. Bad lines become warnings.
    public static func parse(_ text: String, path: String) -> (prompts: [BenchmarkPrompt], warnings: [String]) {
        var prompts: [BenchmarkPrompt] = []
        var warnings: [String] = []
        var seen: Set<String> = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let where_ = "\(path):\(number + 1)"
            guard let object = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
                warnings.append("\(where_): not a JSON object; skipped")
                continue
            }
            let prompt: BenchmarkPrompt
            if let turns = object["turns"] as? [String] {
                guard let first = turns.first, !first.isEmpty else {
                    warnings.append("\(where_): \"turns\" is empty; skipped")
                    continue
                }
                let id = (object["question_id"]).map { "\($0)" } ?? "line\(number + 1)"
                prompt = BenchmarkPrompt(id: id, category: (object["category"] as? String) ?? "", text: first)
            } else if let code = object["prompt"] as? String {
                let id = (object["task_id"] as? String) ?? "line\(number + 1)"
                prompt = BenchmarkPrompt(
                    id: id, category: "humaneval",
                    text: "Complete the following Python function.\n\n```python\n\(code)```")
            } else {
                warnings.append(
                    "\(where_): neither a Spec-Bench question (\"turns\") nor a HumanEval task (\"prompt\"); skipped")
                continue
            }
            if seen.contains(prompt.id) {
                warnings.append("\(where_): duplicate id \(prompt.id); skipped")
                continue
            }
            seen.insert(prompt.id)
            prompts.append(prompt)
        }
        return (prompts, warnings)
    }
}
