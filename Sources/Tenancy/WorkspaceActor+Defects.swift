import Domains

/// Defects. Each write is one transaction needing no in-process state, so all run `nonisolated`.
extension WorkspaceActor {
    public nonisolated func defects(project: Project, status: DefectStatus?, before: String?, limit: Int) async throws
        -> [DefectRecord]
    {
        try await repos.defects.defects(projectID: project.id, status: status, before: before, limit: limit)
    }

    /// A defect of this workspace and its project, or nil.
    public func defectWithProject(id: String) async throws -> (Project, DefectRecord)? {
        guard ResourceID.isValid(id, prefix: .defect), let record = try await repos.defects.defect(id: id),
            let project = try await project(id: record.projectID)
        else { return nil }
        return (project, record)
    }

    public nonisolated func createDefect(project: Project, change: DefectChange, by actor: AuditActor) async throws
        -> DefectRecord
    {
        let checked = try await checkLinks(change, project: project)
        return try await repos.defects.createDefect(projectID: project.id, change: checked, by: actor)
    }

    public nonisolated func updateDefect(id: String, project: Project, change: DefectChange, by actor: AuditActor)
        async throws -> DefectRecord
    {
        let checked = try await checkLinks(change, project: project)
        guard let record = try await repos.defects.updateDefect(id: id, change: checked, by: actor) else {
            throw DomainError.notFound("defect '\(id)' not found")
        }
        return record
    }

    /// Every linked case and cluster must be the project's; duplicates are dropped.
    nonisolated func checkLinks(_ change: DefectChange, project: Project) async throws -> DefectChange {
        var change = change
        var problems: [FieldProblem] = []
        if let cases = change.caseIDs {
            let known = try await repos.defects.existingCases(projectID: project.id, ids: cases)
            for (index, id) in cases.enumerated() where !known.contains(id) {
                problems.append(.init(pointer: "/cases/\(index)", message: "no case '\(id)' in project '\(project.slug)'"))
            }
            change.caseIDs = Array(Set(cases)).sorted()
        }
        if let groups = change.fingerprints {
            let known = try await repos.defects.existingFailureGroups(projectID: project.id, fingerprints: groups)
            for (index, fingerprint) in groups.enumerated() where !known.contains(fingerprint) {
                problems.append(
                    .init(pointer: "/failureGroups/\(index)", message: "no failure group '\(fingerprint)' in project '\(project.slug)'"))
            }
            change.fingerprints = Array(Set(groups)).sorted()
        }
        if !problems.isEmpty { throw DomainError.validation(problems) }
        return change
    }
}
