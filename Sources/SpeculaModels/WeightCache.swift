import SpeculaKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a model's packed weights are cached between processes. Packing a model at load (``PackedMatrix``) costs
/// about as much as reading it twice: the pinned target and draft take 0.9 and 0.6 s, most of it clearing fresh
/// pages and moving bits. A cache file holds the packed bytes (and re-quantized rows) of one model file, so a later
/// load maps them from the page cache instead: no clearing, no packing, and processes loading the same model share
/// the pages.
///
/// A cache file is named after the model and a hash of its key: the cache format, the packed layouts' version, the
/// kernels compiled in, the model file's identity (device, inode, size, modification time in nanoseconds) and the
/// re-quantization asked for, then the model file's path. A model file changed in any way the file system records
/// gets another key, so a stale file is never read; the next cache file written removes the files whose model file
/// is gone or changed (``prune(directory:keeping:)``; `specula cache list` and `specula cache prune` show and remove
/// them on demand; `rm -r` the directory at any time, nothing else is there). A
/// file is written whole to a temporary name, flushed, then renamed into place, so a reader sees a complete file or
/// none; a file that does not parse or does not match the model is rebuilt. The packed bytes are not hashed at load,
/// as the model file's are not: the cache is as trusted as the model file beside it.
public enum WeightCache: Sendable, Equatable {
    /// No cache: every load packs.
    case off
    /// The directory `SPECULA_WEIGHT_CACHE` names (`off` or `0` turns the cache off), else
    /// `$XDG_CACHE_HOME/specula/weights`, else `~/.cache/specula/weights`.
    case standard
    /// This directory.
    case directory(String)

    /// The directory this setting names, nil when off (or no home directory is known).
    public var resolvedDirectory: String? {
        switch self {
        case .off: return nil
        case .directory(let path): return path
        case .standard:
            if let value = getenv("SPECULA_WEIGHT_CACHE").map({ String(cString: $0) }) {
                return ["off", "0", "none", ""].contains(value.lowercased()) ? nil : value
            }
            if let xdg = getenv("XDG_CACHE_HOME").map({ String(cString: $0) }), xdg.hasPrefix("/") {
                return xdg + "/specula/weights"
            }
            if let home = getenv("HOME").map({ String(cString: $0) }), !home.isEmpty {
                return home + "/.cache/specula/weights"
            }
            return nil
        }
    }

    /// The version of the cache file format.
    static let formatVersion: UInt32 = 1
    /// The version of the packed layouts: raise it whenever ``PackedMatrix`` or ``Requantize`` stores other bytes
    /// for the same input, so that files of the earlier layout are not read.
    static let layoutVersion = 1
    static let magic: [UInt8] = Array("SPECWGHT".utf8)
    /// Blobs start at page boundaries (the kernels need 64-byte alignment; a page keeps each matrix's own pages).
    static let alignment = 4096

    /// The key of `modelPath`'s cache (nil when the file cannot be examined). It ends with the model file's absolute
    /// path (`source`), which ``prune(directory:keeping:)`` reads to find the files of model files that changed.
    package static func key(modelPath: String, requantization: Requantization?) -> String? {
        guard let identity = identity(of: modelPath) else { return nil }
        let requantized = requantization.map { "\($0.type)\($0.output ? "+output" : "")" } ?? "none"
        return "specula weights \(formatVersion); layout \(layoutVersion); kernels \(FastDot.kernelName); "
            + "\(identity); requantization \(requantized); source \(absolutePath(modelPath))"
    }

    /// What the file system records of a file's identity: device, inode, size and modification time in nanoseconds
    /// (nil when it cannot be examined).
    static func identity(of path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return "device \(status.st_dev) inode \(status.st_ino) size \(status.st_size) "
            + "modified \(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec)"
    }

    static func absolutePath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The cache file's path for `modelPath` under `directory`.
    package static func filePath(directory: String, modelPath: String, key: String) -> String {
        let base = modelPath.split(separator: "/").last.map(String.init) ?? "model"
        let stem = base.hasSuffix(".gguf") ? String(base.dropLast(5)) : base
        // FNV-1a, 64 bits: a name, not a check (the key inside the file is compared whole).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let hex = String(hash, radix: 16)
        return directory + "/" + stem + "-" + String(repeating: "0", count: 16 - hex.count) + hex + ".weights"
    }
}

