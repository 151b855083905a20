import WireProtocol

/// One message: a protobuf header and the raw tensor frames it describes
/// (`header.tensors[i]` describes `payloads[i]`).
public struct Envelope: Sendable {
    public var header: Shoal_V1_Header
    public var payloads: [Payload]

    /// Wraps a header as given, stamping the current protocol version when it has none.
    /// The header's tensor descriptions must match `payloads`; sending checks that.
    public init(header: Shoal_V1_Header, payloads: [Payload] = []) {
        self.header = header
        if self.header.protocolVersion == 0 { self.header.protocolVersion = WireProtocol.version }
        self.payloads = payloads
    }

    /// A message of the current protocol version carrying `body` and `tensors`.
    public init(_ body: Shoal_V1_Header.OneOf_Body, tensors: [WireTensor] = []) {
        var header = Shoal_V1_Header()
        header.protocolVersion = WireProtocol.version
        header.body = body
        header.tensors = tensors.map(\.desc)
        self.init(header: header, payloads: tensors.map(\.payload))
    }

    public var body: Shoal_V1_Header.OneOf_Body? { header.body }

    /// Tensor descriptions paired with their frames.
    public var tensors: [WireTensor] {
        zip(header.tensors, payloads).map { WireTensor(desc: $0, payload: $1) }
    }

    /// The first tensor called `name`.
    public func tensor(named name: String) -> WireTensor? {
        guard let index = header.tensors.firstIndex(where: { $0.name == name }), index < payloads.count else {
            return nil
        }
        return WireTensor(desc: header.tensors[index], payload: payloads[index])
    }
}

/// A tensor frame with its description.
public struct WireTensor: Sendable {
    public var desc: Shoal_V1_TensorDesc
    public var payload: Payload

    public init(desc: Shoal_V1_TensorDesc, payload: Payload) {
        self.desc = desc
        self.payload = payload
    }

    /// Describes `payload` as a tensor of `dtype` and `shape` (outermost first); the byte length
    /// is the payload's, and sending checks it against `dtype` and `shape`.
    public init(name: String, dtype: Shoal_V1_DType, shape: [Int], payload: Payload) {
        var desc = Shoal_V1_TensorDesc()
        desc.name = name
        desc.dtype = dtype
        desc.shape = shape.map { UInt64(clamping: $0) }  // a negative dimension then fails validation on send
        desc.byteLength = UInt64(payload.count)
        self.init(desc: desc, payload: payload)
    }

    /// An opaque byte frame (no dtype or shape), e.g. a TensorChunk's slice of a file.
    public init(name: String, bytes payload: Payload) {
        self.init(name: name, dtype: .unspecified, shape: [], payload: payload)
    }
}
