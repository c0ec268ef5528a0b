#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A read-only memory mapping of a whole file. The bytes are shared with the page cache: mapping a model costs no
/// copy, and only the pages a computation touches are read.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    /// True for a mapping of a file (whose pages can be dropped and read again), false for an anonymous copy.
    public let isFileBacked: Bool

    /// Why a file could not be mapped.
    public struct OpenError: Error, CustomStringConvertible, Equatable {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    public init(path: String) throws {
        self.path = path
        isFileBacked = true
        let descriptor = open(path, O_RDONLY)
        if descriptor < 0 { throw OpenError(path: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var status = stat()
        if fstat(descriptor, &status) != 0 {
            throw OpenError(path: path, reason: "cannot stat: \(String(cString: strerror(errno)))")
        }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw OpenError(path: path, reason: "is a directory") }
        let size = Int(status.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw OpenError(path: path, reason: "cannot map: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    /// Maps a copy of `data` (for tests and crafted files): the bytes live in an anonymous mapping.
    public init(copying data: [UInt8], name: String = "<memory>") {
        path = name
        isFileBacked = false
        if data.isEmpty {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, data.count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let address, address != MAP_FAILED else { preconditionFailure("anonymous mapping failed") }
        data.withUnsafeBytes { source in
            if let base = source.baseAddress { address.copyMemory(from: base, byteCount: data.count) }
        }
        bytes = UnsafeRawBufferPointer(start: address, count: data.count)
    }

    /// Drops the whole pages inside `range` from this process's resident memory (for bytes that were copied
    /// elsewhere and are rarely read again). The mapping stays valid: a later read pages them in from the file.
    /// Nothing happens for an anonymous copy, whose pages cannot be read again.
    public func release(_ range: UnsafeRawBufferPointer) {
        guard isFileBacked, let start = range.baseAddress, range.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lower = (Int(bitPattern: start) + page - 1) / page * page
        let upper = (Int(bitPattern: start) + range.count) / page * page
        guard upper > lower, let address = UnsafeMutableRawPointer(bitPattern: lower) else { return }
        _ = madvise(address, upper - lower, Int32(MADV_DONTNEED))
    }

    deinit {
        if let base = bytes.baseAddress, bytes.count > 0 {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}