/// What a load did with the weight cache.
public enum WeightCacheStatus: Sendable, Equatable, CustomStringConvertible {
    /// No cache was used: turned off, or nothing of this model is packed.
    case off
    /// The packed weights were mapped from this file.
    case read(path: String)
    /// The weights were packed and this file written.
    case written(path: String)
    /// The file there could not be used (`reason`): the weights were packed and the file written again.
    case rewritten(path: String, reason: String)
    /// The weights were packed; no file was written (`reason`). Nothing else is lost.
    case notWritten(reason: String)

    public var description: String {
        switch self {
        case .off: return "off"
        case .read(let path): return "read from \(path)"
        case .written(let path): return "packed, written to \(path)"
        case .rewritten(let path, let reason): return "packed, \(path) written again (\(reason))"
        case .notWritten(let reason): return "packed, not cached (\(reason))"
        }
    }
}

/// One packed matrix of a model, as a cache file stores it.
package struct WeightCacheEntry: Equatable {
    package var name: String
    /// The type in the model file.
    package var storedType: TensorType
    /// The type of the rows the products read (`storedType` unless re-quantized).
    package var type: TensorType
    package var rowCount: Int
    package var columnCount: Int
    /// The re-quantized rows (empty when the rows are the model file's).
    package var rows: Range<Int>
    package var packed: Range<Int>
}

