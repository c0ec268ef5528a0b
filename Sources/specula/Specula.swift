import ArgumentParser
import Foundation

/// The `specula` command: parse, validate, call the libraries, print. No logic of its own.
@main
struct Specula: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "specula",
        abstract: "Exact speculative decoding: verifiers, optimal acceptance rates and benchmarks.",
        subcommands: [Bound.self, Inspect.self, Tokenize.self, Generate.self, Logits.self, Bench.self]
    )

    /// Runs the command; a bad flag or bad input prints one line to standard error and exits with code 1.
    static func main() {
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
