/// The role of a vocabulary entry (`tokenizer.ggml.token_type`).
public enum TokenType: Int32, Sendable {
    case normal = 1
    case unknown = 2
    case control = 3
    case userDefined = 4
    case unused = 5
    case byte = 6
}

/// A tokenizer that cannot be built from a file's metadata.
public enum TokenizerError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(path: String, reason: String)
    case unsupported(path: String, reason: String)
    case tokenOutOfRange(token: Int, vocabularySize: Int)
    case mismatch(reason: String)

    public var description: String {
        switch self {
        case .invalid(let path, let reason): return "\(path): invalid tokenizer: \(reason)"
        case .unsupported(let path, let reason): return "\(path): unsupported tokenizer: \(reason)"
        case .tokenOutOfRange(let token, let size): return "token \(token) is outside the vocabulary 0..<\(size)"
        case .mismatch(let reason): return "the draft and target tokenizers differ: \(reason)"
        }
    }
}

/// A tokenizer built from GGUF metadata: byte-level BPE (`gpt2`, with the pre-tokenizer `tokenizer.ggml.pre`
/// names) or SentencePiece-style BPE (`llama`, with byte fallback).
///
/// Encoding splits the text on special tokens first (user-defined tokens always; control tokens only when
/// `parseSpecial` is set, so that a prompt cannot inject `<|im_start|>` by accident), then encodes each plain
/// fragment, and adds BOS/EOS as the metadata asks.
public final class Tokenizer: Sendable {
    public enum Model: Sendable, Equatable {
        case bytePairEncoding(PreTokenizer)
        case sentencePiece

        /// `gpt2/qwen2`, `llama` (SentencePiece): the GGUF names.
        public var name: String {
            switch self {
            case .bytePairEncoding(let pre): return "gpt2 with pre-tokenizer \(pre.rawValue)"
            case .sentencePiece: return "llama (SentencePiece)"
            }
        }
    }

    public let model: Model
    public let tokens: [String]
    public let types: [TokenType]

    /// Token ranges for a reduced draft vocabulary: ids below `count` (byte-level BPE vocabularies are ordered by
    /// merge rank, so low ids are the common pieces) and every control or user-defined token above (end-of-turn
    /// and end-of-text markers sit at the end of the vocabulary), as ascending disjoint ranges for
    /// ``Transformer/restrictOutput(to:)``.
    public func draftVocabulary(first count: Int) -> [Range<Int>] {
        let head = min(max(count, 0), types.count)
        var ranges: [Range<Int>] = head > 0 ? [0..<head] : []
        var id = head
        while id < types.count {
            guard types[id] == .control || types[id] == .userDefined else {
                id += 1
                continue
            }
            let start = id
            while id < types.count && (types[id] == .control || types[id] == .userDefined) { id += 1 }
            ranges.append(start..<id)
        }
        return ranges
    }
    public let bos: Int?
    public let eos: Int?
    /// End-of-turn / end-of-generation tokens: EOS, EOT and the chat end markers the vocabulary defines.
    public let endOfGeneration: Set<Int>
    public let addBOS: Bool
    public let addEOS: Bool
    public let addSpacePrefix: Bool

    let bpe: BytePairEncoding?
    let spm: SentencePiece?
    /// Special tokens matched in raw text: (UTF-8 bytes, id, isControl), longest first.
    let specials: [(bytes: [UInt8], id: Int, control: Bool)]
    /// Candidates per first byte: all special tokens, and the user-defined ones only (matched without
    /// `parseSpecial`), so that text full of `<` does not scan thousands of control tokens.
    let specialsByFirstByte: [[Int]]
    let userDefinedByFirstByte: [[Int]]

    public var vocabularySize: Int { tokens.count }

