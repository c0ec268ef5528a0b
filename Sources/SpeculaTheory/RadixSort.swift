/// Least-significant-digit radix sort of 64-bit keys with a payload, 16 bits per pass: O(N) where a comparison sort
/// of the 151,936-token vocabulary by `p/q` costs most of an α* computation. Stable; passes whose digit is the same
/// for every key are skipped.
enum RadixSort {
    static func sort(keys: inout [UInt64], values: inout [Int32]) {
        precondition(keys.count == values.count)
        let count = keys.count
        if count < 2 { return }
        var keyBuffer = [UInt64](repeating: 0, count: count)
        var valueBuffer = [Int32](repeating: 0, count: count)
        var histogram = [Int](repeating: 0, count: 1 << 16)
        for shift in stride(from: 0, to: 64, by: 16) {
            for index in histogram.indices { histogram[index] = 0 }
            keys.withUnsafeBufferPointer { k in
                histogram.withUnsafeMutableBufferPointer { h in
                    for index in 0..<count { h[Int((k[index] >> UInt64(shift)) & 0xFFFF)] += 1 }
                }
            }
            let firstDigit = Int((keys[0] >> UInt64(shift)) & 0xFFFF)
            if histogram[firstDigit] == count { continue }
            var running = 0
            for index in histogram.indices {
                let bucket = histogram[index]
                histogram[index] = running
                running += bucket
            }
            keys.withUnsafeBufferPointer { k in
                values.withUnsafeBufferPointer { v in
                    keyBuffer.withUnsafeMutableBufferPointer { kb in
                        valueBuffer.withUnsafeMutableBufferPointer { vb in
                            histogram.withUnsafeMutableBufferPointer { h in
                                for index in 0..<count {
                                    let digit = Int((k[index] >> UInt64(shift)) & 0xFFFF)
                                    let position = h[digit]
                                    h[digit] = position + 1
                                    kb[position] = k[index]
                                    vb[position] = v[index]
                                }
                            }
                        }
                    }
                }
            }
            swap(&keys, &keyBuffer)
            swap(&values, &valueBuffer)
        }
    }
}
