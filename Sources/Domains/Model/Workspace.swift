import Foundation

public struct Workspace: Sendable, Hashable {
    public let id: String
    public let slug: String
    public let name: String
    /// The logical shard holding this workspace's data.
    public let shardID: Int
    public let createdAt: Date

    public init(id: String, slug: String, name: String, shardID: Int, createdAt: Date) {
        self.id = id
        self.slug = slug
        self.name = name
        self.shardID = shardID
        self.createdAt = createdAt
    }
}

public struct User: Sendable, Hashable {
    public let id: String
    public let email: String
    public let name: String?

    public init(id: String, email: String, name: String?) {
        self.id = id
        self.email = email
        self.name = name
    }
}
