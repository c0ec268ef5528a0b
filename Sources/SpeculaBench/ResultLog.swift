import Foundation

/// One finished unit of a benchmark: one prompt under one configuration, with every metric's values (per position
/// or per run). Written as one JSON line; a rerun with the same signature skips the units already written.
public struct BenchRecord: Codable, Sendable, Equatable {
    /// `acceptance`, `trees`, `block`, `speed`.
    public var benchmark: String
    /// The configuration inside the benchmark (for example `binary:3 rrs T=0.6`).
    public var configuration: String
    public var prompt: String
    public var category: String
    /// What must match for a record to count when resuming: models, dataset, lengths, seed.
    public var signature: String
    public var metrics: [String: [Double]]

    public init(
        benchmark: String, configuration: String, prompt: String, category: String, signature: String,
        metrics: [String: [Double]]
    ) {
        self.benchmark = benchmark
        self.configuration = configuration
        self.prompt = prompt
        self.category = category
        self.signature = signature
        self.metrics = metrics
    }

    public var key: String { configuration + "\u{1F}" + prompt }
}

/// The JSON-lines file of a benchmark's records in the output directory: read what is there (records of another
/// signature and malformed lines are reported and left alone), append each new record as soon as it is finished.
public final class ResultLog {
    public let path: String
    public let signature: String
    public private(set) var records: [BenchRecord] = []
    public private(set) var warnings: [String] = []
    private var keys: Set<String> = []

    public init(directory: String, benchmark: String, signature: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw DatasetError("output directory '\(directory)' is a file")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw DatasetError("cannot create the output directory '\(directory)': \(error.localizedDescription)")
        }
        path = (directory as NSString).appendingPathComponent("\(benchmark).jsonl")
        self.signature = signature
        if let data = FileManager.default.contents(atPath: path) {
            let text = String(decoding: data, as: UTF8.self)
            var foreign = 0
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where !line.isEmpty {
                guard let record = try? JSONDecoder().decode(BenchRecord.self, from: Data(line.utf8)) else {
                    warnings.append("\(path):\(number + 1): not a benchmark record; ignored")
                    continue
                }
                if record.signature != signature {
                    foreign += 1
                    continue
                }
                if keys.insert(record.key).inserted { records.append(record) }
            }
            if foreign > 0 {
                warnings.append("\(path): \(foreign) records of other settings ignored (not resumed, not reported)")
            }
            // A run stopped in the middle of a write leaves a last line without its newline: end it, so that the
            // next record starts a line of its own instead of joining the broken one (and being lost with it).
            if let last = data.last, last != 0x0A {
                guard let handle = FileHandle(forWritingAtPath: path) else {
                    throw DatasetError("cannot write '\(path)'")
                }
                do {
                    try handle.seekToEnd()
                    try handle.write(contentsOf: Data([0x0A]))
                    try handle.close()
                } catch {
                    throw DatasetError("cannot write '\(path)': \(error.localizedDescription)")
                }
            }
        }
        // Fail now, not after the first hour: the file must be writable.
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw DatasetError("cannot write '\(path)'")
            }
        } else if !FileManager.default.isWritableFile(atPath: path) {
            throw DatasetError("cannot write '\(path)'")
        }
    }

    /// A 64-bit FNV-1a hash of `text`'s UTF-8 bytes: the same on every machine and run (Swift's `hashValue` is
    /// seeded per process), for deriving a unit's random seed from its key.
    public static func stableHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    public func contains(configuration: String, prompt: String) -> Bool {
        keys.contains(configuration + "\u{1F}" + prompt)
    }

    /// Appends a record to the file (one line, flushed) and to `records`.
    public func append(_ record: BenchRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var line = try encoder.encode(record)
        line.append(0x0A)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw DatasetError("cannot write '\(path)'") }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
        } catch {
            throw DatasetError("cannot write '\(path)': \(error.localizedDescription)")
        }
        if keys.insert(record.key).inserted { records.append(record) }
    }
}
