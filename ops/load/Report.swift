import Foundation
import Histogram
import NIOHTTP1

/// Latencies (µs) in an HdrHistogram, statuses and HTTP versions counted, for one scenario.
struct Tally: Sendable {
    var latency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    var statuses: [Int: Int] = [:]
    var http2 = 0
    var responses = 0

    mutating func record(status: Int, version: HTTPVersion, micros: UInt64? = nil) {
        statuses[status, default: 0] += 1
        responses += 1
        if version.major == 2 { http2 += 1 }
        if let micros { _ = latency.record(max(1, micros)) }
    }

    mutating func merge(_ other: Tally) {
        for (status, count) in other.statuses { statuses[status, default: 0] += count }
        http2 += other.http2
        responses += other.responses
        latency.add(other.latency)
    }

    var serverErrors: Int { statuses.filter { $0.key >= 500 }.values.reduce(0, +) }

    func percentiles() -> String {
        func ms(_ v: UInt64) -> String { String(format: "%.0f ms", Double(v) / 1000) }
        return "p50 \(ms(latency.valueAtPercentile(50))), p95 \(ms(latency.valueAtPercentile(95))), "
            + "p99 \(ms(latency.valueAtPercentile(99))), max \(ms(latency.maxRecorded))"
    }

    func statusLine() -> String {
        statuses.sorted { $0.key < $1.key }.map { "\($0.value)× \($0.key)" }.joined(separator: ", ")
    }
}

func megabytes(_ bytes: Int) -> String { String(format: "%.0f MB", Double(bytes) / 1_048_576) }

func machine() -> String {
    "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB"
}

/// Every scenario adds its lines; a failed check makes the harness exit non-zero at the end.
final class Findings {
    var lines: [String] = []
    var failures: [String] = []

    func say(_ line: String) {
        print(line)
        lines.append(line)
    }

    func check(_ condition: Bool, _ message: String) {
        if !condition {
            print("FAILED: \(message)")
            failures.append(message)
        }
    }
}
