import CZeroMQ
import Foundation

#if _endian(big)
#error("Shoal's tensor frames are little-endian and sent as in memory: big-endian hosts are not supported")
#endif

/// Immutable bytes of one frame: a raw tensor, or the serialized header.
///
/// Payloads are shared, never copied: passing one to several sends or to another thread only
/// retains its storage. The bytes may live in Swift-allocated memory, in memory owned by someone
/// else (`init(bytesNoCopy:deallocator:)`, e.g. an mmapped weight file), or in a received ZeroMQ
/// message that is kept alive for as long as the payload is.
///
/// Received bytes are not guaranteed to be aligned for any element type: read them with
/// `loadUnaligned`, `copyElements(as:)`, or copy them into an aligned buffer first.
public struct Payload: Sendable {
    let storage: PayloadStorage

    init(storage: PayloadStorage) {
        self.storage = storage
    }

    /// An empty frame.
    public init() {
        self.init(storage: PayloadStorage(base: nil, count: 0, owner: .none))
    }

    /// Allocates `count` bytes and lets `initializer` fill all of them (e.g. a kernel writing its
    /// output straight into the frame that will be sent).
    public init(
        count: Int, initializingWith initializer: (UnsafeMutableRawBufferPointer) throws -> Void
    ) rethrows {
        precondition(count >= 0, "negative payload size")
        guard count > 0 else {
            self.init()
            return
        }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
        do {
            try initializer(UnsafeMutableRawBufferPointer(start: memory, count: count))
        } catch {
            memory.deallocate()
            throw error
        }
        self.init(storage: PayloadStorage(base: UnsafeRawPointer(memory), count: count, owner: .heap))
    }

    /// Copies `bytes`.
    public init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count) { $0.copyMemory(from: bytes) }
    }

    /// Copies a byte collection (`[UInt8]`, `Data`, ...).
    public init<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        let copied = bytes.withContiguousStorageIfAvailable { Payload(copying: UnsafeRawBufferPointer($0)) }
        self = copied ?? Array(bytes).withUnsafeBytes { Payload(copying: $0) }
    }

    /// Copies the raw in-memory representation of `elements` (little-endian on every host Shoal
    /// supports), e.g. `Payload(elements: logits)` for a `[Float]`.
    public init<Element: BitwiseCopyable>(elements: [Element]) {
        self = elements.withUnsafeBytes { Payload(copying: $0) }
    }

    /// Wraps memory owned elsewhere without copying it. `deallocator` gets the bytes back once
    /// nobody (neither Swift nor ZeroMQ's I/O thread) needs them any more, possibly on another
    /// thread. The memory must stay unchanged until then.
    public init(
        bytesNoCopy bytes: UnsafeRawBufferPointer, deallocator: @escaping @Sendable (UnsafeRawBufferPointer) -> Void
    ) {
        self.init(storage: PayloadStorage(base: bytes.baseAddress, count: bytes.count, owner: .external(deallocator)))
    }

    /// Takes ownership of a received ZeroMQ message: its bytes are used in place.
    init(adopting message: UnsafeMutablePointer<zmq_msg_t>) {
        let count = zmq_msg_size(message)
        let base = count > 0 ? UnsafeRawPointer(zmq_msg_data(message)) : nil
        self.init(storage: PayloadStorage(base: base, count: count, owner: .zmqMessage(message)))
    }

    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.count == 0 }

    /// Calls `body` with the bytes; the pointer must not escape the call.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(storage) {
            try body(UnsafeRawBufferPointer(start: storage.base, count: storage.count))
        }
    }

    /// The bytes as elements of `Element`, copied (so alignment does not matter); nil when the
    /// byte count is not a whole number of elements.
    public func copyElements<Element: BitwiseCopyable>(as type: Element.Type) -> [Element]? {
        let stride = MemoryLayout<Element>.stride
        guard count % stride == 0 else { return nil }
        return withUnsafeBytes { source in
            [Element](unsafeUninitializedCapacity: count / stride) { destination, initialized in
                if let target = destination.baseAddress, let from = source.baseAddress {
                    UnsafeMutableRawPointer(target).copyMemory(from: from, byteCount: source.count)
                }
                initialized = count / stride
            }
        }
    }
}

extension Payload: Equatable {
    /// Byte-wise equality.
    public static func == (lhs: Payload, rhs: Payload) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.storage === rhs.storage || lhs.count == 0 { return true }
        return lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 } }
    }
}

extension Payload: CustomStringConvertible {
    public var description: String { "Payload(\(count) bytes)" }
}

/// Owner of a payload's bytes.
///
/// `@unchecked Sendable`: the bytes are never written after initialization, and releasing them
/// (deinit) happens exactly once, when the last reference — Swift's or ZeroMQ's — goes away.
final class PayloadStorage: @unchecked Sendable {
    enum Owner {
        case none
        case heap
        case external(@Sendable (UnsafeRawBufferPointer) -> Void)
        case zmqMessage(UnsafeMutablePointer<zmq_msg_t>)
    }

    let base: UnsafeRawPointer?
    let count: Int
    private let owner: Owner

    /// True when the bytes are a received ZeroMQ message used in place (observable in tests).
    var isZeroMQMessage: Bool {
        if case .zmqMessage = owner { return true }
        return false
    }

    init(base: UnsafeRawPointer?, count: Int, owner: Owner) {
        self.base = base
        self.count = count
        self.owner = owner
    }

    deinit {
        switch owner {
        case .none:
            break
        case .heap:
            base?.deallocate()
        case .external(let deallocator):
            deallocator(UnsafeRawBufferPointer(start: base, count: count))
        case .zmqMessage(let message):
            zmq_msg_close(message)
            message.deallocate()
        }
    }
}
