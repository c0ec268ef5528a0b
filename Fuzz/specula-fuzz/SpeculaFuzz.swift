import CSpeculaFuzz
import Foundation

/// `specula-fuzz TARGET [libFuzzer flags] [corpus directories]`: coverage-guided fuzzing of one of the parsers that
/// read what a user, a model file or a client hands over. Built only by `scripts/fuzz` (with `SPECULA_FUZZ=1`,
/// `-sanitize=fuzzer,address`); every target either accepts its input or throws — a crash, an address error, a
/// broken property (each target says which) or a timeout is a finding.
@main
enum SpeculaFuzz {
    static func main() {
        let arguments = CommandLine.arguments
        let names = FuzzTarget.all.map(\.name)
        guard arguments.count >= 2, let target = FuzzTarget.all.first(where: { $0.name == arguments[1] }) else {
            FileHandle.standardError.write(
                Data(
                    "usage: specula-fuzz TARGET [libFuzzer flags] [corpus...]; TARGET: \(names.joined(separator: ", "))\n"
                        .utf8))
            exit(2)
        }
        do { try target.prepare() } catch {
            FileHandle.standardError.write(Data("specula-fuzz \(target.name): \(error)\n".utf8))
            exit(2)
        }
        FuzzTarget.selected = target
        // libFuzzer sees the program name and the arguments after the target's name.
        var rest = [arguments[0]] + arguments.dropFirst(2)
        var pointers: [UnsafeMutablePointer<CChar>?] = rest.indices.map { strdup(rest[$0]) } + [nil]
        rest.removeAll()
        var count = CInt(pointers.count - 1)
        let status = pointers.withUnsafeMutableBufferPointer { buffer -> CInt in
            var base = buffer.baseAddress
            return LLVMFuzzerRunDriver(&count, &base, fuzzOneInput)
        }
        exit(status)
    }
}

/// Runs the selected target on one input. Exported under libFuzzer's own name too: libFuzzer's archive refers to it,
/// and a debug build (which keeps that reference) does not link without it.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.selected.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// One fuzz target: what it loads once, and what it does with one input.
final class FuzzTarget: @unchecked Sendable {
    let name: String
    let prepare: () throws -> Void
    let run: (UnsafeRawBufferPointer) -> Void

    init(name: String, prepare: @escaping () throws -> Void = {}, run: @escaping (UnsafeRawBufferPointer) -> Void) {
        self.name = name
        self.prepare = prepare
        self.run = run
    }

    nonisolated(unsafe) static var selected: FuzzTarget!

    static let all: [FuzzTarget] = [
        FuzzTarget(name: "gguf", run: ModelFileFuzz.run),
        FuzzTarget(name: "tokenizer", prepare: TokenizerFuzz.prepare, run: TokenizerFuzz.run),
        FuzzTarget(name: "template", run: TemplateFuzz.run),
        FuzzTarget(name: "bound", run: BoundFuzz.run),
        FuzzTarget(name: "tree", run: TreeFuzz.run),
        FuzzTarget(name: "request", prepare: RequestFuzz.prepare, run: RequestFuzz.run),
    ]
}

/// Where the pinned models are (as the tests find them): `SPECULA_MODELS`, else `~/.cache/specula/models`.
func pinnedModelPath(_ file: String) throws -> String {
    let directory =
        ProcessInfo.processInfo.environment["SPECULA_MODELS"]
        ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache/specula/models")
    let path = (directory as NSString).appendingPathComponent(file)
    guard FileManager.default.fileExists(atPath: path) else {
        throw FuzzSetupError(description: "\(path) is missing: run scripts/fetch-models (or set SPECULA_MODELS)")
    }
    return path
}

struct FuzzSetupError: Error, CustomStringConvertible { var description: String }

/// A property every accepted input must keep; broken, it stops the fuzzer like a crash (with the input saved).
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        FileHandle.standardError.write(Data("property broken: \(message())\n".utf8))
        abort()
    }
}
