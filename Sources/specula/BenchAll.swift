import ArgumentParser
import Foundation
import SpeculaBench
import SpeculaEngine
import SpeculaModels
import SpeculaTheory
import SpeculaVerify

/// `specula bench all`: acceptance, trees, block and speed in turn with the same options, then `results.md` in the
/// output directory with all four reports.
struct BenchAll: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all", abstract: "Run acceptance, trees, block and speed with their defaults; write results.md.")

    @OptionGroup var options: BenchOptions

    func run() throws {
        var sections: [String] = []
        sections.append(try command(BenchAcceptance.self, options: options) { $0.options = $1 }.measure())
        sections.append(try command(BenchTrees.self, options: options) { $0.options = $1 }.measure())
        sections.append(try command(BenchBlock.self, options: options) { $0.options = $1 }.measure())
        sections.append(try command(BenchSpeed.self, options: options) { $0.options = $1 }.measure())
        let path = (options.out as NSString).appendingPathComponent("results.md")
        let text = "# Specula benchmark results\n\n" + sections.joined(separator: "\n")
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        } catch {
            throw CommandError("cannot write '\(path)': \(error.localizedDescription)")
        }
        print("wrote \(path)")
    }
}

/// A benchmark command with its own defaults and the shared options of `bench all`.
func command<C: ParsableCommand>(_ type: C.Type, options: BenchOptions, set: (inout C, BenchOptions) -> Void) throws
    -> C
{
    // Parse with a placeholder to get the command's defaults, then put in the real options and validate them.
    var command = try type.parse(["--target", options.target])
    set(&command, options)
    try command.validate()
    return command
}
