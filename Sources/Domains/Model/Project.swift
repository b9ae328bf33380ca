import Foundation

/// Who in a workspace sees a project.
public enum AccessMode: String, Sendable, CaseIterable, Codable {
    /// Every member and workspace token of the workspace.
    case team
    /// Workspace tokens and admins only.
    case `private`

    public func visible(to role: Role, tokenClass: TokenClass) -> Bool {
        switch self {
        case .team: true
        case .private: tokenClass == .workspace || role.canAdminister
        }
    }
}

public struct Project: Sendable, Hashable {
    public let workspaceID: String
    public let id: String
    public let slug: String
    public let name: String
    public let accessMode: AccessMode
    public let defaultBranch: String
    /// The workspace write sequence number at creation (assigned by the workspace actor).
    public let createdSeq: Int64
    public let createdAt: Date

    public init(
        workspaceID: String, id: String, slug: String, name: String, accessMode: AccessMode, defaultBranch: String,
        createdSeq: Int64, createdAt: Date
    ) {
        self.workspaceID = workspaceID
        self.id = id
        self.slug = slug
        self.name = name
        self.accessMode = accessMode
        self.defaultBranch = defaultBranch
        self.createdSeq = createdSeq
        self.createdAt = createdAt
    }
}

/// Checks a new project's fields; every problem as a JSON pointer.
public enum ProjectRules {
    public static let maxNameLength = 200
    public static let maxBranchLength = 255

    public static func validate(slug: String, name: String, defaultBranch: String) -> [FieldProblem] {
        var problems: [FieldProblem] = []
        if let problem = Slug.problem(slug) { problems.append(.init(pointer: "/slug", message: problem)) }
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { problems.append(.init(pointer: "/name", message: "must not be empty")) }
        if name.unicodeScalars.count > maxNameLength {
            problems.append(.init(pointer: "/name", message: "must be at most \(maxNameLength) characters"))
        }
        if defaultBranch.isEmpty || defaultBranch.unicodeScalars.count > maxBranchLength
            || defaultBranch.contains(where: { $0.isWhitespace || $0.isNewline })
        {
            problems.append(
                .init(pointer: "/defaultBranch", message: "must be 1–\(maxBranchLength) characters without whitespace"))
        }
        return problems
    }
}