    /// The bytes this vocabulary has no token for: byte-level BPE drops them (as llama.cpp does), SentencePiece
    /// encodes them as the unknown token; either way plain text loses them on the way through `encode` and `decode`.
    /// SmolLM2 lacks a few; the pinned Qwen and Gemma vocabularies lack none.
    public var bytesWithoutToken: [UInt8] {
        let table = bpe?.byteTokens ?? spm?.byteTokens ?? []
        return table.indices.filter { table[$0] < 0 }.map { UInt8($0) }
    }

    public convenience init(gguf file: GGUFFile) throws {
        let path = file.path
        let tokens = try file.stringArray("tokenizer.ggml.tokens")
        if tokens.isEmpty { throw TokenizerError.invalid(path: path, reason: "tokenizer.ggml.tokens is empty") }
        var types = [TokenType](repeating: .normal, count: tokens.count)
        if file["tokenizer.ggml.token_type"] != nil {
            let raw = try file.integerArray("tokenizer.ggml.token_type")
            if raw.count != tokens.count {
                throw TokenizerError.invalid(
                    path: path, reason: "tokenizer.ggml.token_type has \(raw.count) entries for \(tokens.count) tokens")
            }
            types = raw.map { TokenType(rawValue: Int32(truncatingIfNeeded: $0)) ?? .normal }
        }
        let modelName = try file.string("tokenizer.ggml.model")
        let model: Model
        switch modelName {
        case "gpt2":
            let pre = file["tokenizer.ggml.pre"]?.string ?? "default"
            guard let preTokenizer = PreTokenizer(ggufName: pre) else {
                throw TokenizerError.unsupported(
                    path: path, reason: "pre-tokenizer '\(pre)' (supported: qwen2, smollm, gpt2/default)")
            }
            model = .bytePairEncoding(preTokenizer)
        case "llama":
            model = .sentencePiece
        default:
            throw TokenizerError.unsupported(
                path: path, reason: "tokenizer model '\(modelName)' (supported: gpt2, llama)")
        }
        func id(_ key: String) throws -> Int? {
            guard file[key] != nil else { return nil }
            let value = try file.integer(key)
            if value < 0 || value >= tokens.count {
                throw TokenizerError.invalid(path: path, reason: "\(key) = \(value) is outside the vocabulary")
            }
            return value
        }
        let defaultAddBOS = model == .sentencePiece
        try self.init(
            path: path, model: model, tokens: tokens, types: types,
            merges: model == .sentencePiece ? [] : try file.stringArray("tokenizer.ggml.merges"),
            scores: model == .sentencePiece ? try file.doubleArray("tokenizer.ggml.scores").map(Float.init) : [],
            bos: try id("tokenizer.ggml.bos_token_id"), eos: try id("tokenizer.ggml.eos_token_id"),
            eot: try id("tokenizer.ggml.eot_token_id"), unknown: try id("tokenizer.ggml.unknown_token_id"),
            addBOS: file["tokenizer.ggml.add_bos_token"]?.bool ?? defaultAddBOS,
            addEOS: file["tokenizer.ggml.add_eos_token"]?.bool ?? false,
            addSpacePrefix: file["tokenizer.ggml.add_space_prefix"]?.bool ?? (model == .sentencePiece))
    }

    init(
        path: String, model: Model, tokens: [String], types: [TokenType], merges: [String], scores: [Float],
        bos: Int?, eos: Int?, eot: Int?, unknown: Int?, addBOS: Bool, addEOS: Bool, addSpacePrefix: Bool
    ) throws {
        self.model = model
        self.tokens = tokens
        self.types = types
        self.bos = bos
        self.eos = eos
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        switch model {
        case .bytePairEncoding:
            bpe = try BytePairEncoding(tokens: tokens, merges: merges, path: path)
            spm = nil
        case .sentencePiece:
            bpe = nil
            spm = try SentencePiece(tokens: tokens, scores: scores, types: types, unknown: unknown, path: path)
        }
        var specials: [(bytes: [UInt8], id: Int, control: Bool)] = []
        for (id, type) in types.enumerated() where type == .control || type == .userDefined {
            let bytes = Array(tokens[id].utf8)
            if !bytes.isEmpty { specials.append((bytes, id, type == .control)) }
        }
        specials.sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        self.specials = specials
        var byFirst = [[Int]](repeating: [], count: 256)
        var userByFirst = [[Int]](repeating: [], count: 256)
        for (position, special) in specials.enumerated() {
            byFirst[Int(special.bytes[0])].append(position)
            if !special.control { userByFirst[Int(special.bytes[0])].append(position) }
        }
        specialsByFirstByte = byFirst
        userDefinedByFirstByte = userByFirst
        var ends = Set<Int>()
        if let eos { ends.insert(eos) }
        if let eot { ends.insert(eot) }
        let markers: Set<String> = ["<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|eot_id|>"]
        for special in specials where special.control && markers.contains(tokens[special.id]) {
            ends.insert(special.id)
        }
        endOfGeneration = ends
    }

