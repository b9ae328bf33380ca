/// A single-pass parser from kensho/v1 JSON bytes straight into `KenshoRun`.
///
/// Foundation's JSON decoding runs at ~12 MB/s on Linux, which made decoding the largest cost of a
/// finalize; this parser reads the bytes once without an intermediate tree. It accepts exactly JSON
/// (RFC 8259). Malformed input throws `DecodingError.dataCorrupted` with an empty coding path; a
/// value of the wrong type throws `.typeMismatch` with the path to it, as `JSONDecoder` would, so
/// callers map errors the same way. Unknown keys are skipped.
public struct KenshoJSON {
    public static func decode(_ bytes: [UInt8]) throws -> KenshoRun {
        try bytes.withUnsafeBufferPointer { try decode($0) }
    }

    /// Decodes from bytes the caller owns (a request's buffer, read in place rather than copied).
    public static func decode(_ buffer: UnsafeBufferPointer<UInt8>) throws -> KenshoRun {
        var parser = KenshoJSON(buffer)
        let run = try parser.run()
        parser.skipWhitespace()
        guard parser.index == buffer.count else { throw parser.malformed("unexpected data after the document") }
        return run
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(stringValue: String) { self.stringValue = stringValue }
        init(intValue: Int) {
            self.stringValue = String(intValue)
            self.intValue = intValue
        }
    }

    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    var path: [Key] = []

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        path.reserveCapacity(16)
    }

    // MARK: errors

    func malformed(_ message: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: [], debugDescription: "\(message) at byte \(index)"))
    }

    /// A well-formed value of another type is a type mismatch; anything else is malformed JSON.
    func mismatch(_ type: Any.Type, _ expected: String) -> DecodingError {
        let valueStarts: [UInt8] = Array(#""{[tfn-0123456789"#.utf8)
        guard index < bytes.count, valueStarts.contains(bytes[index]) else { return malformed("expected a value") }
        return .typeMismatch(type, .init(codingPath: path, debugDescription: "expected \(expected)"))
    }

    // MARK: lexing

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func peek() throws -> UInt8 {
        skipWhitespace()
        guard index < bytes.count else { throw malformed("unexpected end of input") }
        return bytes[index]
    }

    mutating func expect(_ byte: UInt8) throws {
        guard try peek() == byte else { throw malformed("expected '\(Character(Unicode.Scalar(byte)))'") }
        index += 1
    }

    /// Consumes `null` if it is next.
    mutating func takeNull() throws -> Bool {
        guard try peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    mutating func literal(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw malformed("unexpected end of input") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
            throw malformed("invalid literal")
        }
        index += count
    }

    mutating func string() throws -> String {
        guard try peek() == UInt8(ascii: "\"") else { throw mismatch(String.self, "a string") }
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let value = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return value
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw malformed("control character in string") }
            index += 1
        }
        var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw malformed("unterminated escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                        else { throw malformed("unpaired surrogate") }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw malformed("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw malformed("unpaired surrogate")
                    }
                    // PostgreSQL cannot store NUL: in the free text the gateway lets through
                    // (messages, traces) it becomes U+FFFD; elsewhere NULTextMiddleware refused it.
                    if scalar == 0 { scalar = 0xFFFD }
                    guard let unicode = Unicode.Scalar(scalar) else { throw malformed("invalid \\u escape") }
                    out.append(contentsOf: Array(String(Character(unicode)).utf8))
                default:
                    throw malformed("invalid escape")
                }
            default:
                if byte < 0x20 { throw malformed("control character in string") }
                out.append(byte)
            }
        }
        throw malformed("unterminated string")
    }

    mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw malformed("short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            index += 1
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw malformed("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// The raw text of a JSON number, checked against the grammar.
    mutating func numberText() throws -> Substring {
        let start = index
        if index < bytes.count && bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits(_ parser: inout KenshoJSON) -> Int {
            let from = parser.index
            while parser.index < parser.bytes.count, (0x30...0x39).contains(parser.bytes[parser.index]) { parser.index += 1 }
            return parser.index - from
        }
        guard digits(&self) > 0 else { throw malformed("invalid number") }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits(&self) > 0 else { throw malformed("invalid number") }
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            guard digits(&self) > 0 else { throw malformed("invalid number") }
        }
        return Substring(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
    }

    mutating func double() throws -> Double {
        let byte = try peek()
        guard byte == UInt8(ascii: "-") || (0x30...0x39).contains(byte) else { throw mismatch(Double.self, "a number") }
        guard let value = Double(try numberText()) else { throw malformed("invalid number") }
        return value
    }

    /// An integer as JSON Schema counts them: `3`, and also `3.0` or `3e2`; a fraction, or a value
    /// beyond 64 bits, is a type mismatch pointing at the number (never a trap).
    mutating func int() throws -> Int {
        let byte = try peek()
        guard byte == UInt8(ascii: "-") || (0x30...0x39).contains(byte) else { throw mismatch(Int.self, "an integer") }
        let start = index
        let text = try numberText()
        if let value = Int(text) { return value }
        if let double = Double(text), double.isFinite, double.rounded() == double, let value = Int(exactly: double) {
            return value
        }
        index = start  // the mismatch is about the number, not what follows it
        throw mismatch(Int.self, "an integer")
    }

    /// Skips any value (for unknown keys).
    mutating func skipValue(depth: Int = 0) throws {
        guard depth < 512 else { throw malformed("nesting too deep") }
        switch try peek() {
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "{"): try object { parser, _ in try parser.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["): try array { parser in try parser.skipValue(depth: depth + 1) }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: _ = try numberText()
        }
    }

    /// Iterates an object's members; `body` must consume the value.
    mutating func object(_ body: (inout KenshoJSON, String) throws -> Void) throws {
        guard try peek() == UInt8(ascii: "{") else { throw mismatch([String: Any].self, "an object") }
        index += 1
        if try peek() == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            guard try peek() == UInt8(ascii: "\"") else { throw malformed("expected a member name") }
            let key = try string()
            try expect(UInt8(ascii: ":"))
            path.append(Key(stringValue: key))
            try body(&self, key)
            path.removeLast()
            switch try peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return
            default: throw malformed("expected ',' or '}'")
            }
        }
    }

    mutating func array(_ body: (inout KenshoJSON) throws -> Void) throws {
        guard try peek() == UInt8(ascii: "[") else { throw mismatch([Any].self, "an array") }
        index += 1
        if try peek() == UInt8(ascii: "]") {
            index += 1
            return
        }
        var position = 0
        while true {
            path.append(Key(intValue: position))
            try body(&self)
            path.removeLast()
            position += 1
            switch try peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return
            default: throw malformed("expected ',' or ']'")
            }
        }
    }

    // MARK: optional helpers (null reads as absent, like the Decodable model)

    mutating func optionalString() throws -> String? { try takeNull() ? nil : try string() }
    mutating func optionalDouble() throws -> Double? { try takeNull() ? nil : try double() }
    mutating func optionalInt() throws -> Int? { try takeNull() ? nil : try int() }

    mutating func optionalStrings() throws -> [String]? {
        if try takeNull() { return nil }
        var result: [String] = []
        try array { parser in result.append(try parser.string()) }
        return result
    }

    mutating func optionalStringMap() throws -> [String: String]? {
        if try takeNull() { return nil }
        var result: [String: String] = [:]
        try object { parser, key in result[key] = try parser.string() }
        return result
    }

    // MARK: the kensho model

    mutating func run() throws -> KenshoRun {
        var run = KenshoRun(project: nil, externalRunId: nil, branch: nil, totals: nil, cases: nil)
        run.schemaVersion = nil
        try object { p, key in
            switch key {
            case "uploadId": run.uploadId = try p.optionalString()
            case "schemaVersion": run.schemaVersion = try p.optionalString()
            case "runId": run.runId = try p.optionalString()
            case "project":
                if try p.takeNull() { return }
                var slug: String?
                try p.object { p, key in
                    if key == "slug" { slug = try p.optionalString() } else { try p.skipValue() }
                }
                run.project = .init(slug: slug)
            case "externalRunId": run.externalRunId = try p.optionalString()
            case "branch": run.branch = try p.optionalString()
            case "commit": run.commit = try p.optionalString()
            case "buildUrl": run.buildUrl = try p.optionalString()
            case "startedAt": run.startedAt = try p.optionalString()
            case "finishedAt": run.finishedAt = try p.optionalString()
            case "env": run.env = try p.optionalStringMap()
            case "totals":
                if try p.takeNull() { return }
                var totals = KenshoRun.Totals(passed: nil, failed: nil, skipped: nil, broken: nil, flaky: nil)
                try p.object { p, key in
                    switch key {
                    case "passed": totals.passed = try p.optionalInt()
                    case "failed": totals.failed = try p.optionalInt()
                    case "skipped": totals.skipped = try p.optionalInt()
                    case "broken": totals.broken = try p.optionalInt()
                    case "flaky": totals.flaky = try p.optionalInt()
                    default: try p.skipValue()
                    }
                }
                run.totals = totals
            case "shard":
                if try p.takeNull() { return }
                var shard = KenshoRun.Shard(index: nil, total: nil)
                try p.object { p, key in
                    switch key {
                    case "index": shard.index = try p.optionalInt()
                    case "total": shard.total = try p.optionalInt()
                    default: try p.skipValue()
                    }
                }
                run.shard = shard
            case "cases":
                if try p.takeNull() { return }
                var cases: [KenshoCase] = []
                try p.array { p in cases.append(try p.testCase()) }
                run.cases = cases
            default: try p.skipValue()
            }
        }
        return run
    }

    mutating func error() throws -> KenshoError? {
        if try takeNull() { return nil }
        var error = KenshoError()
        try object { p, key in
            switch key {
            case "type": error.type = try p.optionalString()
            case "message": error.message = try p.optionalString()
            case "trace": error.trace = try p.optionalString()
            default: try p.skipValue()
            }
        }
        return error
    }

    mutating func testCase() throws -> KenshoCase {
        var item = KenshoCase(name: nil, status: nil)
        try object { p, key in
            switch key {
            case "key": item.key = try p.optionalString()
            case "name": item.name = try p.optionalString()
            case "suite": item.suite = try p.optionalString()
            case "fullName": item.fullName = try p.optionalString()
            case "file": item.file = try p.optionalString()
            case "status": item.status = try p.optionalString()
            case "durationMs": item.durationMs = try p.optionalDouble()
            case "retries":
                if try p.takeNull() { return }
                var retries: [KenshoAttempt] = []
                try p.array { p in
                    var attempt = KenshoAttempt(status: nil)
                    try p.object { p, key in
                        switch key {
                        case "status": attempt.status = try p.optionalString()
                        case "durationMs": attempt.durationMs = try p.optionalDouble()
                        case "error": attempt.error = try p.error()
                        default: try p.skipValue()
                        }
                    }
                    retries.append(attempt)
                }
                item.retries = retries
            case "error": item.error = try p.error()
            case "labels": item.labels = try p.optionalStringMap()
            case "parameters": item.parameters = try p.optionalStringMap()
            case "steps": item.steps = try p.steps(depth: 0)
            case "attachments": item.attachments = try p.optionalStrings()
            default: try p.skipValue()
            }
        }
        return item
    }

    mutating func steps(depth: Int) throws -> [KenshoStep]? {
        if try takeNull() { return nil }
        guard depth < 256 else { throw malformed("steps nest too deep") }
        var steps: [KenshoStep] = []
        try array { p in
            var step = KenshoStep(name: nil, status: nil)
            try p.object { p, key in
                switch key {
                case "name": step.name = try p.optionalString()
                case "status": step.status = try p.optionalString()
                case "durationMs": step.durationMs = try p.optionalDouble()
                case "attachments": step.attachments = try p.optionalStrings()
                case "steps": step.steps = try p.steps(depth: depth + 1)
                default: try p.skipValue()
                }
            }
            steps.append(step)
        }
        return steps
    }
}
