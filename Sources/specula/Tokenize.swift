import ArgumentParser
import Foundation
import SpeculaModels

/// `specula tokenize`: token ids exactly as the model sees its input, or text back from ids with `--decode`.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokenize text with a GGUF model's tokenizer (or decode ids with --decode).")

    @Option(name: .long, help: "The GGUF model file.") var model: String
    @Option(name: .long, help: "Text to tokenize (with --decode: ids separated by commas or spaces).") var text: String?
    @Option(name: .long, help: "Read the text from a file ('-' for standard input).") var file: String?
    @Flag(name: .long, help: "Parse special-token text such as <|im_start|> as special tokens.") var special = false
    @Flag(name: .long, help: "Do not add the BOS/EOS tokens the model's metadata asks for.") var noAddSpecial = false
    @Flag(name: .long, help: "Print a JSON array instead of one id per line.") var json = false
    @Flag(name: .long, help: "Decode token ids to text.") var decode = false

    func validate() throws {
        if (text == nil) == (file == nil) { throw ValidationError("give exactly one of --text and --file") }
    }

    func run() throws {
        let inputBytes: [UInt8]
        if let text {
            inputBytes = Array(text.utf8)
        } else if let file {
            let data: Data?
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                data = FileManager.default.contents(atPath: file)
            }
            guard let data else { throw CommandError("cannot read the text file '\(file)'") }
            inputBytes = Array(data)
        } else {
            inputBytes = []
        }
        let input = String(decoding: inputBytes, as: UTF8.self)
        let tokenizer = try Tokenizer(gguf: try GGUFFile(path: model))
        if decode {
            var ids: [Int] = []
            for item in input.split(whereSeparator: { $0 == "," || $0.isWhitespace || $0 == "[" || $0 == "]" }) {
                guard let id = Int(item), id >= 0, id < tokenizer.vocabularySize else {
                    throw CommandError(
                        "'\(item)' is not a token id of this vocabulary (0..<\(tokenizer.vocabularySize))")
                }
                ids.append(id)
            }
            print(tokenizer.decode(ids, renderSpecial: special), terminator: "")
            return
        }
        // Raw bytes: a file need not be valid UTF-8, and the tokenizer treats invalid bytes as the model expects.
        let ids = tokenizer.encode(bytes: inputBytes, addSpecial: !noAddSpecial, parseSpecial: special)
        if json {
            print("[" + ids.map(String.init).joined(separator: ",") + "]")
        } else {
            print(ids.map(String.init).joined(separator: "\n"))
        }
    }
}
