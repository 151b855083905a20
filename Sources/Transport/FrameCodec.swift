import Foundation
import WireProtocol

/// Turns envelopes into frames (header first, then one frame per tensor) and back, checking
/// everything a receiver relies on before the runtime sees the message.
public enum FrameCodec {
    /// Frames for `envelope`. Checks the same invariants a receiver would, so a malformed message
    /// fails at its sender; `peer` (the destination) is only used in errors.
    public static func encode(_ envelope: Envelope, to peer: String) throws(WireError) -> [Payload] {
        try validateTensors(envelope.header, payloads: envelope.payloads, peer: peer)
        let header: [UInt8]
        do {
            header = try envelope.header.serializedBytes()
        } catch {
            throw .undecodableHeader(peer: peer, detail: "cannot serialize: \(error)")
        }
        return [Payload(header)] + envelope.payloads
    }

    /// The envelope carried by `frames` received from `peer`. The tensor payloads are the
    /// received frames themselves (no copy).
    public static func decode(_ frames: [Payload], from peer: String) throws(WireError) -> Envelope {
        guard let headerFrame = frames.first else { throw .missingHeader(peer: peer) }
        let header: Shoal_V1_Header
        do {
            header = try headerFrame.withUnsafeBytes { bytes in
                guard let base = bytes.baseAddress else { return Shoal_V1_Header() }
                // Borrow the frame's bytes: the header is parsed in place.
                let view = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: bytes.count, deallocator: .none)
                return try Shoal_V1_Header(serializedBytes: view)
            }
        } catch {
            throw .undecodableHeader(peer: peer, detail: "\(error)")
        }
        guard header.protocolVersion == WireProtocol.version else {
            throw .versionMismatch(peer: peer, received: header.protocolVersion, expected: WireProtocol.version)
        }
        let payloads = Array(frames.dropFirst())
        try validateTensors(header, payloads: payloads, peer: peer)
        return Envelope(header: header, payloads: payloads)
    }

    /// Frame count, each frame's length, and each length against dtype x shape.
    private static func validateTensors(_ header: Shoal_V1_Header, payloads: [Payload], peer: String) throws(WireError) {
        guard header.tensors.count == payloads.count else {
            throw .frameCountMismatch(peer: peer, declared: header.tensors.count, received: payloads.count)
        }
        for (desc, payload) in zip(header.tensors, payloads) {
            guard desc.byteLength == UInt64(payload.count) else {
                throw .byteLengthMismatch(peer: peer, tensor: desc.name, declared: desc.byteLength, received: payload.count)
            }
            // Opaque frames (no dtype or no shape) carry no layout to check.
            guard desc.dtype != .unspecified, !desc.shape.isEmpty else { continue }
            guard let expected = desc.dtype.byteLength(shape: desc.shape) else {
                throw .inconsistentTensor(
                    peer: peer, tensor: desc.name,
                    detail: "shape \(desc.shape) cannot be encoded as \(desc.dtype) (unknown dtype, partial block, or overflow)")
            }
            guard expected == desc.byteLength else {
                throw .inconsistentTensor(
                    peer: peer, tensor: desc.name,
                    detail: "\(desc.dtype) of shape \(desc.shape) needs \(expected) bytes, byte_length says \(desc.byteLength)")
            }
        }
    }
}
