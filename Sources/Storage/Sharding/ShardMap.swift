/// Where each logical shard lives: logical shard → index of a physical server.
/// Logical shards are the unit of placement (a workspace never spans two) and of future moves.
public struct ShardMap: Sendable, Equatable {
    public let placements: [Int: Int]

    public init(placements: [Int: Int]) {
        self.placements = placements
    }

    public var shardCount: Int { placements.count }

    public func serverIndex(forShard shard: Int) -> Int? { placements[shard] }

    /// Logical shards per physical server, for `/healthz` and operators.
    public func shards(onServer server: Int) -> [Int] {
        placements.filter { $0.value == server }.map(\.key).sorted()
    }
}
