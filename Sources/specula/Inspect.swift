import ArgumentParser
import Foundation
import SpeculaKernels
import SpeculaModels

/// `specula inspect`: what a GGUF model file holds.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a GGUF model's architecture, hyper-parameters, tokenizer and tensors.")

    @Argument(help: "The GGUF model file.") var model: String
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Flag(name: .long, help: "List every tensor (the default lists the first 12 and a summary by type).")
    var tensors = false

    func run() throws {
        let start = DispatchTime.now().uptimeNanoseconds
        let file = try GGUFFile(path: model)
        let summary = try ModelSummary(file: file)
        let openMilliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        if json {
            print(summary.json(allTensors: true, openMilliseconds: openMilliseconds).rendered(indent: 2))
            return
        }
        print(summary.text(allTensors: tensors, openMilliseconds: openMilliseconds))
    }
}

/// The facts `specula inspect` prints, read from the file's metadata.
struct ModelSummary {
    var file: GGUFFile
    var architecture: String
    var hyperParameters: [(String, GGUFValue)]
    var tokenizer: [(String, JSONValue)]

    init(file: GGUFFile) throws {
        self.file = file
        architecture = (try? file.string("general.architecture")) ?? "unknown"
        let prefix = architecture + "."
        hyperParameters = file.metadata.filter { $0.key.hasPrefix(prefix) }.map {
            (String($0.key.dropFirst(prefix.count)), $0.value)
        }
        var tokenizer: [(String, JSONValue)] = []
        if let model = file["tokenizer.ggml.model"]?.string { tokenizer.append(("model", .string(model))) }
        if let pre = file["tokenizer.ggml.pre"]?.string { tokenizer.append(("pre", .string(pre))) }
        if let tokens = file["tokenizer.ggml.tokens"]?.array { tokenizer.append(("tokens", .integer(tokens.count))) }
        if let merges = file["tokenizer.ggml.merges"]?.array { tokenizer.append(("merges", .integer(merges.count))) }
        for key in ["bos_token_id", "eos_token_id", "eot_token_id", "padding_token_id", "unknown_token_id"] {
            if let id = file["tokenizer.ggml." + key]?.integer { tokenizer.append((key, .integer(id))) }
        }
        for key in ["add_bos_token", "add_eos_token", "add_space_prefix"] {
            if let flag = file["tokenizer.ggml." + key]?.bool { tokenizer.append((key, .bool(flag))) }
        }
        if let template = file["tokenizer.chat_template"]?.string {
            tokenizer.append(("chatTemplateCharacters", .integer(template.count)))
        }
        self.tokenizer = tokenizer
    }

    var totalTensorBytes: Int { file.tensors.reduce(0) { $0 + $1.byteCount } }

    func json(allTensors: Bool, openMilliseconds: Double) -> JSONValue {
        .object([
            ("path", .string(file.path)),
            ("ggufVersion", .integer(Int(file.version))),
            ("fileBytes", .integer(file.fileSize)),
            ("architecture", .string(architecture)),
            ("name", .string(file["general.name"]?.string ?? "")),
            ("hyperParameters", .object(hyperParameters.map { ($0.0, Self.json($0.1)) })),
            ("tokenizer", .object(tokenizer)),
            ("tensorCount", .integer(file.tensors.count)),
            ("tensorBytes", .integer(totalTensorBytes)),
            ("tensorBytesByType", .object(bytesByType.map { ($0.0, .integer($0.1)) })),
            (
                "tensors",
                .array(
                    file.tensors.map {
                        .object([
                            ("name", .string($0.name)), ("type", .string($0.type.description)),
                            ("dimensions", .array($0.dimensions.map { .integer($0) })),
                            ("bytes", .integer($0.byteCount)),
                        ])
                    })
            ),
            ("openMilliseconds", .number(openMilliseconds)),
        ])
    }

    var bytesByType: [(String, Int)] {
        var totals: [String: Int] = [:]
        for tensor in file.tensors { totals[tensor.type.description, default: 0] += tensor.byteCount }
        return totals.sorted { $0.value > $1.value }
    }

    static func json(_ value: GGUFValue) -> JSONValue {
        switch value {
        case .string(let v): return .string(v)
        case .bool(let v): return .bool(v)
        case .float32, .float64: return .number(value.double ?? .nan)
        case .array(_, let values): return .array(values.map(json))
        default: return .integer(value.integer ?? 0)
        }
    }

    func text(allTensors: Bool, openMilliseconds: Double) -> String {
        var lines: [String] = []
        lines.append("\(file.path)")
        lines.append(
            "  GGUF v\(file.version), \(Self.bytes(file.fileSize)), opened in \(String(format: "%.1f", openMilliseconds)) ms"
        )
        lines.append("  architecture  \(architecture)  \(file["general.name"]?.string ?? "")")
        lines.append("hyper-parameters")
        for (key, value) in hyperParameters {
            lines.append("  \(key.padding(toLength: 36, withPad: " ", startingAt: 0)) \(value.summary)")
        }
        lines.append("tokenizer")
        for (key, value) in tokenizer {
            lines.append("  \(key.padding(toLength: 36, withPad: " ", startingAt: 0)) \(value.rendered())")
        }
        lines.append("tensors: \(file.tensors.count), \(Self.bytes(totalTensorBytes))")
        for (type, bytes) in bytesByType {
            lines.append("  \(type.padding(toLength: 8, withPad: " ", startingAt: 0)) \(Self.bytes(bytes))")
        }
        let shown = allTensors ? file.tensors : Array(file.tensors.prefix(12))
        for tensor in shown {
            let shape = tensor.dimensions.map(String.init).joined(separator: " × ")
            lines.append(
                "  \(tensor.name.padding(toLength: 40, withPad: " ", startingAt: 0)) \(tensor.type.description.padding(toLength: 6, withPad: " ", startingAt: 0)) \(shape.padding(toLength: 18, withPad: " ", startingAt: 0)) \(Self.bytes(tensor.byteCount))"
            )
        }
        if !allTensors && file.tensors.count > shown.count {
            lines.append("  … \(file.tensors.count - shown.count) more (--tensors lists them all)")
        }
        return lines.joined(separator: "\n")
    }

    static func bytes(_ count: Int) -> String {
        if count >= 1 << 30 { return String(format: "%.2f GiB", Double(count) / Double(1 << 30)) }
        if count >= 1 << 20 { return String(format: "%.1f MiB", Double(count) / Double(1 << 20)) }
        if count >= 1 << 10 { return String(format: "%.1f KiB", Double(count) / Double(1 << 10)) }
        return "\(count) B"
    }
}