    // MARK: encoding

    /// Token ids for `text`, exactly as the model sees its input.
    /// - Parameters:
    ///   - addSpecial: add BOS/EOS as the metadata asks.
    ///   - parseSpecial: match control tokens written as text (`<|im_start|>`); user-defined tokens always match.
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = false) -> [Int] {
        encode(bytes: Array(text.utf8), addSpecial: addSpecial, parseSpecial: parseSpecial)
    }

    /// Token ids for raw bytes, which need not be valid UTF-8: byte-level BPE reads an invalid byte as U+FFFD (as
    /// llama.cpp does); SentencePiece encodes it with its byte token.
    public func encode(bytes: [UInt8], addSpecial: Bool = true, parseSpecial: Bool = false) -> [Int] {
        SentencePiece.LookupMemo.with { memo in
            encode(bytes: bytes, addSpecial: addSpecial, parseSpecial: parseSpecial, memo: memo)
        }
    }

    private func encode(bytes: [UInt8], addSpecial: Bool, parseSpecial: Bool, memo: SentencePiece.LookupMemo)
        -> [Int]
    {
        var output: [Int] = []
        if addSpecial && addBOS, let bos { output.append(bos) }
        var fragmentStart = 0
        var position = 0
        var first = true
        func flush(_ end: Int) {
            if end > fragmentStart {
                encodeFragment(bytes[fragmentStart..<end], isFirst: first, memo: memo, into: &output)
                first = false
            }
        }
        let candidates = parseSpecial ? specialsByFirstByte : userDefinedByFirstByte
        while position < bytes.count {
            var matched: (length: Int, id: Int)? = nil
            for candidate in candidates[Int(bytes[position])] {
                let special = specials[candidate]
                let length = special.bytes.count
                if position + length <= bytes.count
                    && bytes[position..<(position + length)].elementsEqual(special.bytes)
                {
                    matched = (length, special.id)
                    break  // candidates are longest first
                }
            }
            if let matched {
                flush(position)
                output.append(matched.id)
                first = false
                position += matched.length
                fragmentStart = position
            } else {
                position += 1
            }
        }
        flush(bytes.count)
        if addSpecial && addEOS, let eos { output.append(eos) }
        return output
    }

    private func encodeFragment(
        _ bytes: ArraySlice<UInt8>, isFirst: Bool, memo: SentencePiece.LookupMemo, into output: inout [Int]
    ) {
        if let bpe, case .bytePairEncoding(let pre) = model {
            let codePoints = PreTokenizer.codePoints(bytes)
            var pieceBytes: [UInt8] = []
            for piece in pre.split(codePoints) {
                pieceBytes.removeAll(keepingCapacity: true)
                for index in piece { PreTokenizer.appendUTF8(codePoints[index], to: &pieceBytes) }
                pieceBytes.withUnsafeBufferPointer { bpe.encode($0, into: &output) }
            }
        } else if let spm {
            // Escape spaces as ▁ (U+2581), with a leading one when the metadata asks for a space prefix.
            var escaped: [UInt8] = []
            escaped.reserveCapacity(3 * bytes.count + 3)
            @inline(__always) func appendSpace() {
                escaped.append(0xE2)
                escaped.append(0x96)
                escaped.append(0x81)
            }
            if addSpacePrefix && isFirst { appendSpace() }
            for byte in bytes {
                if byte == 0x20 { appendSpace() } else { escaped.append(byte) }
            }
            spm.encode(escaped, memo: memo, into: &output)
        }
    }

    // MARK: decoding

    /// The bytes a token stands for. Control tokens give their text only when `renderSpecial` is set.
    public func bytes(of token: Int, renderSpecial: Bool = false) -> [UInt8] {
        guard token >= 0 && token < tokens.count else { return [] }
        let text = tokens[token]
        switch types[token] {
        case .control, .unknown, .unused:
            return renderSpecial ? Array(text.utf8) : []
        case .userDefined:
            return Array(text.utf8)
        case .byte:
            if case .sentencePiece = model, text.hasPrefix("<0x"),
                let byte = UInt8(text.dropFirst(3).dropLast(), radix: 16)
            {
                return [byte]
            }
            return Array(text.utf8)
        case .normal:
            switch model {
            case .bytePairEncoding:
                var result: [UInt8] = []
                for scalar in text.unicodeScalars {
                    if let byte = BytePairEncoding.characterBytes[scalar.value] {
                        result.append(byte)
                    } else {
                        result += Array(String(scalar).utf8)
                    }
                }
                return result
            case .sentencePiece:
                var result: [UInt8] = []
                for scalar in text.unicodeScalars {
                    if scalar == "\u{2581}" { result.append(0x20) } else { result += Array(String(scalar).utf8) }
                }
                return result
            }
        }
    }

    /// Decodes a whole token sequence (invalid UTF-8 becomes U+FFFD).
    public func decode(_ tokens: [Int], renderSpecial: Bool = false) -> String {
        var detokenizer = StreamingDetokenizer(tokenizer: self, renderSpecial: renderSpecial)
        var text = ""
        for token in tokens { text += detokenizer.append(token) }
        return text + detokenizer.finish()
    }
}