/// A cache file opened and checked against the key: its entries point into the mapping.
package final class WeightCacheFile: @unchecked Sendable {
    package let path: String
    package let mapping: MappedFile
    package let entries: [String: WeightCacheEntry]
    /// Products the model asked for that the file did not have as asked (it is written again after the load).
    private(set) var misses = 0

    /// Why a file cannot be read.
    package struct Invalid: Error, CustomStringConvertible {
        package var reason: String
        package var description: String { reason }
    }

    /// The file at `path` if it parses and holds `key`; throws ``Invalid`` otherwise.
    package init(path: String, key: String) throws {
        let mapping: MappedFile
        do { mapping = try MappedFile(path: path) } catch { throw Invalid(reason: "cannot map it: \(error)") }
        self.path = path
        self.mapping = mapping
        entries = try Self.parse(mapping.bytes, fileSize: mapping.bytes.count, key: key)
        if let base = mapping.bytes.baseAddress, mapping.bytes.count > 0 {
            // Read ahead whatever is not in the page cache, as the first pass will read all of it.
            _ = madvise(UnsafeMutableRawPointer(mutating: base), mapping.bytes.count, Int32(MADV_WILLNEED))
        }
    }

    /// The entries of a cache file whose first bytes are `bytes` (its header, or all of it) and whose size is
    /// `fileSize`; throws ``Invalid`` with the first problem found.
    package static func parse(
        _ bytes: UnsafeRawBufferPointer, fileSize: Int, key: String
    ) throws -> [String: WeightCacheEntry] {
        var reader = Reader(bytes: bytes)
        guard let stored = try reader.key(), stored == key else {
            throw Invalid(reason: "made for another model file or build")
        }
        let count = try reader.count(limit: 100_000)
        var entries: [String: WeightCacheEntry] = [:]
        for index in 0..<count {
            let nameLength = try reader.count(limit: 1024)
            guard let name = String(validating: try reader.bytes(nameLength), as: UTF8.self) else {
                throw Invalid(reason: "entry \(index): name is not UTF-8")
            }
            guard let storedType = TensorType(rawValue: try reader.u32()),
                let type = TensorType(rawValue: try reader.u32())
            else { throw Invalid(reason: "entry \(index) ('\(name)'): unknown tensor type") }
            let rowCount = try reader.count(limit: 1 << 32)
            let columnCount = try reader.count(limit: 1 << 32)
            let rows = try reader.range(in: fileSize)
            let packed = try reader.range(in: fileSize)
            guard entries[name] == nil else { throw Invalid(reason: "entry \(index): '\(name)' twice") }
            guard
                let packedBytes = PackedMatrix.byteCount(type: type, rowCount: rowCount, columnCount: columnCount),
                packed.count == packedBytes, packed.lowerBound % WeightCache.alignment == 0
            else { throw Invalid(reason: "entry '\(name)': packed bytes do not fit its type and shape") }
            if type == storedType {
                guard rows.isEmpty else { throw Invalid(reason: "entry '\(name)': rows of an unconverted matrix") }
            } else {
                guard let rowBytes = type.byteCount(elementCount: columnCount),
                    rows.count == rowBytes * rowCount, rows.lowerBound % WeightCache.alignment == 0
                else { throw Invalid(reason: "entry '\(name)': rows do not fit its type and shape") }
            }
            entries[name] = WeightCacheEntry(
                name: name, storedType: storedType, type: type, rowCount: rowCount, columnCount: columnCount,
                rows: rows, packed: packed)
        }
        return entries
    }

    /// The cached matrix `name` when the file has it as asked: `stored` (the model file's matrix) converted to
    /// `type` (its own type when not re-quantized) and packed. Nil (and counted as a miss) otherwise.
    func matrix(_ name: String, stored: QuantizedMatrix, type: TensorType) -> QuantizedMatrix? {
        guard let entry = entries[name], entry.storedType == stored.type, entry.type == type,
            entry.rowCount == stored.rowCount, entry.columnCount == stored.columnCount,
            let base = mapping.bytes.baseAddress
        else {
            misses += 1
            return nil
        }
        let packedBytes = UnsafeRawBufferPointer(start: base + entry.packed.lowerBound, count: entry.packed.count)
        guard
            let packed = PackedMatrix(
                mapped: packedBytes, type: type, rowCount: entry.rowCount, columnCount: entry.columnCount,
                keeper: mapping),
            let matrix = QuantizedMatrix(
                type: type, rowCount: entry.rowCount, columnCount: entry.columnCount,
                data: type == stored.type ? stored.data : base + entry.rows.lowerBound, packed: packed,
                owner: type == stored.type ? nil : mapping)
        else {
            misses += 1
            return nil
        }
        return matrix
    }

    /// Bounds-checked little-endian reads of a cache file's header.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        mutating func bytes(_ count: Int) throws -> [UInt8] {
            guard count >= 0, count <= bytes.count - offset else { throw Invalid(reason: "truncated header") }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }

        /// The header's start: the magic and this format's version (else ``Invalid``), then the stored key (nil
        /// when it is not UTF-8 text).
        mutating func key() throws -> String? {
            guard try bytes(WeightCache.magic.count) == WeightCache.magic else {
                throw Invalid(reason: "not a weight cache file")
            }
            let version = try u32()
            guard version == WeightCache.formatVersion else { throw Invalid(reason: "format version \(version)") }
            _ = try u32()
            return String(validating: try bytes(try count(limit: 4096)), as: UTF8.self)
        }

        mutating func u32() throws -> UInt32 {
            let b = try bytes(4)
            return b.enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        }

        mutating func u64() throws -> UInt64 {
            let b = try bytes(8)
            return b.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        }

        /// A count no larger than `limit`.
        mutating func count(limit: Int) throws -> Int {
            let value = try u64()
            guard value <= UInt64(limit) else { throw Invalid(reason: "a count of \(value) at byte \(offset - 8)") }
            return Int(value)
        }

        /// An offset and a length inside a file of `size` bytes.
        mutating func range(in size: Int) throws -> Range<Int> {
            let start = try u64()
            let length = try u64()
            guard start <= UInt64(size), length <= UInt64(size) - start else {
                throw Invalid(reason: "a blob past the end of the file (at \(start), \(length) bytes)")
            }
            return Int(start)..<Int(start + length)
        }
    }
}

extension WeightCache {
    /// A cached matrix to write: its name, its type in the model file, and the matrix the products read.
    package struct Product {
        package var name: String
        package var storedType: TensorType
        package var matrix: QuantizedMatrix
    }

