/// Matrix products of stored weights with a batch of activation rows.
public enum Linear {
    /// `output[n, r] = Σ_k W[r, k]·x[n, k] (+ bias[r])` for every activation row `n`; `output` is
    /// `[x.rowCount, matrix.rowCount]`.
    ///
    /// Each weight row is read once per batch (it stays in cache while every activation row uses it), rows are split
    /// between the pool's workers, and each output element comes from the same kernel call whatever the batch size
    /// (``PackedMatrix`` when the matrix has a packed copy, otherwise ``FastDot``): a row of a batched product is
    /// bit-identical to the same row computed alone.
    /// - Complexity: O(rowCount · columnCount · x.rowCount).
    public static func multiply(
        _ matrix: QuantizedMatrix, _ x: QuantizedActivations, bias: UnsafePointer<Float>? = nil,
        into output: UnsafeMutablePointer<Float>, pool: WorkerPool = .shared
    ) {
        precondition(x.columnCount == matrix.columnCount, "activation width \(x.columnCount) ≠ \(matrix.columnCount)")
        precondition(
            x.formats.isSuperset(of: matrix.activationFormats), "activations lack the form \(matrix.type) reads")
        let rows = matrix.rowCount
        let batch = x.rowCount
        x.values32.withUnsafeBufferPointer { v32 in
            x.values256.withUnsafeBufferPointer { v256 in
                let values32 = v32.baseAddress
                let values256 = v256.baseAddress
                if let packed = matrix.packed {
                    // Runs of groups handed out at run time, long first and down to 4 groups (64 rows): the two
                    // cores rarely run at the same speed on a shared machine, and a fixed half each left one
                    // waiting; long runs keep each core's weight stream contiguous.
                    pool.parallelForGuided(count: packed.groupCount, minimumChunk: 4) { range in
                        for group in range {
                            let first = group * PackedMatrix.groupRows
                            packed.multiplyGroup(
                                group, x, values32: values32, values256: values256, into: output + first,
                                stride: rows)
                            if let bias {
                                for n in 0..<batch {
                                    for row in first..<(first + PackedMatrix.groupRows) {
                                        output[n * rows + row] += bias[row]
                                    }
                                }
                            }
                        }
                    }
                    return
                }
                pool.parallelFor(count: rows, granularity: 16) { range in
                    for row in range {
                        FastDot.dotRows(
                            matrix, row: row, x, first: 0, count: batch, values32: values32, values256: values256,
                            into: output + row, stride: rows)
                        if let bias { for n in 0..<batch { output[n * rows + row] += bias[row] } }
                    }
                }
            }
        }
    }
}
