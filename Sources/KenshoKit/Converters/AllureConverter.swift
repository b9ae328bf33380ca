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
        var results: [Result] = []
        for entry in entries.sorted() where entry.hasSuffix("-result.json") {
            let path = (directory as NSString).appendingPathComponent(entry)
            guard let data = fm.contents(atPath: path) else { continue }
            do {
                results.append(try JSONDecoder().decode(Result.self, from: data))
            } catch {
                throw ConversionError(file: path, line: nil, message: "not an Allure result: \(error)")
            }
        }
        guard !results.isEmpty else {
            throw ConversionError(file: directory, line: nil, message: "no *-result.json files: is this an allure-results directory?")
        }
        var attachments: [String: Data] = [:]
        func attach(_ list: [Attachment]?) -> [String]? {
            guard let list, !list.isEmpty else { return nil }
            return list.compactMap { item in
                let path = (directory as NSString).appendingPathComponent(item.source)
                guard AttachmentName.isValid(item.source), let data = fm.contents(atPath: path) else { return nil }
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
            let suite = labels["suite"] ?? labels["testClass"] ?? labels["parentSuite"] ?? labels["package"]
            var parameters: [String: String] = [:]
            for parameter in final.parameters ?? [] { parameters[parameter.name] = parameter.value ?? "" }
            let retries = attempts.dropLast().map { attempt in
                KenshoAttempt(
                    status: status(attempt.status), durationMs: duration(attempt.start, attempt.stop),
                    error: error(attempt.statusDetails))
            }
            cases.append(
                KenshoCase(
                    key: final.historyId.map { "allure:\($0)" }, name: final.name ?? "(unnamed)", suite: suite,
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

    static func duration(_ start: Double?, _ stop: Double?) -> Double {
        guard let start, let stop, stop >= start else { return 0 }
        return stop - start
    }

    static func error(_ details: Details?) -> KenshoError? {
        guard let details, details.message != nil || details.trace != nil else { return nil }
        let firstLine = details.message?.split(separator: "\n").first.map(String.init)
        let type = firstLine?.split(separator: ":", maxSplits: 1).first.map(String.init)
            .flatMap { $0.contains(" ") ? nil : $0 }
        return KenshoError(type: type, message: details.message, trace: details.trace)
    }
}

/// Attachment ids kensho/v1 accepts: 1–128 of A-Z a-z 0-9 _ - .
enum AttachmentName {
    static func isValid(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128
            && id.utf8.allSatisfy { c in
                (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 || c == 45 || c == 46
            }
    }
}
