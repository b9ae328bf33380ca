import Domains
import Foundation

/// An `allure-results` directory: every `*-result.json` (Allure 2 model), grouped by `historyId`
/// so that the reruns of one test become its retries (oldest first, the latest is the final
/// status); `statusDetails` → error; steps, parameters and labels kept; attachment files copied.
public enum AllureConverter {
    struct Result: Decodable {
        var name: String?
        var fullName: String?
        var historyId: String?
        var testCaseId: String?
        var status: String?
        var statusDetails: Details?
        var start: Double?
        var stop: Double?
        var steps: [Step]?
        var attachments: [Attachment]?
        var parameters: [Parameter]?
        var labels: [Label]?
    }

    struct Details: Decodable {
        var message: String?
        var trace: String?
    }

    struct Step: Decodable {
        var name: String?
        var status: String?
        var start: Double?
        var stop: Double?
        var steps: [Step]?
        var attachments: [Attachment]?
    }

    struct Attachment: Decodable {
        var name: String?
        var source: String
        var type: String?
    }

    struct Parameter: Decodable {
        var name: String
        var value: String?
    }

    struct Label: Decodable {
        var name: String
        var value: String?
    }

    public static func convert(directory: String) throws -> ConvertedRun {
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: directory) else {
            throw ConversionError(file: directory, line: nil, message: "cannot read the directory")
        }
        var results: [(name: String, data: Data)] = []
        for entry in entries.sorted() where entry.hasSuffix("-result.json") {
            let path = (directory as NSString).appendingPathComponent(entry)
            guard let data = fm.contents(atPath: path) else { continue }
            results.append((path, data))
        }
        guard !results.isEmpty else {
            throw ConversionError(file: directory, line: nil, message: "no *-result.json files: is this an allure-results directory?")
        }
        return try convert(results: results) { source in
            fm.contents(atPath: (directory as NSString).appendingPathComponent(source))
        }
    }

    /// The same from `*-result.json` documents in memory; `attachment` reads an attachment's
    /// `source` file (nil when it is missing).
    public static func convert(results documents: [(name: String, data: Data)], attachment: (String) -> Data?) throws
        -> ConvertedRun
    {
        var results: [Result] = []
        for (path, data) in documents {
            do {
                results.append(try JSONDecoder().decode(Result.self, from: data))
            } catch {
                throw ConversionError(file: path, line: nil, message: "not an Allure result: \(error)")
            }
        }
        var attachments: [String: Data] = [:]
        func attach(_ list: [Attachment]?) -> [String]? {
            guard let list, !list.isEmpty else { return nil }
            return list.compactMap { item in
                guard AttachmentID.isValid(item.source), let data = attachment(item.source) else { return nil }
                attachments[item.source] = data
                return item.source
            }
        }
        func steps(_ list: [Step]?) -> [KenshoStep]? {
            guard let list, !list.isEmpty else { return nil }
            return list.map { step in
                KenshoStep(
                    name: step.name ?? "(step)", status: status(step.status), durationMs: duration(step.start, step.stop),
                    attachments: attach(step.attachments), steps: steps(step.steps))
            }
        }

        // Reruns share a historyId; order them by start time.
        var groups: [String: [Result]] = [:]
        var order: [String] = []
        for result in results {
            let id = result.historyId ?? result.testCaseId ?? result.fullName ?? result.name ?? UUID().uuidString
            if groups[id] == nil { order.append(id) }
            groups[id, default: []].append(result)
        }
        var cases: [KenshoCase] = []
        for id in order {
            let attempts = (groups[id] ?? []).sorted { ($0.start ?? 0) < ($1.start ?? 0) }
            guard let final = attempts.last else { continue }
            var labels: [String: String] = [:]
            for label in final.labels ?? [] where label.value != nil {
                labels[label.name] = labels[label.name].map { "\($0),\(label.value!)" } ?? label.value
            }
            let identity = Self.identity(final, labels: labels)
            var parameters: [String: String] = [:]
            for parameter in final.parameters ?? [] { parameters[parameter.name] = parameter.value ?? "" }
            let retries = attempts.dropLast().map { attempt in
                KenshoAttempt(
                    status: status(attempt.status), durationMs: duration(attempt.start, attempt.stop),
                    error: error(attempt.statusDetails))
            }
            cases.append(
                KenshoCase(
                    key: identity.key, name: identity.name, suite: identity.suite,
                    fullName: final.fullName, status: status(final.status), durationMs: duration(final.start, final.stop),
                    retries: retries.isEmpty ? nil : Array(retries),
                    error: status(final.status) == "passed" ? nil : error(final.statusDetails),
                    labels: labels.isEmpty ? nil : labels, parameters: parameters.isEmpty ? nil : parameters,
                    steps: steps(final.steps), attachments: attach(final.attachments)))
        }
        return ConvertedRun(cases: cases, attachments: attachments)
    }

    /// Allure's `unknown` is a result nobody could classify: broken.
    static func status(_ value: String?) -> String {
        switch value {
        case "passed": "passed"
        case "failed": "failed"
        case "skipped": "skipped"
        default: "broken"
        }
    }

    static func duration(_ start: Double?, _ stop: Double?) -> Double? {
        Timestamps.milliseconds(from: start, to: stop)
    }

    /// Suite, name and key as the JUnit converter derives them for the same test, so switching
    /// reporters does not make every failure "new": the suite is the class or module JUnit calls
    /// `classname` — allure-pytest's `fullName` is `module.path#test` and its name carries the
    /// parameters as pytest's id does (`test_square_even[5]`); Allure for Java names the class in
    /// `testClass` and the method after it in `fullName`. The opaque `historyId` is a last resort.
    static func identity(_ result: Result, labels: [String: String]) -> (suite: String?, name: String, key: String?) {
        let name = result.name ?? "(unnamed)"
        if let fullName = result.fullName, let hash = fullName.lastIndex(of: "#") {
            let suite = String(fullName[..<hash])
            return (suite, name, KenshoValidator.derivedKey(suite: suite, name: name, parameters: [:]))
        }
        if let testClass = labels["testClass"], let fullName = result.fullName, fullName.hasPrefix(testClass + ".") {
            let method = String(fullName.dropFirst(testClass.count + 1))
            return (testClass, method, KenshoValidator.derivedKey(suite: testClass, name: method, parameters: [:]))
        }
        if let suite = labels["testClass"] ?? labels["suite"] ?? labels["package"] ?? labels["parentSuite"] {
            return (suite, name, KenshoValidator.derivedKey(suite: suite, name: name, parameters: [:]))
        }
        return (nil, name, result.historyId.map { "allure:\($0)" })
    }

    static func error(_ details: Details?) -> KenshoError? {
        guard let details, details.message != nil || details.trace != nil else { return nil }
        let firstLine = details.message?.split(separator: "\n").first.map(String.init)
        let type = firstLine?.split(separator: ":", maxSplits: 1).first.map(String.init)
            .flatMap { $0.contains(" ") ? nil : $0 }
        return KenshoError(type: type, message: details.message, trace: details.trace)
    }
}
