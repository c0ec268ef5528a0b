/// Matrix products of stored weights with a batch of activation rows.
public enum Linear {
    /// `output[n, r] = Σ_k W[r, k]·x[n, k] (+ bias[r])` for every activation row `n`; `output` is
    /// `[x.rowCount, matrix.rowCount]`.
    ///
    /// Each weight row is read once per batch (it stays in cache while every activation row uses it), rows are split
    /// between the pool's workers, and each output element comes from the same ``FastDot`` call whatever the batch
    /// size: a row of a batched product is bit-identical to the same row computed alone.
    /// - Complexity: O(rowCount · columnCount · x.rowCount).
    public static func multiply(
        _ matrix: QuantizedMatrix, _ x: QuantizedActivations, bias: UnsafePointer<Float>? = nil,
        into output: UnsafeMutablePointer<Float>, pool: WorkerPool = .shared
    ) {
        precondition(x.columnCount == matrix.columnCount, "activation width \(x.columnCount) ≠ \(matrix.columnCount)")
        let rows = matrix.rowCount
        let batch = x.rowCount
        x.values32.withUnsafeBufferPointer { v32 in
            x.values256.withUnsafeBufferPointer { v256 in
                guard let values32 = v32.baseAddress else { return }
                let values256 = v256.baseAddress
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
