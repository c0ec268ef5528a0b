#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file of a weight cache directory, as `specula cache list` shows it.
public struct WeightCacheFileInfo: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// Its model file is where the key says and unchanged: a load of that file (with the same build and
        /// re-quantization) reads it.
        case current
        /// No load will read it again; the reason says why.
        case stale(reason: String)
    }

    public var path: String
    public var bytes: Int
    /// The model file it was made from (nil when the header does not say).
    public var source: String?
    public var state: State
}

extension WeightCache {
    /// The cache files (`*.weights`) of `directory`, by name, each with its size, its model file and whether a load
    /// can still read it: a file is stale when its model file is gone or has another identity than the one it was
    /// made from, when its header does not parse, or when it names no model file (written before keys recorded one).
    /// Empty when the directory does not exist.
    public static func files(in directory: String) -> [WeightCacheFileInfo] {
        guard let stream = opendir(directory) else { return [] }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasSuffix(".weights"), !name.hasPrefix(".") { names.append(name) }
        }
        closedir(stream)
        return names.sorted().map { info(directory + "/" + $0) }
    }

    /// Removes the stale files of `directory` (see ``files(in:)``) except `keeping`, and returns what it removed.
    /// A process that has a removed file mapped keeps reading it: the pages go when the last mapping does.
    @discardableResult
    public static func prune(directory: String, keeping: String? = nil) -> [WeightCacheFileInfo] {
        files(in: directory).filter { file in
            guard case .stale = file.state, file.path != keeping else { return false }
            return unlink(file.path) == 0
        }
    }

    static func info(_ path: String) -> WeightCacheFileInfo {
        var status = stat()
        let bytes = stat(path, &status) == 0 ? Int(status.st_size) : 0
        let key: String
        do { key = try WeightCacheFile.storedKey(path: path) } catch {
            return WeightCacheFileInfo(path: path, bytes: bytes, source: nil, state: .stale(reason: "\(error)"))
        }
        guard let range = key.firstRange(of: "; source ") else {
            return WeightCacheFileInfo(
                path: path, bytes: bytes, source: nil,
                state: .stale(reason: "written by an earlier build, which did not record its model file"))
        }
        let source = String(key[range.upperBound...])
        guard let identity = identity(of: source) else {
            return WeightCacheFileInfo(
                path: path, bytes: bytes, source: source, state: .stale(reason: "its model file is gone"))
        }
        guard key.contains("; \(identity); ") else {
            return WeightCacheFileInfo(
                path: path, bytes: bytes, source: source, state: .stale(reason: "its model file has changed"))
        }
        return WeightCacheFileInfo(path: path, bytes: bytes, source: source, state: .current)
    }
}

extension WeightCacheFile {
    /// The key stored in the header of the cache file at `path`, read without mapping the file; throws ``Invalid``
    /// when the file cannot be read or is not a cache file of this format.
    package static func storedKey(path: String) throws -> String {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw Invalid(reason: "cannot open it: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var header = [UInt8](repeating: 0, count: WeightCache.magic.count + 16 + 4096)
        let count = header.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { throw Invalid(reason: "cannot read it: \(String(cString: strerror(errno)))") }
        return try header.withUnsafeBytes { raw in
            var reader = Reader(bytes: UnsafeRawBufferPointer(rebasing: raw.prefix(count)))
            guard let key = try reader.key() else { throw Invalid(reason: "its key is not text") }
            return key
        }
    }
}