/// Turns a stream of tokens into text without ever emitting a broken UTF-8 sequence: bytes of an incomplete
/// character wait for the next token; `finish()` flushes what is left (as U+FFFD if it never completes).
public struct StreamingDetokenizer: Sendable {
    let tokenizer: Tokenizer
    let renderSpecial: Bool
    var pending: [UInt8] = []
    var emittedAny = false

    public init(tokenizer: Tokenizer, renderSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.renderSpecial = renderSpecial
    }

    /// The text completed by `token` (possibly empty).
    public mutating func append(_ token: Int) -> String {
        var bytes = tokenizer.bytes(of: token, renderSpecial: renderSpecial)
        // SentencePiece with a space prefix: the first emitted space is the prefix, not text.
        if !emittedAny && tokenizer.addSpacePrefix, case .sentencePiece = tokenizer.model, bytes.first == 0x20 {
            bytes.removeFirst()
        }
        if !bytes.isEmpty { emittedAny = true }
        pending += bytes
        let complete = Self.completePrefixLength(pending)
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Flushes the remaining bytes.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// The length of the longest prefix that does not end inside a UTF-8 sequence that could still complete.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        var index = bytes.count
        // Look back at most 3 bytes for the lead byte of a sequence.
        var back = 0
        while back < 3 && index > 0 && bytes[index - 1] & 0xC0 == 0x80 {
            index -= 1
            back += 1
        }
        guard index > 0 else { return bytes.count }
        let lead = bytes[index - 1]
        let needed: Int
        switch lead {
        case 0xC0...0xDF: needed = 2
        case 0xE0...0xEF: needed = 3
        case 0xF0...0xF7: needed = 4
        default: needed = 1  // ASCII, or a byte that starts no sequence: nothing to wait for
        }
        if needed > back + 1 { return index - 1 }  // incomplete: hold the lead and its continuations
        return bytes.count
    }
}
