import Foundation

/// Times and durations as report formats write them, read defensively: anything unparseable or
/// out of range is nil, never a trap or a bogus value passed on to the server.
enum Timestamps {
    /// The longest duration kensho/v1 accepts (30 days), in seconds.
    static let maxSeconds: Double = 30 * 24 * 3600

    /// ISO 8601 with or without fractional seconds and with or without a zone; without a zone the
    /// time is this machine's local time (pytest writes `datetime.now().isoformat()`).
    static func parse(_ text: String) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 64 else { return nil }
        if let date = try? Date(trimmed, strategy: .iso8601) { return date }
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(trimmed) { return date }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone.current
        for format in ["yyyy-MM-dd'T'HH:mm:ss.SSSSSS", "yyyy-MM-dd'T'HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm:ss"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: trimmed) { return date }
        }
        return nil
    }

    static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// A JUnit `time` attribute (seconds, some tools add thousands separators) within 0…30 days.
    static func seconds(_ text: String?) -> Double? {
        guard let text, let value = Double(text.replacingOccurrences(of: ",", with: "")), value.isFinite,
            value >= 0, value <= maxSeconds
        else { return nil }
        return value
    }

    /// Milliseconds between two epoch-millisecond stamps, when they make sense.
    static func milliseconds(from start: Double?, to stop: Double?) -> Double? {
        guard let start, let stop, start.isFinite, stop.isFinite, stop >= start, stop - start <= maxSeconds * 1000 else {
            return nil
        }
        return stop - start
    }
}
