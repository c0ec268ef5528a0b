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

    /// Why a file could not be mapped.
    public struct OpenError: Error, CustomStringConvertible, Equatable {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    public init(path: String) throws {
        self.path = path
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

    deinit {
        if let base = bytes.baseAddress, bytes.count > 0 {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}
