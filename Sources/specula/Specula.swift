import ArgumentParser
import CSpeculaSystem
import Foundation

/// The `specula` command: parse, validate, call the libraries, print. No logic of its own.
@main
struct Specula: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "specula",
        abstract: "Exact speculative decoding: verifiers, optimal acceptance rates and benchmarks.",
        subcommands: [
            Bound.self, Inspect.self, Tokenize.self, Generate.self, Serve.self, Logits.self, Audit.self, Bench.self,
            Synthetic.self, Cache.self,
        ]
    )

    /// Runs the command; a bad flag or bad input prints one line to standard error and exits with code 1.
    static func main() {
        // A decoding step allocates and frees the same few large buffers (logits are 0.6 MB per row for a
        // 151,936-token vocabulary) hundreds of times a second: keep them in the heap.
        specula_keep_large_buffers(256 << 20, 1 << 30)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)  // --help and --version print as usual
            }
            let message = Specula.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            Foundation.exit(1)
        }
    }
}

/// A user-facing error from the CLI layer (a file that cannot be read, JSON that does not parse).
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
