import Foundation
import SpeculaTheory

/// Means with 95 % intervals from records: the values of one metric under one configuration, grouped by prompt
/// (``ClusteredMean``: positions of one prompt are not independent).
public enum Summary {
    /// configuration → metric → clustered mean, in the order configurations and metrics first appear.
    public static func summarize(_ records: [BenchRecord]) -> [(
        configuration: String, metrics: [(String, ClusteredMean)]
    )] {
        var configurations: [String] = []
        var groups: [String: [String: [[Double]]]] = [:]
        var metricOrder: [String: [String]] = [:]
        for record in records {
            if groups[record.configuration] == nil {
                configurations.append(record.configuration)
                groups[record.configuration] = [:]
            }
            for name in record.metrics.keys.sorted() {
                if metricOrder[record.configuration, default: []].contains(name) == false {
                    metricOrder[record.configuration, default: []].append(name)
                }
                groups[record.configuration, default: [:]][name, default: []].append(record.metrics[name] ?? [])
            }
        }
        return configurations.map { configuration in
            let metrics = metricOrder[configuration, default: []].map { name in
                (name, ClusteredMean(groups: groups[configuration]?[name] ?? []))
            }
            return (configuration, metrics)
        }
    }

    /// "0.812 ± 0.020 (3 × 384)" (mean over prompts, Student-t 95 % half-width, prompts × values), "0.812 (1 × 96)"
    /// with one prompt, "—" without values.
    /// `a − b` of a metric paired by prompt: each prompt's mean under configuration `a` minus its mean under `b`,
    /// over the prompts that have both, with the Student-t interval of those differences. Nil when no prompt has
    /// both.
    public static func pairedByPrompt(_ records: [BenchRecord], _ a: String, _ b: String, metric: String)
        -> ClusteredMean?
    {
        func means(_ configuration: String) -> [String: Double] {
            var values: [String: [Double]] = [:]
            for record in records where record.configuration == configuration {
                values[record.prompt, default: []] += record.metrics[metric] ?? []
            }
            return values.compactMapValues { $0.isEmpty ? nil : $0.reduce(0, +) / Double($0.count) }
        }
        let (first, second) = (means(a), means(b))
        let differences = first.sorted { $0.key < $1.key }.compactMap { prompt, value in
            second[prompt].map { [value - $0] }
        }
        return differences.isEmpty ? nil : ClusteredMean(groups: differences)
    }

    public static func cell(_ mean: ClusteredMean?, digits: Int = 3) -> String {
        guard let mean, mean.count > 0 else { return "—" }
        let value = String(format: "%.\(digits)f", mean.meanOfGroups)
        let sizes = " (\(mean.groups) × \(mean.count))"
        guard let half = mean.halfWidth else { return value + sizes }
        return value + " ± " + String(format: "%.\(digits)f", half) + sizes
    }
}

/// A Markdown table.
public struct MarkdownTable: Sendable {
    public var header: [String]
    public var rows: [[String]]

    public init(header: [String], rows: [[String]]) {
        self.header = header
        self.rows = rows
    }

    public var rendered: String {
        func line(_ cells: [String]) -> String {
            "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |"
        }
        return ([line(header), line(header.map { _ in "---" })] + rows.map(line)).joined(separator: "\n") + "\n"
    }
}

/// A grouped bar chart with 95 % interval whiskers, as a standalone SVG document.
public struct BarChart: Sendable {
    public var title: String
    public var yLabel: String
    /// Bar groups along the x axis.
    public var groups: [String]
    /// One bar per series in each group.
    public var series: [String]
    /// values[group][series] and their half-widths (nil: no bar / no whisker).
    public var values: [[Double?]]
    public var halfWidths: [[Double?]]

    public init(
        title: String, yLabel: String, groups: [String], series: [String], values: [[Double?]],
        halfWidths: [[Double?]]
    ) {
        self.title = title
        self.yLabel = yLabel
        self.groups = groups
        self.series = series
        self.values = values
        self.halfWidths = halfWidths
    }