    /// Writes `products` (each with a packed copy) as the cache file at `path` for `key`: to a temporary file in
    /// the same directory, flushed, then renamed into place. Throws ``WeightCacheFile/Invalid`` with the reason
    /// when the file cannot be written; the temporary file is removed then.
    package static func write(_ products: [Product], key: String, to path: String) throws {
        var header: [UInt8] = []
        func put(_ value: UInt64) {
            for i in 0..<8 { header.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
        }
        func put32(_ value: UInt32) {
            for i in 0..<4 { header.append(UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))) }
        }
        func round(_ offset: Int) -> Int { (offset + alignment - 1) / alignment * alignment }
        // The header's size does not depend on the offsets it holds, so lay the blobs out after a first pass.
        let headerBytes =
            magic.count + 8 + 8 + key.utf8.count + 8
            + products.reduce(0) { $0 + 8 + $1.name.utf8.count + 8 + 16 + 32 }
        var blobs: [(offset: Int, bytes: UnsafeRawBufferPointer)] = []
        var offset = round(headerBytes)
        header += magic
        put32(formatVersion)
        put32(0)
        put(UInt64(key.utf8.count))
        header += Array(key.utf8)
        put(UInt64(products.count))
        for product in products {
            let matrix = product.matrix
            guard let packed = matrix.packed else {
                throw WeightCacheFile.Invalid(reason: "'\(product.name)' has no packed copy")
            }
            put(UInt64(product.name.utf8.count))
            header += Array(product.name.utf8)
            put32(product.storedType.rawValue)
            put32(matrix.type.rawValue)
            put(UInt64(matrix.rowCount))
            put(UInt64(matrix.columnCount))
            if matrix.type != product.storedType {
                let rows = UnsafeRawBufferPointer(start: matrix.data, count: matrix.rowBytes * matrix.rowCount)
                put(UInt64(offset))
                put(UInt64(rows.count))
                blobs.append((offset, rows))
                offset = round(offset + rows.count)
            } else {
                put(0)
                put(0)
            }
            put(UInt64(offset))
            put(UInt64(packed.byteCount))
            blobs.append((offset, packed.bytes))
            offset = round(offset + packed.byteCount)
        }
        precondition(header.count == headerBytes)
        let total = offset

        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        try makeDirectories(directory)
        var space = statvfs()
        if statvfs(directory, &space) == 0 {
            let free = Int(space.f_bavail) * Int(space.f_frsize)
            // Leave at least as much free as the file takes: a cache must not fill the disk.
            if free < 2 * total {
                throw WeightCacheFile.Invalid(
                    reason:
                        "\(free >> 20) MiB free in \(directory), the file needs \(total >> 20) MiB and as much spare")
            }
        }
        removeAbandoned(in: directory)
        let temporary = directory + "/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else {
            throw WeightCacheFile.Invalid(reason: "cannot create \(temporary): \(errorText())")
        }
        var written = false
        defer {
            close(descriptor)
            if !written { unlink(temporary) }
        }
        func writeAll(_ buffer: UnsafeRawBufferPointer, at position: Int) throws {
            var done = 0
            while done < buffer.count {
                guard let base = buffer.baseAddress else { return }
                let n = pwrite(descriptor, base + done, min(buffer.count - done, 1 << 30), off_t(position + done))
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { throw WeightCacheFile.Invalid(reason: "cannot write \(temporary): \(errorText())") }
                done += n
            }
        }
        try header.withUnsafeBytes { try writeAll($0, at: 0) }
        for blob in blobs { try writeAll(blob.bytes, at: blob.offset) }
        guard ftruncate(descriptor, off_t(total)) == 0, fdatasync(descriptor) == 0 else {
            throw WeightCacheFile.Invalid(reason: "cannot flush \(temporary): \(errorText())")
        }
        guard rename(temporary, path) == 0 else {
            throw WeightCacheFile.Invalid(reason: "cannot rename to \(path): \(errorText())")
        }
        written = true
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }

    /// Removes the temporary files of writers that are gone (killed while writing): `.tmp-PID-…` whose process
    /// does not exist.
    private static func removeAbandoned(in directory: String) {
        guard let stream = opendir(directory) else { return }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            let parts = name.split(separator: "-")
            guard name.hasPrefix(".tmp-"), parts.count == 3, let pid = pid_t(parts[1]), pid > 0,
                kill(pid, 0) != 0, errno == ESRCH
            else { continue }
            unlink(directory + "/" + name)
        }
    }

    private static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0, errno != EEXIST {
                throw WeightCacheFile.Invalid(reason: "cannot create \(current): \(errorText())")
            }
        }
    }
}
