/// The regex pre-tokenizers of byte-level BPE vocabularies, written as scanners over Unicode scalars.
///
/// Each splits text into the pieces the BPE merges run within. The patterns are those `tokenizer.ggml.pre` names
/// (as llama.cpp defines them); character classes follow Unicode: `\p{L}` letters (Lu, Ll, Lt, Lm, Lo), `\p{N}`
/// numbers (Nd, Nl, No), `\s` the White_Space property.
public enum PreTokenizer: String, Sendable, CaseIterable {
    /// Qwen2: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
    /// \s+(?!\S)|\s+`.
    case qwen2
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    case gpt2
    /// SmolLM: every number character on its own (`\p{N}`), then the GPT-2 pattern on what lies between.
    case smollm

    /// The pre-tokenizer for a `tokenizer.ggml.pre` value, or nil if it is not supported.
    public init?(ggufName: String) {
        switch ggufName {
        case "qwen2": self = .qwen2
        case "smollm": self = .smollm
        case "gpt-2", "gpt2", "default": self = .gpt2
        default: return nil
        }
    }

    /// Decodes UTF-8 leniently, as llama.cpp does: each byte that does not start a complete sequence becomes
    /// U+FFFD and decoding resumes at the next byte. Surrogate code points and overlong forms pass through.
    public static func codePoints(_ bytes: ArraySlice<UInt8>) -> [UInt32] {
        var result: [UInt32] = []
        result.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        let end = bytes.endIndex
        func continuation(_ k: Int) -> Bool { k < end && bytes[k] & 0xC0 == 0x80 }
        while i < end {
            let first = bytes[i]
            if first & 0x80 == 0 {
                result.append(UInt32(first))
                i += 1
            } else if first & 0x40 == 0 {
                result.append(0xFFFD)
                i += 1
            } else if first & 0x20 == 0 {
                if continuation(i + 1) {
                    result.append(UInt32(first & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F))
                    i += 2
                } else {
                    result.append(0xFFFD)
                    i += 1
                }
            } else if first & 0x10 == 0 {
                if continuation(i + 1) && continuation(i + 2) {
                    result.append(
                        UInt32(first & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F))
                    i += 3
                } else {
                    result.append(0xFFFD)
                    i += 1
                }
            } else if first & 0x08 == 0 {
                if continuation(i + 1) && continuation(i + 2) && continuation(i + 3) {
                    result.append(
                        UInt32(first & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F)
                            << 6
                            | UInt32(bytes[i + 3] & 0x3F))
                    i += 4
                } else {
                    result.append(0xFFFD)
                    i += 1
                }
            } else {
                result.append(0xFFFD)
                i += 1
            }
        }
        return result
    }

    /// Appends the UTF-8 bytes of a code point (any value below 2^21, as the lenient decoder produces).
    @inline(__always)
    static func appendUTF8(_ c: UInt32, to bytes: inout [UInt8]) {
        if c < 0x80 {
            bytes.append(UInt8(c))
        } else if c < 0x800 {
            bytes.append(UInt8(0xC0 | (c >> 6)))
            bytes.append(UInt8(0x80 | (c & 0x3F)))
        } else if c < 0x10000 {
            bytes.append(UInt8(0xE0 | (c >> 12)))
            bytes.append(UInt8(0x80 | ((c >> 6) & 0x3F)))
            bytes.append(UInt8(0x80 | (c & 0x3F)))
        } else {
            bytes.append(UInt8(0xF0 | ((c >> 18) & 0x07)))
            bytes.append(UInt8(0x80 | ((c >> 12) & 0x3F)))
            bytes.append(UInt8(0x80 | ((c >> 6) & 0x3F)))
            bytes.append(UInt8(0x80 | (c & 0x3F)))
        }
    }

    /// Splits code points into pieces (ranges of `codePoints`).
    public func split(_ scalars: [UInt32]) -> [Range<Int>] {
        let classes = scalars.map(CharacterClass.init)
        var pieces: [Range<Int>] = []
        switch self {
        case .qwen2: Self.splitQwen2(scalars, classes, 0..<scalars.count, into: &pieces)
        case .gpt2: Self.splitGPT2(scalars, classes, 0..<scalars.count, into: &pieces)
        case .smollm:
            var start = 0
            for index in 0..<scalars.count where classes[index] == .number {
                if start < index { Self.splitGPT2(scalars, classes, start..<index, into: &pieces) }
                pieces.append(index..<(index + 1))
                start = index + 1
            }
            if start < scalars.count { Self.splitGPT2(scalars, classes, start..<scalars.count, into: &pieces) }
        }
        return pieces
    }

    enum CharacterClass: UInt8 {
        case letter, number, newline, whitespace, other

