import Domains
import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// JUnit XML, as its many producers write it: Ant/Jenkins, pytest (xunit1 and xunit2), Maven
/// Surefire (with `flakyFailure`/`rerunFailure`), gotestsum, `swift test --xunit-output`, Jest and
/// Playwright reporters. Nested `testsuites`/`testsuite`; `classname` (else the suite's name) is the
/// suite; `failure` → failed, `error` → broken, `skipped` → skipped; suite `properties` → env, case
/// `properties` → labels; `system-out`/`system-err` → text attachments.
public enum JUnitConverter {
    public static func convert(files: [String]) throws -> ConvertedRun {
        var documents: [(name: String, data: Data)] = []
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConversionError(file: file, line: nil, message: "cannot read the file")
            }
            documents.append((file, data))
        }
        return try convert(documents: documents)
    }

    /// The same from bytes in memory: `name` is what errors call each document.
    ///
    /// Within one document, repeated `<testcase>`s of one identity (classname and name) are the
    /// attempts of one test — pytest-rerunfailures writes one record per attempt, Gradle without
    /// `mergeReruns` too — so they become one case whose earlier attempts are its retries. Across
    /// documents (merged shard reports) they stay distinct cases. Durations outside 0…30 days and
    /// unparseable times are dropped, not passed on.
    public static func convert(documents: [(name: String, data: Data)]) throws -> ConvertedRun {
        var cases: [KenshoCase] = []
        var env: [String: String] = [:]
        var attachments: [String: Data] = [:]
        var keys: [String: Int] = [:]
        var started: Date?
        var finished: Date?
        for (file, data) in documents {
            let reader = Reader(file: file, firstAttachment: attachments.count)
            let parser = XMLParser(data: try Self.wellFormedText(data, file: file))
            parser.delegate = reader
            guard parser.parse(), reader.problem == nil, parser.parserError == nil else {
                if let problem = reader.problem { throw problem }
                let reason = parser.parserError.map(Reader.describe) ?? "malformed XML"
                throw ConversionError(file: file, line: parser.lineNumber, message: "not well-formed XML: \(reason)")
            }
            if let open = reader.openElements.last {
                throw ConversionError(
                    file: file, line: parser.lineNumber, message: "not well-formed XML: <\(open)> is never closed")
            }
            guard reader.sawTestElement else {
                throw ConversionError(file: file, line: nil, message: "no <testsuite> or <testcase>: this is not JUnit XML")
            }
            for (key, value) in reader.env { env[key] = value }
            for var item in Self.mergingReruns(reader.cases) {
                // Two cases with one identity in different reports must stay two cases.
                let key = "\(item.suite ?? "")::\(item.name ?? "")"
                let seen = keys[key, default: 0]
                keys[key] = seen + 1
                if seen > 0 { item.key = "\(key)#\(seen + 1)" }
                cases.append(item)
            }
            for (id, data) in reader.attachments { attachments[id] = data }
            if let start = reader.startedAt { started = min(started ?? start, start) }
            if let end = reader.finishedAt { finished = max(finished ?? end, end) }
        }
        var converted = ConvertedRun(cases: cases, env: env, attachments: attachments)
        converted.run.startedAt = started.map(Timestamps.format)
        converted.run.finishedAt = finished.map(Timestamps.format)
        return converted
    }

    /// The bytes FoundationXML can be trusted with. Its parser traps (instead of reporting an error)
    /// on element and attribute names that are not valid UTF-8 — found by `ops/fuzz.sh` — so text
    /// that is not UTF-8, or holds a NUL, which no XML document may, is refused here with the file
    /// and line. Reports in UTF-16 (with a byte-order mark) are transcoded first.
    static func wellFormedText(_ data: Data, file: String) throws -> Data {
        if data.starts(with: [0xFF, 0xFE]) || data.starts(with: [0xFE, 0xFF]),
            let text = String(data: data, encoding: .utf16)
        {
            return Data(text.utf8)
        }
        var line = 1
        var decoder = UTF8()
        var iterator = data.makeIterator()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if scalar == "\n" { line += 1 }
                if scalar.value == 0 {
                    throw ConversionError(file: file, line: line, message: "not well-formed XML: a NUL character")
                }
            case .emptyInput:
                break loop
            case .error:
                throw ConversionError(
                    file: file, line: line, message: "not UTF-8 text (JUnit XML is UTF-8; re-encode the report)")
            }
        }
        return data
    }

    /// Folds consecutive records of one test into one case: the last record is the final attempt,
    /// the ones before it its retries (a rerun only follows a failure, so an earlier record that
    /// says nothing of its outcome counts as failed).
    static func mergingReruns(_ records: [KenshoCase]) -> [KenshoCase] {
        var result: [KenshoCase] = []
        for record in records {
            guard var previous = result.last, previous.suite == record.suite, previous.name == record.name,
                previous.file == record.file
            else {
                result.append(record)
                continue
            }
            var attempts = previous.retries ?? []
            let earlierStatus = previous.status == "passed" && previous.error == nil ? "failed" : (previous.status ?? "failed")
            attempts.append(KenshoAttempt(status: earlierStatus, durationMs: previous.durationMs, error: previous.error))
            attempts.append(contentsOf: record.retries ?? [])
            previous = record
            previous.retries = attempts
            previous.durationMs = record.durationMs
            previous.attachments = (result.last?.attachments ?? []) + (record.attachments ?? [])
            if previous.attachments?.isEmpty == true { previous.attachments = nil }
            result[result.count - 1] = previous
        }
        return result
    }

    final class Reader: NSObject, XMLParserDelegate {
        let file: String
        var cases: [KenshoCase] = []
        var env: [String: String] = [:]
        var attachments: [String: Data] = [:]
        var problem: ConversionError?
        var sawTestElement = false
        var nextAttachment: Int
        var startedAt: Date?
        var finishedAt: Date?

        private var suites: [String] = []
        private var current: KenshoCase?
        private var currentRetries: [KenshoAttempt] = []
        private var outputs: [(String, String)] = []
        private var text = ""
        private var pending: (element: String, type: String?, message: String?)?
        private var stack: [String] = []

        init(file: String, firstAttachment: Int) {
            self.file = file
            self.nextAttachment = firstAttachment
        }

        func parser(
            _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            defer { stack.append(name) }
            text = ""
            switch name {
            case "testsuites":
                sawTestElement = true
            case "testsuite":
                sawTestElement = true
                suites.append(attributes["name"] ?? "")
                // pytest, Surefire and Ant write when the suite started (often without a zone: local time).
                if let stamp = attributes["timestamp"].flatMap(Timestamps.parse) {
                    startedAt = min(startedAt ?? stamp, stamp)
                    let seconds = Timestamps.seconds(attributes["time"]) ?? 0
                    let end = stamp.addingTimeInterval(seconds)
                    finishedAt = max(finishedAt ?? end, end)
                }
            case "testcase":
                sawTestElement = true
                let seconds = Timestamps.seconds(attributes["time"])
                let suite = attributes["classname"].flatMap { $0.isEmpty ? nil : $0 } ?? suites.last.flatMap { $0.isEmpty ? nil : $0 }
                current = KenshoCase(
                    name: attributes["name"] ?? "(unnamed)", suite: suite,
                    fullName: [suite, attributes["name"]].compactMap { $0 }.joined(separator: "."),
                    file: attributes["file"], status: "passed", durationMs: seconds.map { $0 * 1000 })
                currentRetries = []
                outputs = []
            case "failure", "error", "skipped", "flakyFailure", "flakyError", "rerunFailure", "rerunError":
                pending = (name, attributes["type"], attributes["message"])
            case "property":
                guard let key = attributes["name"] else { return }
                let value = attributes["value"] ?? ""
                let owner = stack.dropLast().last  // properties → its parent
                if owner == "testcase", var item = current {
                    var labels = item.labels ?? [:]
                    labels[key] = value
                    item.labels = labels
                    current = item
                } else {
                    env[key] = value
                }
            default:
                break
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
            if problem == nil {
                problem = ConversionError(
                    file: file, line: parser.lineNumber,
                    message: "not well-formed XML: \(Self.describe(parseError))")
            }
        }

        var openElements: [String] { stack }

        /// libxml2's error numbers (XMLParser.ErrorCode raw values), in words.
        static func describe(_ error: any Error) -> String {
            switch (error as NSError).code {
            case 76: "a closing tag does not match the element it closes"
            case 5, 77: "the document ends before its elements are closed"
            case 4: "the document is empty"
            case 9, 10: "an invalid character"
            case 38, 39, 40, 41, 42: "a malformed attribute"
            case 73, 74: "an unfinished tag"
            default: (error as NSError).localizedDescription
            }
        }

        func parser(_ parser: XMLParser, foundCDATA block: Data) { text += String(decoding: block, as: UTF8.self) }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            _ = stack.popLast()
            let body = text.trimmingCharacters(in: .whitespacesAndNewlines)
            switch name {
            case "testsuite":
                _ = suites.popLast()
            case "failure", "error":
                guard current != nil, let pending else { break }
                current?.status = name == "failure" ? "failed" : "broken"
                current?.error = error(pending, body: body)
                self.pending = nil
            case "skipped":
                guard current != nil else { break }
                current?.status = "skipped"
                if let message = pending?.message ?? (body.isEmpty ? nil : body) {
                    current?.error = KenshoError(type: "skipped", message: message)
                }
                pending = nil
            case "flakyFailure", "flakyError", "rerunFailure", "rerunError":
                // Surefire: flaky* are failed attempts of a test that then passed; rerun* are the
                // failed reruns of a test that failed (its <failure> is the first attempt).
                guard let pending else { break }
                let status = name.hasSuffix("Failure") ? "failed" : "broken"
                currentRetries.append(KenshoAttempt(status: status, error: error(pending, body: body)))
                self.pending = nil
            case "system-out", "system-err":
                if current != nil, !body.isEmpty { outputs.append((name == "system-out" ? "stdout" : "stderr", body)) }
            case "testcase":
                guard var item = current else { break }
                if !currentRetries.isEmpty {
                    if item.status == "failed" || item.status == "broken" {
                        // The first <failure> was the first attempt; the last rerun is the final one.
                        let final = currentRetries.removeLast()
                        currentRetries.insert(KenshoAttempt(status: item.status, error: item.error), at: 0)
                        item.status = final.status
                        item.error = final.error
                    }
                    item.retries = currentRetries
                }
                var ids: [String] = []
                for (stream, content) in outputs {
                    nextAttachment += 1
                    let id = "junit-\(nextAttachment)-\(stream).txt"
                    attachments[id] = Data(content.utf8)
                    ids.append(id)
                }
                if !ids.isEmpty { item.attachments = ids }
                cases.append(item)
                current = nil
            default:
                break
            }
            text = ""
        }

        func error(_ pending: (element: String, type: String?, message: String?), body: String) -> KenshoError {
            let message = pending.message ?? body.split(separator: "\n", maxSplits: 1).first.map(String.init)
            return KenshoError(type: pending.type, message: message, trace: body.isEmpty ? nil : body)
        }
    }
}
