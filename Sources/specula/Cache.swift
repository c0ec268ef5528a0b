import ArgumentParser
import Foundation
import SpeculaModels

/// `specula cache`: the weight cache's files (packed weights kept between processes; docs/inference.md).
struct Cache: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List or prune the weight cache (the packed weights later loads map instead of packing).",
        subcommands: [List.self, Prune.self])

    struct Options: ParsableArguments {
        @Option(
            name: .long,
            help: ArgumentHelp(
                "The cache directory (default: SPECULA_WEIGHT_CACHE, else $XDG_CACHE_HOME/specula/weights, else "
                    + "~/.cache/specula/weights)."))
        var directory: String?
        @Flag(name: .long, help: "Print JSON.") var json = false

        func resolved() throws -> String {
            if let directory { return directory }
            guard let standard = WeightCache.standard.resolvedDirectory else {
                throw CommandError("the weight cache is off (SPECULA_WEIGHT_CACHE) and no --directory was given")
            }
            return standard
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each cache file with its size, its model file and whether a load still reads it.")
        @OptionGroup var options: Options

        func run() throws {
            let directory = try options.resolved()
            let files = WeightCache.files(in: directory)
            if options.json {
                print(Cache.json(directory: directory, files: files, key: "files").rendered(indent: 2))
                return
            }
            Cache.show(files, heading: "\(directory): \(files.count) files")
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Remove the cache files no load will read again: their model file is gone or changed, or they do "
                + "not parse. (Writing a new cache file does the same.)")
        @OptionGroup var options: Options

        func run() throws {
            let directory = try options.resolved()
            let removed = WeightCache.prune(directory: directory)
            if options.json {
                print(Cache.json(directory: directory, files: removed, key: "removed").rendered(indent: 2))
                return
            }
            Cache.show(removed, heading: "\(directory): removed \(removed.count) files")
        }
    }

    /// The heading with the files' total size, then a line per file: name, size, state and model file.
    static func show(_ files: [WeightCacheFileInfo], heading: String) {
        print("\(heading), \(mebibytes(files.reduce(0) { $0 + $1.bytes }))")
        for file in files {
            let name = file.path.split(separator: "/").last.map(String.init) ?? file.path
            print("  \(name)  \(mebibytes(file.bytes))  \(describe(file))")
        }
    }

    static func mebibytes(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }

    static func describe(_ file: WeightCacheFileInfo) -> String {
        let source = file.source.map { " — from \($0)" } ?? ""
        switch file.state {
        case .current: return "current\(source)"
        case .stale(let reason): return "stale: \(reason)\(source)"
        }
    }

    static func json(directory: String, files: [WeightCacheFileInfo], key: String) -> JSONValue {
        .object([
            ("directory", .string(directory)),
            (
                key,
                .array(
                    files.map { file in
                        var pairs: [(String, JSONValue)] = [
                            ("path", .string(file.path)), ("bytes", .integer(file.bytes)),
                        ]
                        if let source = file.source { pairs.append(("source", .string(source))) }
                        switch file.state {
                        case .current: pairs.append(("state", .string("current")))
                        case .stale(let reason):
                            pairs.append(("state", .string("stale")))
                            pairs.append(("reason", .string(reason)))
                        }
                        return .object(pairs)
                    })
            ),
        ])
    }
}
