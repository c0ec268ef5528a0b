import SpeculaKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Wall time of each part of the forward pass, summed over the passes over one cache (``KVCache/profile``), for
/// `specula bench model --phases`: where a pass's time goes (matrix products, attention, quantizing activations, …)
/// per batch size. A cache without a profile reads no clock. Per cache, so one conversation's profile never counts
/// another's passes; not synchronized (a cache serves one pass at a time).
public final class ForwardProfile: @unchecked Sendable {
    /// Seconds per part since the last ``reset()``.
    public private(set) var seconds: [String: Double] = [:]
    var last: UInt64 = 0

    public init() {}

    public func reset() { seconds = [:] }

    /// Ends the part named `part` (started at the previous mark) and starts the next; an empty name only starts.
    @inline(__always) func mark(_ part: String) {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        let now = UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
        if !part.isEmpty { seconds[part, default: 0] += Double(now &- last) / 1e9 }
        last = now
    }
}

extension Duration {
    /// The duration in seconds, as the timings of passes and rounds are kept.
    package var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