    static let palette = [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    ]

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    public var svg: String {
        let barWidth = 14.0
        let groupGap = 18.0
        let left = 60.0
        let top = 40.0
        let plotHeight = 240.0
        let groupWidth = Double(max(series.count, 1)) * barWidth + groupGap
        let width = left + Double(max(groups.count, 1)) * groupWidth + 160
        let height = top + plotHeight + 110
        var maximum = 0.0
        for (g, row) in values.enumerated() {
            for (s, value) in row.enumerated() {
                if let value, value.isFinite {
                    let half = (g < halfWidths.count && s < halfWidths[g].count) ? (halfWidths[g][s] ?? 0) : 0
                    maximum = max(maximum, value + (half.isFinite ? half : 0))
                }
            }
        }
        if maximum <= 0 { maximum = 1 }
        // A round top: 1, 2 or 5 times a power of ten.
        let magnitude = pow(10, floor(log10(maximum)))
        let top_ = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= maximum } ?? maximum
        func y(_ value: Double) -> Double { top + plotHeight * (1 - value / top_) }
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="20" font-size="14">\(Self.escape(title))</text>

            """
        for tick in 0...5 {
            let value = top_ * Double(tick) / 5
            out += "<line x1=\"\(left)\" x2=\"\(width - 150)\" y1=\"\(y(value))\" y2=\"\(y(value))\" stroke=\"#ddd\"/>"
            out +=
                "<text x=\"\(left - 6)\" y=\"\(y(value) + 4)\" text-anchor=\"end\">\(String(format: "%g", value))</text>\n"
        }
        out += "<text transform=\"translate(14,\(top + plotHeight / 2)) rotate(-90)\" text-anchor=\"middle\">"
        out += Self.escape(yLabel) + "</text>\n"
        for (g, group) in groups.enumerated() {
            let x0 = left + Double(g) * groupWidth + groupGap / 2
            for s in series.indices {
                guard g < values.count, s < values[g].count, let value = values[g][s], value.isFinite else { continue }
                let x = x0 + Double(s) * barWidth
                let color = Self.palette[s % Self.palette.count]
                out +=
                    "<rect x=\"\(x)\" y=\"\(y(value))\" width=\"\(barWidth - 2)\" height=\"\(max(0, y(0) - y(value)))\" "
                out +=
                    "fill=\"\(color)\"><title>\(Self.escape(group)) \(Self.escape(series[s])): \(String(format: "%.4f", value))</title></rect>\n"
                if g < halfWidths.count, s < halfWidths[g].count, let half = halfWidths[g][s], half.isFinite, half > 0 {
                    let cx = x + (barWidth - 2) / 2
                    out +=
                        "<line x1=\"\(cx)\" x2=\"\(cx)\" y1=\"\(y(value - half))\" y2=\"\(y(value + half))\" stroke=\"black\"/>\n"
                }
            }
            let cx = x0 + Double(series.count) * barWidth / 2
            out +=
                "<text transform=\"translate(\(cx),\(top + plotHeight + 12)) rotate(35)\">\(Self.escape(group))</text>\n"
        }
        for (s, name) in series.enumerated() {
            let ly = top + Double(s) * 16
            out +=
                "<rect x=\"\(width - 140)\" y=\"\(ly)\" width=\"10\" height=\"10\" fill=\"\(Self.palette[s % Self.palette.count])\"/>"
            out += "<text x=\"\(width - 125)\" y=\"\(ly + 9)\">\(Self.escape(name))</text>\n"
        }
        out += "</svg>\n"
        return out
    }
}

/// A progress line on standard error with the elapsed time and an ETA, once a run has lasted a few seconds.
public final class ProgressReporter {
    public let label: String
    public let total: Int
    public private(set) var done = 0
    let started = Date()
    let quietFor: TimeInterval
    let write: (String) -> Void

    public init(
        label: String, total: Int, quietFor: TimeInterval = 3,
        write: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }
    ) {
        self.label = label
        self.total = total
        self.quietFor = quietFor
        self.write = write
    }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s / 3600)h\(String(format: "%02d", s / 60 % 60))m"
    }

    /// The line for `done` of `total` after `elapsed` seconds.
    public static func line(label: String, done: Int, total: Int, elapsed: Double, detail: String) -> String {
        let width = 20
        let filled = total > 0 ? min(width, done * width / total) : width
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let eta = done > 0 ? duration(elapsed / Double(done) * Double(total - done)) : "?"
        return "\(label) [\(bar)] \(done)/\(total) \(duration(elapsed)) elapsed, ETA \(eta)"
            + (detail.isEmpty ? "" : " — \(detail)")
    }

    /// One unit finished (or skipped as already done when resuming).
    public func advance(_ detail: String = "") {
        done += 1
        let elapsed = Date().timeIntervalSince(started)
        if elapsed >= quietFor {
            write(Self.line(label: label, done: done, total: total, elapsed: elapsed, detail: detail) + "\n")
        }
    }
}
