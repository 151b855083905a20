import Foundation
import Model

/// This process's resident memory as Linux reports it in /proc/self/status.
public enum ProcessMemory {
    /// VmHWM: the most RSS since start or since the last `resetPeak`.
    public static var peakBytes: Int { field("VmHWM") }
    /// VmRSS now.
    public static var currentBytes: Int { field("VmRSS") }

    /// Starts a new peak measurement (writes 5 to /proc/self/clear_refs; Linux 4.0+). Returns
    /// false where that is not allowed, in which case the peak covers the whole process life.
    @discardableResult
    public static func resetPeak() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? h.close() }
        do { try h.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }

    private static func field(_ name: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let kb = line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) } ?? 0
            return kb * 1024
        }
        return 0
    }
}

/// Sequential read bandwidth of the disk a checkpoint lives on, with the file's pages dropped
/// from the page cache first so the figure is the disk's, not memory's.
public enum DiskProbe {
    /// Bytes/s reading up to `bytes` of the checkpoint's largest file the fastest way measured
    /// here: through a huge-page mapping, populated 64 MB at a time (2 MB folios, full queue
    /// depth); best of `repeats` (a virtual disk's speed varies with its host).
    public static func readBandwidth(checkpoint: Checkpoint, bytes: Int = 1 << 30, repeats: Int = 2) throws -> Double {
        guard let file = checkpoint.files.max(by: { $0.mapping.bytes.count < $1.mapping.bytes.count }) else { return 0 }
        let reader = try TensorReader(checkpoint: checkpoint)
        let total = min(bytes, file.mapping.bytes.count)
        let region = UnsafeRawBufferPointer(rebasing: file.mapping.bytes[0 ..< total])
        var best = 0.0
        for _ in 0 ..< max(repeats, 1) {
            reader.dropCache(file)
            let seconds = StreamProbe.populateSeconds(region)
            best = max(best, Double(total) / max(seconds, 1e-9))
        }
        reader.dropCache(file)
        return best
    }
}
