#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Positional reads (pread) of tensor parts from a checkpoint's files into owned buffers.
///
/// Streamed blocks and converted weights are read this way rather than through the mapping: a
/// page touched through an mmap stays in the process's RSS until it is unmapped, while a read
/// copies into memory the block owns and frees when it is dropped.
///
/// `@unchecked Sendable`: the descriptors are opened in init and never change; pread takes an
/// explicit offset, so concurrent reads on one descriptor do not interfere.
public final class TensorReader: @unchecked Sendable {
    private let descriptors: [String: Int32]

    public init(checkpoint: Checkpoint) throws {
        var fds: [String: Int32] = [:]
        for file in checkpoint.files {
            let fd = open(file.url.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let reason = String(cString: strerror(errno))
                fds.values.forEach { close($0) }
                throw ModelError.io(file: file.url.path, reason: reason)
            }
            fds[file.url.path] = fd
        }
        descriptors = fds
    }

    deinit { descriptors.values.forEach { close($0) } }

    private func descriptor(_ file: SafetensorsFile) throws -> Int32 {
        guard let fd = descriptors[file.url.path] else {
            throw ModelError.io(file: file.url.path, reason: "not a file of the checkpoint this reader opened")
        }
        return fd
    }

    /// Reads `count` bytes at `offset` of `file` into `destination`.
    public func read(_ file: SafetensorsFile, offset: Int, count: Int, into destination: UnsafeMutableRawPointer) throws {
        let fd = try descriptor(file)
        var done = 0
        while done < count {
            // Linux transfers at most 0x7ffff000 bytes per call.
            let n = pread(fd, destination + done, min(count - done, 1 << 30), off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ModelError.io(file: file.url.path, reason: "read of \(count) bytes at \(offset) failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 {
                throw ModelError.io(file: file.url.path, reason: "file ends before byte \(offset + count) (truncated?)")
            }
            done += n
        }
    }

    /// Reads `rows` runs of `runBytes` bytes, `stride` bytes apart in the file starting at
    /// `offset`, packed one after another into `destination`: a column slice of a matrix.
    public func readRows(_ file: SafetensorsFile, offset: Int, stride: Int, rows: Int, runBytes: Int,
                         into destination: UnsafeMutableRawPointer) throws {
        if stride == runBytes {
            try read(file, offset: offset, count: rows * runBytes, into: destination)
            return
        }
        if stride <= 4 * runBytes {
            // Runs that cover much of each row (a TP rank's column slice): read the rows whole, a
            // few MB at a time, and keep the runs: sequential reads, a syscall per chunk rather
            // than per row, and readahead that sees a stream.
            let rowsPerChunk = max(1, (8 << 20) / stride)
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: rowsPerChunk * stride, alignment: 64)
            defer { scratch.deallocate() }
            var r = 0
            while r < rows {
                let n = min(rowsPerChunk, rows - r)
                try read(file, offset: offset + r * stride, count: (n - 1) * stride + runBytes, into: scratch)
                for i in 0 ..< n { (destination + (r + i) * runBytes).copyMemory(from: scratch + i * stride, byteCount: runBytes) }
                r += n
            }
            return
        }
        for r in 0 ..< rows {
            try read(file, offset: offset + r * stride, count: runBytes, into: destination + r * runBytes)
        }
    }

    /// Drops the file's cached pages in `range` (clean pages no process maps), so that the next
    /// read of them comes from the disk: cold-cache measurements, and streaming on a device
    /// whose page cache cannot hold the model either.
    public func dropCache(_ file: SafetensorsFile, range: Range<Int>? = nil) {
        guard let fd = descriptors[file.url.path] else { return }
        let r = range ?? 0 ..< 0  // length 0: to the end of the file
        _ = posix_fadvise(fd, off_t(r.lowerBound), off_t(r.count), POSIX_FADV_DONTNEED)
    }

    /// Starts reading `range` into the page cache without waiting (readahead at full queue depth).
    public func willNeed(_ file: SafetensorsFile, range: Range<Int>) {
        guard let fd = descriptors[file.url.path], !range.isEmpty else { return }
        _ = posix_fadvise(fd, off_t(range.lowerBound), off_t(range.count), POSIX_FADV_WILLNEED)
    }

