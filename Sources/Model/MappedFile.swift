#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A read-only memory mapping of a whole file.
///
/// Weights are used straight from the page cache wherever the kernels can read the stored dtype,
/// so a multi-GB checkpoint costs no copy and no load time beyond the pages a node touches.
public final class MappedFile: @unchecked Sendable {
    // Sendable: the mapping is read-only and immutable for the object's lifetime.
    public let url: URL
    public let bytes: UnsafeRawBufferPointer

    public init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw ModelError.io(file: url.path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw ModelError.io(file: url.path, reason: String(cString: strerror(errno)))
        }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw ModelError.io(file: url.path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = bytes.baseAddress, bytes.count > 0 {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }

    /// Asks for 2 MB page-cache folios and mappings where the file is read through this mapping.
    /// For whole-file users (one node, streaming); a TP rank's slices would map 2 MB around
    /// each edge of its parts.
    public func preferHugePages() { MappingAdvice.preferHugePages(bytes) }

    /// Maps (reading where needed) the pages of [offset, offset + count) now, without touching
    /// them: a huge-page mapping then reads 2 MB folios at full speed.
    public func populate(offset: Int, count: Int) {
        guard let base = bytes.baseAddress, count > 0 else { return }
        MappingAdvice.populate(MappedRegion(start: base + offset, run: min(count, bytes.count - offset), stride: 0, rows: 1))
    }
}

/// An owned, 64-byte aligned buffer of floats: scratch activations and converted weights.
public final class FloatBuffer: @unchecked Sendable {
    // Sendable: owners hand a buffer to one thread at a time; the pool's tasks write disjoint rows.
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int, zeroed: Bool = true) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed { pointer.initialize(repeating: 0, count: max(count, 1)) }
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count, zeroed: false)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { pointer.deallocate() }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { .init(start: pointer, count: count) }
    public var array: [Float] { Array(buffer) }
}