        init(_ value: UInt32) {
            if value < 128 {
                switch value {
                case 0x0A, 0x0D: self = .newline
                case 0x09, 0x0B, 0x0C, 0x20: self = .whitespace
                case 0x30...0x39: self = .number
                case 0x41...0x5A, 0x61...0x7A: self = .letter
                default: self = .other
                }
                return
            }
            // Surrogates and values past U+10FFFF (from lenient decoding of invalid input) are "other".
            guard let scalar = Unicode.Scalar(value) else {
                self = .other
                return
            }
            switch scalar.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
                self = .letter
            case .decimalNumber, .letterNumber, .otherNumber:
                self = .number
            default:
                self = scalar.properties.isWhitespace ? .whitespace : .other
            }
        }

        var isSpace: Bool { self == .whitespace || self == .newline }
        /// `[^\s\p{L}\p{N}]`
        var isSymbol: Bool { self == .other }
    }

    /// Length of an English contraction at `index` (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`), or 0.
    static func contraction(_ s: [UInt32], _ index: Int, _ end: Int, caseInsensitive: Bool) -> Int {
        guard index + 1 < end, s[index] == 0x27 else { return 0 }  // '
        func lower(_ i: Int) -> UInt32 {
            guard i < end else { return 0 }
            let c = s[i]
            if caseInsensitive, c >= 0x41 && c <= 0x5A { return c + 32 }
            return c
        }
        switch lower(index + 1) {
        case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
        case 0x72, 0x76: return lower(index + 2) == 0x65 ? 3 : 0  // re ve
        case 0x6C: return lower(index + 2) == 0x6C ? 3 : 0  // ll
        default: return 0
        }
    }

    /// `\s+(?!\S)|\s+` at `index` (a whitespace scalar): the run, less its last scalar when a non-space follows
    /// and the run is longer than one.
    static func whitespaceRun(_ c: [CharacterClass], _ index: Int, _ end: Int) -> Int {
        var j = index
        while j < end && c[j].isSpace { j += 1 }
        if j < end && j - index > 1 { return j - 1 }
        return j
    }

    static func splitQwen2(
        _ s: [UInt32], _ c: [CharacterClass], _ range: Range<Int>, into pieces: inout [Range<Int>]
    ) {
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let start = i
            let cls = c[i]
            // 1. contractions, case-insensitive
            let contraction = contraction(s, i, end, caseInsensitive: true)
            if contraction > 0 {
                i += contraction
            } else if cls == .letter || (cls != .newline && cls != .number && i + 1 < end && c[i + 1] == .letter) {
                // 2. [^\r\n\p{L}\p{N}]?\p{L}+
                i += cls == .letter ? 0 : 1
                while i < end && c[i] == .letter { i += 1 }
            } else if cls == .number {
                // 3. \p{N}
                i += 1
            } else if cls.isSymbol || (s[i] == 0x20 && i + 1 < end && c[i + 1].isSymbol) {
                // 4. ` ?[^\s\p{L}\p{N}]+[\r\n]*`
                if s[i] == 0x20 { i += 1 }
                while i < end && c[i].isSymbol { i += 1 }
                while i < end && c[i] == .newline { i += 1 }
            } else {
                // cls is whitespace or newline here.
                var j = i
                var lastNewline = -1
                while j < end && c[j].isSpace {
                    if c[j] == .newline { lastNewline = j }
                    j += 1
                }
                if lastNewline >= 0 {
                    // 5. \s*[\r\n]+ ends at the last newline of the run.
                    i = lastNewline + 1
                } else {
                    // 6, 7.
                    i = whitespaceRun(c, i, end)
                }
            }
            pieces.append(start..<i)
        }
    }

    static func splitGPT2(
        _ s: [UInt32], _ c: [CharacterClass], _ range: Range<Int>, into pieces: inout [Range<Int>]
    ) {
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let start = i
            let cls = c[i]
            let space = s[i] == 0x20 && i + 1 < end
            let next = space ? c[i + 1] : cls
            let contraction = contraction(s, i, end, caseInsensitive: false)
            if contraction > 0 {
                i += contraction
            } else if next == .letter && (cls == .letter || space) {
                i += space ? 1 : 0
                while i < end && c[i] == .letter { i += 1 }
            } else if next == .number && (cls == .number || space) {
                i += space ? 1 : 0
                while i < end && c[i] == .number { i += 1 }
            } else if next.isSymbol && (cls.isSymbol || space) {
                i += space ? 1 : 0
                while i < end && c[i].isSymbol { i += 1 }
            } else {
                i = whitespaceRun(c, i, end)
            }
            pieces.append(start..<i)
        }
    }
}
