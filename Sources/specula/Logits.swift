import ArgumentParser
import Foundation
import SpeculaEngine
import SpeculaModels

/// `specula logits`: the logits of every position of a prompt, as a NumPy array or the top K per position.
struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the logits of every prompt position (float32 .npy [positions, vocabulary]) or print the top K."
    )

    @Option(name: .long, help: "The GGUF model file.") var model: String
    @Option(name: .long, help: "Read the prompt text from a file (tokenized as `specula tokenize` does).")
    var promptFile: String?
    @Option(name: .long, help: "Token ids, comma-separated, instead of a prompt.") var tokens: String?
    @Flag(name: .long, help: "Parse special-token text in the prompt as special tokens.") var special = false
    @Option(name: .long, help: "Output .npy file.") var output: String?
    @Option(name: .long, help: "Print JSON of the top K logits per position instead of writing a file.") var top: Int?

    func validate() throws {
        if (promptFile == nil) == (tokens == nil) {
            throw ValidationError("give exactly one of --prompt-file and --tokens")
        }
        if (output == nil) == (top == nil) { throw ValidationError("give exactly one of --output and --top") }
        if let top, top < 1 { throw ValidationError("--top must be ≥ 1") }
    }

    func run() throws {
        let loaded = try LoadedModel(path: model)
        let ids: [Int]
        if let tokens {
            ids = try tokens.split(separator: ",").map { item in
                let text = item.trimmingCharacters(in: .whitespaces)
                guard let id = Int(text), id >= 0, id < loaded.transformer.vocabularySize else {
                    throw CommandError(
                        "'\(text)' is not a token id of this model (0..<\(loaded.transformer.vocabularySize))")
                }
                return id
            }
        } else {
            guard let path = promptFile, let data = FileManager.default.contents(atPath: path) else {
                throw CommandError("cannot read the prompt file '\(promptFile ?? "")'")
            }
            ids = loaded.tokenizer.encode(bytes: Array(data), addSpecial: true, parseSpecial: special)
        }
        let logits = try Scoring.logits(loaded.transformer, tokens: ids, rows: Array(ids.indices))
        print(ids.map(String.init).joined(separator: ","))
        if let top {
            let rows: [JSONValue] = logits.enumerated().map { position, row in
                let order = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(top)
                return .object([
                    ("position", .integer(position)), ("token", .integer(ids[position])),
                    (
                        "top",
                        .array(order.map { .object([("id", .integer($0)), ("logit", .number(Double(row[$0])))]) })
                    ),
                ])
            }
            print(JSONValue.array(rows).rendered())
            return
        }
        if let output { try writeNumPy(logits, to: output) }
    }
}

/// Writes `[rows][columns]` float32 as a NumPy .npy file (format 1.0, little-endian, C order).
func writeNumPy(_ rows: [[Float]], to path: String) throws {
    let columns = rows.first?.count ?? 0
    var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows.count), \(columns)), }"
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    let unpadded = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
    let length = UInt16(header.utf8.count)
    data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
    data.append(contentsOf: Array(header.utf8))
    for row in rows {
        row.withUnsafeBytes { data.append(contentsOf: $0) }
    }
    do {
        try data.write(to: URL(fileURLWithPath: path))
    } catch {
        throw CommandError("cannot write '\(path)': \(error.localizedDescription)")
    }
}
