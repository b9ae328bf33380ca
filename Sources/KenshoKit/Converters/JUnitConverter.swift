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
        var cases: [KenshoCase] = []
        var env: [String: String] = [:]
        var attachments: [String: Data] = [:]
        var keys: [String: Int] = [:]
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConversionError(file: file, line: nil, message: "cannot read the file")
            }
            let reader = Reader(file: file, firstAttachment: attachments.count)
            let parser = XMLParser(data: data)
            parser.delegate = reader
            guard parser.parse(), reader.problem == nil, parser.parserError == nil else {
                if let problem = reader.problem { throw problem }
                let reason = parser.parserError.map(Reader.describe) ?? "malformed XML"
                throw ConversionError(file: file, line: parser.lineNumber, message: "not well-formed XML: \(reason)")
            }
            if !reader.openElements.isEmpty {
                throw ConversionError(
                    file: file, line: parser.lineNumber, message: "not well-formed XML: <\(reader.openElements.last!)> is never closed")
            }
            guard reader.sawTestElement else {
                throw ConversionError(file: file, line: nil, message: "no <testsuite> or <testcase>: this is not JUnit XML")
            }
            for (key, value) in reader.env { env[key] = value }
            for var item in reader.cases {
                // Two cases with one identity (merged reports, repeated names) must stay two cases.
                let key = "\(item.suite ?? "")::\(item.name ?? "")"
                let seen = keys[key, default: 0]
                keys[key] = seen + 1
                if seen > 0 { item.key = "\(key)#\(seen + 1)" }
                cases.append(item)
            }
            for (id, data) in reader.attachments { attachments[id] = data }
        }
        return ConvertedRun(cases: cases, env: env, attachments: attachments)
    }

    final class Reader: NSObject, XMLParserDelegate {
        let file: String
        var cases: [KenshoCase] = []
        var env: [String: String] = [:]
        var attachments: [String: Data] = [:]
        var problem: ConversionError?
        var sawTestElement = false
        var nextAttachment: Int

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
            case "testcase":
                sawTestElement = true
                let seconds = attributes["time"].flatMap { Double($0.replacingOccurrences(of: ",", with: "")) } ?? 0
                let suite = attributes["classname"].flatMap { $0.isEmpty ? nil : $0 } ?? suites.last.flatMap { $0.isEmpty ? nil : $0 }
                current = KenshoCase(
                    name: attributes["name"] ?? "(unnamed)", suite: suite,
                    fullName: [suite, attributes["name"]].compactMap { $0 }.joined(separator: "."),
                    file: attributes["file"], status: "passed", durationMs: max(0, seconds * 1000))
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