    /// Drops every file's cached pages.
    public func dropCache(_ checkpoint: Checkpoint) {
        for file in checkpoint.files { dropCache(file) }
    }
}

/// Page-granular advice on parts of a read-only file mapping.
enum MappingAdvice {
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    /// Page-aligned span covering [start, start + count).
    private static func span(_ start: UnsafeRawPointer, _ count: Int) -> (UnsafeMutableRawPointer, Int) {
        let begin = Int(bitPattern: start) / pageSize * pageSize
        let end = (Int(bitPattern: start) + count + pageSize - 1) / pageSize * pageSize
        return (UnsafeMutableRawPointer(bitPattern: begin)!, end - begin)
    }

    /// Linux 5.14+: fault pages in (reading them if needed) without touching them.
    static let populateRead: Int32 = 22

    /// Maps the region's pages now, on the calling thread (the loader), so the engine finds them
    /// present (the loader has queued the block's reads already). Only the runs' pages are
    /// mapped, so a column slice does not bring the other ranks' columns into the RSS.
    static func populate(_ r: MappedRegion) {
        for row in 0 ..< r.rows {
            let (q, m) = span(r.start + row * r.stride, r.run)
            if madvise(q, m, populateRead) != 0 { touchPages(q, m) }
        }
    }

    /// Asks for 2 MB page-cache folios and mappings where pages are read through `bytes`
    /// (MADV_HUGEPAGE on a file mapping): a streamed block then takes a fault per 2 MB instead
    /// of per 4 KB, and mapping and unmapping it every step costs about 1 ms per GB instead of
    /// 4-80 ms (measured here; 4 KB folios left by fadvise readahead were the slowest).
    static func preferHugePages(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let (p, n) = span(base, bytes.count)
        _ = madvise(p, n, MADV_HUGEPAGE)
    }

    /// Whether the file pages under [start, start + count) of a mapping look cached: 17 pages
    /// spread over the range are asked with mincore. Streaming skips readahead and populating
    /// for cached blocks: the engine's own faults map cached pages more cheaply (the handler maps
    /// a folio's neighbours at once, on both compute threads) than a loader thread competing with
    /// them for the cores, while for uncached blocks the loader's early reads are what hides the disk.
    static func looksCached(_ start: UnsafeRawPointer, _ count: Int) -> Bool {
        guard count > 0 else { return true }
        let (p, n) = span(start, count)
        let pages = n / pageSize
        var vec: UInt8 = 0
        for k in 0 ... 16 {
            let page = min(pages - 1, pages * k / 16)
            guard mincore(p + page * pageSize, pageSize, &vec) == 0, vec & 1 == 1 else { return false }
        }
        return true
    }

    /// Reads one byte per page (kernels without MADV_POPULATE_READ). Not optimized: the reads
    /// must happen although their values are never used.
    @_optimize(none)
    static func touchPages(_ p: UnsafeRawPointer, _ n: Int) {
        var sink: UInt8 = 0
        var offset = 0
        while offset < n {
            sink &+= p.load(fromByteOffset: offset, as: UInt8.self)
            offset += pageSize
        }
        _ = sink
    }

    /// Unmaps the region's span from this process in one call (pages stay in the page cache): RSS falls.
    static func release(_ r: MappedRegion) {
        let (p, n) = span(r.start, r.span)
        _ = madvise(p, n, MADV_DONTNEED)
    }

}

/// Disk-probe support: the streaming loader's own way of reading a mapping.
public enum StreamProbe {
    /// Seconds to populate `region` of a file mapping (huge pages asked for) in 64 MB steps,
    /// unmapping each step after it: the cost of streaming it once.
    public static func populateSeconds(_ region: UnsafeRawBufferPointer) -> Double {
        MappingAdvice.preferHugePages(region)
        let t0 = DispatchTime.now().uptimeNanoseconds
        var offset = 0
        let step = 64 << 20
        while offset < region.count {
            let r = MappedRegion(start: region.baseAddress! + offset, run: min(step, region.count - offset), stride: 0, rows: 1)
            MappingAdvice.populate(r)
            MappingAdvice.release(r)
            offset += step
        }
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }
}
